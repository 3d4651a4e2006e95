"""Output messages: twist, arm trajectory, multi-array and diagnostics."""

from __future__ import annotations

import numpy as np
import pytest

from rl_deploy import codec
from rl_deploy.codec import typestore as ts
from rl_deploy.command import ArmTarget, BaseVelocity


def _round_trip(msg: object, msgtype: str) -> object:
    raw = codec.encode(msg, msgtype)
    decoded = codec.decode(raw, msgtype)
    assert codec.encode(decoded, msgtype) == raw
    return decoded


def test_twist_carries_only_planar_components():
    msg = _round_trip(codec.twist(BaseVelocity(0.25, -0.1, 0.6)), ts.TWIST)
    assert (msg.linear.x, msg.linear.y, msg.linear.z) == (0.25, -0.1, 0.0)
    assert (msg.angular.x, msg.angular.y, msg.angular.z) == (0.0, 0.0, 0.6)


def test_twist_stamped_has_stamp_and_frame():
    msg = _round_trip(
        codec.twist_stamped(BaseVelocity(0.1), 7_250_000_000, "base_link"), ts.TWIST_STAMPED
    )
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (7, 250_000_000)
    assert msg.header.frame_id == "base_link"
    assert msg.twist.linear.x == 0.1


def test_joint_trajectory_has_one_point_reached_after_time_from_start():
    target = ArmTarget(
        ("joint_lift", "joint_arm_l0", "joint_wrist_yaw"), np.array([0.5, 0.1, -1.0])
    )
    msg = codec.joint_trajectory(target, 3_000_000_000, "base_link", 1_500_000_000)
    msg = _round_trip(msg, ts.JOINT_TRAJECTORY)
    assert list(msg.joint_names) == ["joint_lift", "joint_arm_l0", "joint_wrist_yaw"]
    assert len(msg.points) == 1
    point = msg.points[0]
    np.testing.assert_array_equal(point.positions, [0.5, 0.1, -1.0])
    assert len(point.velocities) == len(point.accelerations) == len(point.effort) == 0
    assert (point.time_from_start.sec, point.time_from_start.nanosec) == (1, 500_000_000)
    assert codec.stamp_to_ns(msg.header.stamp) == 3_000_000_000


def test_joint_trajectory_refuses_names_and_positions_of_different_length():
    target = ArmTarget(("a", "b"), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(
        codec.EncodeError, match=r"2 names \['a', 'b'\] but positions of shape \(3,\)"
    ):
        codec.joint_trajectory(target, 0, "", 0)


def test_float64_multi_array_has_one_dimension():
    msg = _round_trip(
        codec.float64_multi_array(np.array([1.0, 2.5, -3.0]), "arm"), ts.FLOAT64_MULTI_ARRAY
    )
    np.testing.assert_array_equal(msg.data, [1.0, 2.5, -3.0])
    (dimension,) = msg.layout.dim
    assert (dimension.label, dimension.size, dimension.stride) == ("arm", 3, 3)
    assert msg.layout.data_offset == 0


def test_diagnostic_array_keeps_levels_and_values_in_order():
    statuses = [
        codec.DiagnosticStatusData(
            name="rl_deploy: policy",
            level=codec.DiagnosticLevel.OK,
            message="running",
            hardware_id="robot-7",
            values={"rate_hz": "10.0", "inference_ms": "4.2"},
        ),
        codec.DiagnosticStatusData("rl_deploy: inputs", codec.DiagnosticLevel.STALE, "no depth"),
    ]
    msg = _round_trip(codec.diagnostic_array(9_000_000_001, statuses), ts.DIAGNOSTIC_ARRAY)
    assert codec.stamp_to_ns(msg.header.stamp) == 9_000_000_001
    first, second = msg.status
    assert (first.level, first.name, first.message, first.hardware_id) == (
        0,
        "rl_deploy: policy",
        "running",
        "robot-7",
    )
    assert [(kv.key, kv.value) for kv in first.values] == [
        ("rate_hz", "10.0"),
        ("inference_ms", "4.2"),
    ]
    assert (second.level, second.values) == (3, [])
    levels = ts.message_class(ts.DIAGNOSTIC_STATUS)
    assert [level.value for level in codec.DiagnosticLevel] == [
        levels.OK,
        levels.WARN,
        levels.ERROR,
        levels.STALE,
    ]
