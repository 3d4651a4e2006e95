"""sensor_msgs/JointState → arrays ordered as the policy card lists its joints.

Drivers publish joints in their own order and may split them over several messages.
"""

from __future__ import annotations

import math
from collections.abc import Container, Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from rl_deploy.errors import DecodeError


def joint_positions(msg: Any, names: Sequence[str]) -> npt.NDArray[np.float64]:
    """Positions (m or rad) of `names`, in that order; extra joints in the message are ignored."""
    return _select(msg, "position", names)


def joint_velocities(msg: Any, names: Sequence[str]) -> npt.NDArray[np.float64]:
    """Velocities (m/s or rad/s) of `names`, in that order."""
    return _select(msg, "velocity", names)


def named_positions(msg: Any, wanted: Container[str]) -> dict[str, float]:
    """Positions of the joints in `wanted` that this message names: one driver's share.

    Errors as joint_positions, except that a joint of `wanted` the message lacks is none.
    """
    names, values = _checked(msg, "position")
    picked = {name: v for name, v in zip(names, values.tolist(), strict=True) if name in wanted}
    _require_finite("position", picked.items())
    return picked


def _checked(msg: Any, field: str) -> tuple[list[str], npt.NDArray[np.float64]]:
    """The message's names and `field`, one value per distinct name."""
    message_names = [str(name) for name in msg.name]
    values = np.asarray(getattr(msg, field), dtype=np.float64)
    if values.shape != (len(message_names),):
        raise DecodeError(
            f"JointState has {len(message_names)} names but {field} has shape {values.shape}"
        )
    if len(set(message_names)) != len(message_names):
        duplicated = sorted({name for name in message_names if message_names.count(name) > 1})
        raise DecodeError(f"JointState names repeat: {duplicated}")
    return message_names, values


def _require_finite(field: str, values: Iterable[tuple[str, float]]) -> None:
    bad = [(name, float(v)) for name, v in values if not math.isfinite(v)]
    if bad:
        detail = ", ".join(f"{name}={value}" for name, value in bad)
        raise DecodeError(f"JointState {field} is not finite: {detail}")


def _select(msg: Any, field: str, names: Sequence[str]) -> npt.NDArray[np.float64]:
    message_names, values = _checked(msg, field)
    index = {name: i for i, name in enumerate(message_names)}
    missing = [name for name in names if name not in index]
    if missing:
        raise DecodeError(f"JointState lacks joint(s) {missing}; it has {message_names}")
    selected = values[[index[name] for name in names]]
    _require_finite(field, zip(names, selected.tolist(), strict=True))
    return selected
