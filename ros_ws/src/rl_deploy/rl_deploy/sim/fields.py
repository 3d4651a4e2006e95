"""Typed reads from a parsed YAML mapping that name the offending key on error.

Scene files are nested; every error says where (`robot.camera.width`) and what was found.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from rl_deploy.errors import ConfigError

_MISSING = object()


class Fields:
    """One mapping of a config document, with its dotted path for error messages."""

    def __init__(self, values: Any, path: str) -> None:
        if not isinstance(values, Mapping):
            what = path or "the document"  # the root: an empty file, or a list at the top
            raise ConfigError(f"{what} must be a mapping, got {values!r:.80}")
        self._values: Mapping[str, Any] = values
        self.path = path
        self._read: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def names(self) -> list[str]:
        return [str(key) for key in self._values]

    def has(self, name: str) -> bool:
        return name in self._values

    def raw(self, name: str, default: Any = _MISSING) -> Any:
        self._read.add(name)
        if name in self._values:
            return self._values[name]
        if default is _MISSING:
            raise ConfigError(f"{self.key(name)} is required")
        return default

    def section(self, name: str, default: Any = _MISSING) -> Fields:
        return Fields(self.raw(name, default), self.key(name))

    def sections(self, name: str) -> list[Fields]:
        items = self.raw(name, [])
        if not isinstance(items, list):
            raise ConfigError(f"{self.key(name)} must be a list, got {items!r}")
        return [Fields(item, f"{self.key(name)}[{index}]") for index, item in enumerate(items)]

    def text(self, name: str, default: Any = _MISSING) -> str:
        value = self.raw(name, default)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{self.key(name)} must be a non-empty string, got {value!r}")
        return value

    def flag(self, name: str, default: Any = _MISSING) -> bool:
        value = self.raw(name, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{self.key(name)} must be true or false, got {value!r}")
        return value

    def integer(self, name: str, default: Any = _MISSING, *, minimum: int = 1) -> int:
        value = self.raw(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ConfigError(f"{self.key(name)} must be an integer >= {minimum}, got {value!r}")
        return value

    def number(
        self,
        name: str,
        default: Any = _MISSING,
        *,
        low: float = -math.inf,
        high: float = math.inf,
    ) -> float:
        value = self.raw(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{self.key(name)} must be a number, got {value!r}")
        if not (math.isfinite(value) and low <= value <= high):
            raise ConfigError(f"{self.key(name)} must be in [{low}, {high}], got {value!r}")
        return float(value)

    def numbers(
        self, name: str, count: int | None, default: Any = _MISSING, *, low: float = -math.inf
    ) -> tuple[float, ...]:
        """A list of `count` numbers (any length when count is None), each >= low."""
        value = self.raw(name, default)
        if (
            not isinstance(value, list | tuple)
            or (count is not None and len(value) != count)
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
            or not all(math.isfinite(v) and v >= low for v in value)
        ):
            raise ConfigError(
                f"{self.key(name)} must be a list of {count or 'any number of'} finite numbers "
                f">= {low}, got {value!r}"
            )
        return tuple(float(v) for v in value)

    def texts(self, name: str, default: Any = _MISSING) -> tuple[str, ...]:
        value = self.raw(name, default)
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{self.key(name)} must be a list of strings, got {value!r}")
        return tuple(value)

    def finish(self) -> None:
        """Reject keys nobody read: a typo must not silently fall back to a default."""
        unknown = sorted(set(self._values) - self._read)
        if unknown:
            raise ConfigError(f"unknown key(s) {[self.key(k) for k in unknown]}")
