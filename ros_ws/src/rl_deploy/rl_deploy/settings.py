"""Config fields that document themselves: `setting(default, description)` in a dataclass.

Hosts read the descriptions back (`description_of`) to declare their parameters, so a new
config field is described once, beside its default and type.
"""

from __future__ import annotations

from dataclasses import Field, field
from typing import Any, TypeVar

T = TypeVar("T")
DESCRIPTION = "description"


def setting(default: T, description: str) -> T:
    """A dataclass field with `default`; `description` says what it does, with its unit."""
    return field(default=default, metadata={DESCRIPTION: description})


def description_of(item: Field[Any]) -> str:
    """The description a field was declared with; "" for a plain field."""
    return str(item.metadata.get(DESCRIPTION, ""))
