"""Safety limits: clamping, acceleration, arm range and step, the zero command, config errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rl_deploy.command import ArmTarget, BaseVelocity, Command
from rl_deploy.errors import ConfigError
from rl_deploy.safety import SafetyFilter, SafetyLimits

ROBOT = {
    "base": {
        "max_linear_mps": 0.5,
        "max_angular_rps": 1.0,
        "max_linear_accel_mps2": 1.0,
        "max_angular_accel_rps2": 2.0,
    },
    "arm": {"joints": {"lift": {"min": 0.0, "max": 1.0, "max_velocity": 0.5}}},
}
PERIOD_S = 0.1


def make_filter() -> SafetyFilter:
    return SafetyFilter(SafetyLimits.from_mapping(ROBOT), PERIOD_S)


def test_speed_and_acceleration_are_limited():
    safety = make_filter()
    wanted = Command(base=BaseVelocity(linear_x=5.0, angular_z=-5.0))
    first = safety.apply(wanted, None).base
    assert first.linear_x == pytest.approx(0.1)  # 1 m/s² · 0.1 s
    assert first.angular_z == pytest.approx(-0.2)
    for _ in range(20):
        last = safety.apply(wanted, None).base
    assert last.linear_x == pytest.approx(0.5)
    assert last.angular_z == pytest.approx(-1.0)


def test_arm_target_clamped_to_range_and_step():
    safety = make_filter()
    target = ArmTarget(names=("lift",), positions=np.array([3.0]))
    out = safety.apply(Command(arm=target), {"lift": 0.9})
    assert out.arm is not None
    assert out.arm.positions[0] == pytest.approx(0.95)  # 0.9 + 0.5 m/s · 0.1 s
    out = safety.apply(Command(arm=target), {"lift": 0.99})
    assert out.arm is not None
    assert out.arm.positions[0] == pytest.approx(1.0)  # range wins


@pytest.mark.parametrize(("measured", "expected"), [(1.6, 1.55), (-0.3, -0.25)])
def test_a_joint_measured_outside_its_range_is_brought_back_at_max_velocity(measured, expected):
    """Snapped to the range's edge, it would move 0.6 m in one period where 0.05 m is allowed."""
    safety = make_filter()
    target = ArmTarget(names=("lift",), positions=np.array([0.5]))
    out = safety.apply(Command(arm=target), {"lift": measured})
    assert out.arm is not None
    assert out.arm.positions[0] == pytest.approx(expected)  # 0.5 m/s · 0.1 s towards the range


def test_arm_without_measurement_is_not_moved():
    safety = make_filter()
    target = ArmTarget(names=("lift",), positions=np.array([0.5]))
    assert safety.apply(Command(arm=target), None).arm is None


def test_zero_stops_base_and_holds_arm():
    safety = make_filter()
    for _ in range(10):
        safety.apply(Command(base=BaseVelocity(linear_x=0.5)), None)
    stop = safety.zero({"lift": 0.42}, ("lift",))
    assert stop.base == BaseVelocity()
    assert stop.arm is not None
    assert stop.arm.positions.tolist() == [0.42]
    # after a stop, acceleration limits start again from zero
    assert safety.apply(Command(base=BaseVelocity(linear_x=0.5)), None).base.linear_x == 0.1


def test_apply_refuses_nonfinite():
    with pytest.raises(ValueError, match="finite"):
        make_filter().apply(Command(base=BaseVelocity(linear_x=math.nan)), None)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("base", "max_linear_mps"), -1.0, r"robot.base.max_linear_mps must be > 0, got -1.0"),
        (("base", "max_angular_rps"), math.inf, r"max_angular_rps must be a finite number"),
        (("base", "max_linear_accel_mps2"), "fast", r"got 'fast'"),
        (("base", "max_linear_mps"), 10**400, r"max_linear_mps must be a finite number"),
        (("arm", "joints", "lift", "max"), -1.0, r"lift: min 0.0 must be below max -1.0"),
        (("arm",), [1], r"robot.arm must be a mapping, got \[1\]"),
        (("arm",), "lift", r"robot.arm must be a mapping, got 'lift'"),
        (("arm", "joints"), [1], r"robot.arm.joints must be a mapping, got \[1\]"),
        (("arm", "joints", "lift"), 0.5, r"robot.arm.joints.lift must be a mapping, got 0.5"),
        (("base",), [1], r"robot.base must be a mapping, got \[1\]"),
    ],
)
def test_bad_profile_values_are_named(path, value, message):
    robot = {
        "base": dict(ROBOT["base"]),
        "arm": {"joints": {"lift": dict(ROBOT["arm"]["joints"]["lift"])}},
    }
    node = robot
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ConfigError, match=message):
        SafetyLimits.from_mapping(robot)


def test_joint_without_limits_is_refused():
    limits = SafetyLimits.from_mapping(ROBOT)
    with pytest.raises(ConfigError, match=r"no limits for arm joint\(s\) \['wrist'\]"):
        limits.require_joints(("lift", "wrist"))


@pytest.mark.parametrize(
    "values",
    [(math.nan, 0.0, 0.0), (math.inf, -math.inf, 0.0), (0.0, 0.0, -math.inf), (1e308, 1e308, 0.0)],
)
def test_a_command_with_any_non_finite_value_is_not_finite(values):
    # 1e308 + 1e308 overflows: no real command is that large, and refusing it stops the robot.
    assert not BaseVelocity(*values).is_finite()
    arm = ArmTarget(("a", "b", "c"), np.array(values))
    assert not Command(arm=arm).is_finite()
    assert Command(BaseVelocity(0.1, 0.0, -0.2), ArmTarget(("a",), np.array([0.3]))).is_finite()
