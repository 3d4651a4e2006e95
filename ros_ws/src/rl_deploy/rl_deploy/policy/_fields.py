"""Validating reader over a parsed YAML tree: every error names the key path and the value.

Card parsing reads through `Fields` so that a typo or a bad value never passes silently.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from rl_deploy.errors import CardError


class Fields:
    """One YAML mapping at `path`; take keys with `req*/opt*`, then `done()` rejects leftovers."""

    def __init__(self, data: object, path: str) -> None:
        if not isinstance(data, Mapping):
            raise CardError(f"{path or 'card'}: expected a mapping, got {data!r}")
        self.path = path
        self._data: Mapping[str, Any] = data
        self._seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def has(self, name: str) -> bool:
        return name in self._data

    def raw(self, name: str, default: object = None) -> Any:
        self._seen.add(name)
        return self._data.get(name, default)

    def fail(self, name: str, value: object, why: str) -> CardError:
        return CardError(f"{self.key(name)}: {why}, got {value!r}")

    def req(self, name: str) -> Any:
        if name not in self._data:
            raise CardError(f"{self.key(name)}: required key is missing")
        return self.raw(name)

    def string(self, name: str, default: str | None = None, choices: Sequence[str] = ()) -> str:
        value = self.raw(name, default) if default is not None else self.req(name)
        if not isinstance(value, str) or not value:
            raise self.fail(name, value, "expected a non-empty string")
        if choices and value not in choices:
            raise self.fail(name, value, f"expected one of {list(choices)}")
        return value

    def number(self, name: str, default: float | None = None, *, positive: bool = False) -> float:
        value = self.raw(name, default) if default is not None else self.req(name)
        return as_number(value, self.key(name), positive=positive)

    def integer(self, name: str, default: int | None = None, *, minimum: int = 0) -> int:
        value = self.raw(name, default) if default is not None else self.req(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(name, value, f"expected an integer >= {minimum}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self.raw(name, default)
        if not isinstance(value, bool):
            raise self.fail(name, value, "expected true or false")
        return value

    def strings(
        self, name: str, *, default: Sequence[str] | None = None, non_empty: bool = False
    ) -> tuple[str, ...]:
        value = self.raw(name, default) if default is not None else self.req(name)
        if not isinstance(value, list | tuple) or not all(
            isinstance(item, str) and item for item in value
        ):
            raise self.fail(name, value, "expected a list of non-empty strings")
        if non_empty and not value:
            raise self.fail(name, value, "expected at least one name")
        if len(set(value)) != len(value):
            raise self.fail(name, value, "expected unique names")
        return tuple(value)

    def numbers(self, name: str, default: Sequence[float] | None = None) -> tuple[float, ...]:
        """A scalar or a flat list of numbers, returned as a tuple (a scalar gives one item)."""
        value = self.raw(name, default) if default is not None else self.req(name)
        items = value if isinstance(value, list | tuple) else [value]
        if not items:
            raise self.fail(name, value, "expected a number or a non-empty list of numbers")
        return tuple(as_number(item, self.key(name)) for item in items)

    def sub(self, name: str) -> Fields:
        return Fields(self.req(name), self.key(name))

    def done(self) -> None:
        unknown = sorted(set(self._data) - self._seen, key=str)  # YAML keys: 1, null too
        if unknown:
            name = unknown[0]
            raise self.fail(name, self._data[name], "unknown key")


def as_number(value: object, path: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CardError(f"{path}: expected a finite number, got {value!r}")
    if positive and value <= 0:
        raise CardError(f"{path}: expected a number > 0, got {value!r}")
    return float(value)
