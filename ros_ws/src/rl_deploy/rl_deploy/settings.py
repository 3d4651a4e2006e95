"""Config fields that document themselves: `setting(default, description)` in a dataclass.

Hosts read the descriptions back (`description_of`) to declare their parameters, so a new
config field is described once, beside its default and type.
"""

from __future__ import annotations

from dataclasses import Field, field
from typing import Any, TypeVar

T = TypeVar("T")
DESCRIPTION = "description"
# Upper bound of every staleness timeout (pipeline and guard): a stop that waits longer for a
# dead input is no stop, and neither a params file nor `ros2 param set` may make one.
MAX_TIMEOUT_S = 5.0


def setting(default: T, description: str) -> T:
    """A dataclass field with `default`; `description` says what it does, with its unit."""
    return field(default=default, metadata={DESCRIPTION: description})


def description_of(item: Field[Any]) -> str:
    """The description a field was declared with; "" for a plain field."""
    return str(item.metadata.get(DESCRIPTION, ""))
