"""Commands the policy emits and the safety layer passes on, in robot units."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class BaseVelocity:
    """Base twist in base_link (REP-103): m/s and rad/s."""

    linear_x: float = 0.0
    linear_y: float = 0.0
    angular_z: float = 0.0

    def is_finite(self) -> bool:
        return math.isfinite(self.linear_x + self.linear_y + self.angular_z)  # as ArmTarget


@dataclass(frozen=True)
class ArmTarget:
    """Arm joint position targets, ordered as `names` (m for prismatic, rad for revolute)."""

    names: tuple[str, ...]
    positions: npt.NDArray[np.float64]  # (len(names),)

    def is_finite(self) -> bool:
        # A sum is finite only when every term is (NaN and inf propagate; the few positions of
        # an arm cannot overflow): one call instead of numpy's two, every control step.
        return math.isfinite(sum(self.positions.tolist()))


@dataclass(frozen=True)
class Command:
    """One control step's output. `arm` is None when the policy drives only the base."""

    base: BaseVelocity = field(default_factory=BaseVelocity)
    arm: ArmTarget | None = None

    def is_finite(self) -> bool:
        return self.base.is_finite() and (self.arm is None or self.arm.is_finite())
