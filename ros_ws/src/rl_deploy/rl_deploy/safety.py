"""The in-pipeline safety layer: robot limits that no policy card can widen, and the zero command.

Limits come from the robot profile (config/robots/*.yaml, key `robot:`); the separate
command_guard process enforces the same profile once more as the last hop to the robot.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rl_deploy.command import ArmTarget, BaseVelocity, Command
from rl_deploy.errors import ConfigError


@dataclass(frozen=True)
class JointLimit:
    """Position range and speed of one arm joint (m or rad, m/s or rad/s)."""

    min: float
    max: float
    max_velocity: float


@dataclass(frozen=True)
class SafetyLimits:
    """Hard limits of one robot."""

    max_linear_mps: float
    max_angular_rps: float
    max_linear_accel_mps2: float
    max_angular_accel_rps2: float
    joints: Mapping[str, JointLimit]

    @classmethod
    def from_mapping(cls, robot: Mapping[str, Any]) -> SafetyLimits:
        """Read the `robot:` mapping of a robot profile; every value must be finite and > 0."""
        base = _section(robot, "base", "robot")
        arm = robot.get("arm") or {}
        if not isinstance(arm, Mapping):
            raise ConfigError(f"robot.arm must be a mapping, got {arm!r}")
        joints_raw = _section(arm, "joints", "robot.arm") if arm else {}
        for name in joints_raw:
            _section(joints_raw, name, "robot.arm.joints")  # `joint_lift: 0.5` is no limit
        joints = {
            name: JointLimit(
                min=_number(spec, "min", f"robot.arm.joints.{name}", positive=False),
                max=_number(spec, "max", f"robot.arm.joints.{name}", positive=False),
                max_velocity=_number(spec, "max_velocity", f"robot.arm.joints.{name}"),
            )
            for name, spec in joints_raw.items()
        }
        for name, limit in joints.items():
            if limit.min >= limit.max:
                raise ConfigError(
                    f"robot.arm.joints.{name}: min {limit.min} must be below max {limit.max}"
                )
        return cls(
            max_linear_mps=_number(base, "max_linear_mps", "robot.base"),
            max_angular_rps=_number(base, "max_angular_rps", "robot.base"),
            max_linear_accel_mps2=_number(base, "max_linear_accel_mps2", "robot.base"),
            max_angular_accel_rps2=_number(base, "max_angular_accel_rps2", "robot.base"),
            joints=joints,
        )

    def require_joints(self, names: tuple[str, ...]) -> None:
        """Refuse to drive a joint the robot profile gives no limits for."""
        missing = [name for name in names if name not in self.joints]
        if missing:
            raise ConfigError(
                f"robot profile has no limits for arm joint(s) {missing}; "
                f"it defines {sorted(self.joints)}"
            )


def _section(mapping: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = mapping.get(key)
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}.{key} must be a mapping, got {value!r}")
    return value


def _number(mapping: Mapping[str, Any], key: str, where: str, *, positive: bool = True) -> float:
    value = mapping.get(key)
    number = _as_float(value)
    if number is None or not math.isfinite(number):
        raise ConfigError(f"{where}.{key} must be a finite number, got {value!r:.60}")
    if positive and number <= 0:
        raise ConfigError(f"{where}.{key} must be > 0, got {value!r}")
    return number


def _as_float(value: object) -> float | None:
    """A YAML number as a float; None for anything else, or an integer beyond float's range."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        return float(value)
    except OverflowError:
        return None


class SafetyFilter:
    """Clamps commands to the robot's limits; remembers the last output for acceleration limits."""

    def __init__(self, limits: SafetyLimits, period_s: float) -> None:
        self.limits = limits
        self.period_s = period_s
        self._last_base = BaseVelocity()

    def apply(self, command: Command, joints: Mapping[str, float] | None) -> Command:
        """Clamp a finite command: speed, then acceleration, then arm range and step size.

        `joints` are the measured positions; an arm target moves at most max_velocity·period
        away from them. Without a measurement the arm part is dropped (never move blind).
        """
        if not command.is_finite():
            raise ValueError("SafetyFilter.apply needs a finite command; use zero()")
        base = self._limit_base(command.base)
        self._last_base = base
        arm = self._limit_arm(command.arm, joints) if command.arm is not None else None
        return Command(base=base, arm=arm)

    def zero(self, joints: Mapping[str, float] | None, arm_names: tuple[str, ...]) -> Command:
        """Stop now: zero twist; the arm holds its measured position (or gets no command)."""
        self._last_base = BaseVelocity()
        if joints is None or not arm_names or any(name not in joints for name in arm_names):
            return Command()
        hold = np.array([joints[name] for name in arm_names], dtype=np.float64)
        return Command(arm=ArmTarget(names=arm_names, positions=hold))

    def _limit_base(self, wanted: BaseVelocity) -> BaseVelocity:
        lim = self.limits
        dv = lim.max_linear_accel_mps2 * self.period_s
        dw = lim.max_angular_accel_rps2 * self.period_s
        last = self._last_base
        return BaseVelocity(
            linear_x=_step_towards(last.linear_x, wanted.linear_x, lim.max_linear_mps, dv),
            linear_y=_step_towards(last.linear_y, wanted.linear_y, lim.max_linear_mps, dv),
            angular_z=_step_towards(last.angular_z, wanted.angular_z, lim.max_angular_rps, dw),
        )

    def _limit_arm(self, target: ArmTarget, joints: Mapping[str, float] | None) -> ArmTarget | None:
        if joints is None or any(name not in joints for name in target.names):
            return None
        limited = np.empty(len(target.names), dtype=np.float64)
        for i, name in enumerate(target.names):
            lim = self.limits.joints[name]
            max_step = lim.max_velocity * self.period_s
            current = joints[name]
            goal = min(max(float(target.positions[i]), lim.min), lim.max)
            # The step bound comes last: a joint measured outside its range is brought back at
            # max_velocity, not snapped to the range's edge.
            limited[i] = min(max(goal, current - max_step), current + max_step)
        return ArmTarget(names=target.names, positions=limited)


def _step_towards(last: float, wanted: float, max_abs: float, max_delta: float) -> float:
    clamped = min(max(wanted, -max_abs), max_abs)
    return min(max(clamped, last - max_delta), last + max_delta)


def load_robot_limits(path: str | Path) -> SafetyLimits:
    """Safety limits from a robot profile YAML (`robot:` mapping)."""
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read robot profile {path}: {err}") from err
    if not isinstance(document, Mapping) or not isinstance(document.get("robot"), Mapping):
        raise ConfigError(f"robot profile {path} must hold a `robot:` mapping")
    return SafetyLimits.from_mapping(document["robot"])
