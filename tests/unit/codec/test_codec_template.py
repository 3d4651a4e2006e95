"""Command and mask CDR patched into a template: the typestore's bytes; rclpy reads them back."""

from __future__ import annotations

import numpy as np
import pytest
from geometry_msgs.msg import Twist, TwistStamped
from hypothesis import given, settings
from hypothesis import strategies as st
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import Image
from std_msgs.msg import Float64MultiArray
from trajectory_msgs.msg import JointTrajectory

from rl_deploy import codec
from rl_deploy.codec.template import CommandEncoder, MaskImageEncoder
from rl_deploy.codec.typestore import (
    FLOAT64_MULTI_ARRAY,
    IMAGE,
    JOINT_TRAJECTORY,
    TWIST,
    TWIST_STAMPED,
    EncodeError,
)
from rl_deploy.command import ArmTarget, BaseVelocity

FLOATS = st.floats(allow_nan=True, allow_infinity=True)
STAMPS = st.integers(0, 2**31 * 10**9 - 1)
NAMES = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=7, unique=True)


TYPES = st.tuples(
    st.sampled_from([TWIST, TWIST_STAMPED]),
    st.sampled_from([JOINT_TRAJECTORY, FLOAT64_MULTI_ARRAY]),
)


@settings(max_examples=60, deadline=None)
@given(types=TYPES, frame=st.text(max_size=20), names=NAMES, data=st.data())
def test_patched_bytes_equal_the_typestore_s(types, frame, names, data):
    twist_type, arm_type = types
    period_ns = data.draw(st.integers(1, 10**10))
    encoder = CommandEncoder(twist_type, arm_type, frame, tuple(names), period_ns)
    for _ in range(3):  # the template is reused: nothing of one step leaks into the next
        stamp_ns = data.draw(STAMPS)
        base = BaseVelocity(data.draw(FLOATS), data.draw(FLOATS), data.draw(FLOATS))
        positions = np.array([data.draw(FLOATS) for _ in names], np.float64)
        arm = ArmTarget(tuple(names), positions)
        if twist_type == TWIST_STAMPED:
            twist_msg = codec.twist_stamped(base, stamp_ns, frame)
        else:
            twist_msg = codec.twist(base)
        assert encoder.base(base, stamp_ns) == codec.encode(twist_msg, twist_type)
        if arm_type == JOINT_TRAJECTORY:
            arm_msg = codec.joint_trajectory(arm, stamp_ns, frame, period_ns)
        else:
            arm_msg = codec.float64_multi_array(positions)
        assert encoder.arm(arm, stamp_ns) == codec.encode(arm_msg, arm_type)


def test_rclpy_reads_the_patched_commands():
    names = ("joint_lift", "joint_arm", "joint_wrist_yaw")
    stamped = CommandEncoder(TWIST_STAMPED, JOINT_TRAJECTORY, "base_link", names, 100_000_000)
    stamp_ns = 1_700_000_000_123_456_789
    twist = deserialize_message(stamped.base(BaseVelocity(0.25, -0.1, 0.5), stamp_ns), TwistStamped)
    assert (twist.twist.linear.x, twist.twist.linear.y, twist.twist.angular.z) == (0.25, -0.1, 0.5)
    assert (twist.header.stamp.sec, twist.header.stamp.nanosec) == (1_700_000_000, 123_456_789)
    assert twist.header.frame_id == "base_link"
    arm = ArmTarget(names, np.array([0.4, 0.2, -1.0]))
    trajectory = deserialize_message(stamped.arm(arm, stamp_ns), JointTrajectory)
    assert list(trajectory.joint_names) == list(names)
    assert list(trajectory.points[0].positions) == [0.4, 0.2, -1.0]
    assert trajectory.points[0].time_from_start.nanosec == 100_000_000
    plain = CommandEncoder(TWIST, FLOAT64_MULTI_ARRAY, "base_link", names, 100_000_000)
    assert deserialize_message(plain.base(BaseVelocity(1.0), 0), Twist).linear.x == 1.0
    assert list(deserialize_message(plain.arm(arm, 0), Float64MultiArray).data) == [0.4, 0.2, -1.0]


def test_stamps_out_of_range_and_other_joints_are_encode_errors():
    encoder = CommandEncoder(TWIST_STAMPED, JOINT_TRAJECTORY, "base_link", ("a", "b"), 10)
    with pytest.raises(EncodeError, match="does not fit builtin_interfaces/Time"):
        encoder.base(BaseVelocity(), 2**31 * 10**9)
    with pytest.raises(EncodeError, match=r"arm command for \['b', 'a'\]"):
        encoder.arm(ArmTarget(("b", "a"), np.zeros(2)), 0)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 40),
    st.integers(1, 40),
    st.lists(st.text(max_size=20), min_size=1, max_size=2),
    st.lists(STAMPS, min_size=1, max_size=3),
    st.integers(0, 2**32 - 1),
)
def test_mask_images_equal_the_typestore_s(height, width, frames, stamps, seed):
    encoder = MaskImageEncoder()  # a template per size and frame, patched for each stamp
    rng = np.random.default_rng(seed)
    for stamp_ns in stamps:
        for frame in frames:  # a frame that changes back and forth gets its template anew
            mask = (rng.random((height, width)) < 0.5).astype(np.uint8)
            image = codec.mask_to_image(mask * np.uint8(255), stamp_ns, frame)
            assert encoder.encode(mask, stamp_ns, frame) == codec.encode(image, IMAGE)


def test_rclpy_reads_the_mask_image():
    mask = np.zeros((6, 8), np.uint8)
    mask[2:4, 3:7] = 1
    encoder = MaskImageEncoder()
    encoder.encode(np.ones((6, 8), np.uint8), 5, "camera")  # the template is kept, not the pixels
    image = deserialize_message(encoder.encode(mask, 1_700_000_000_123_456_789, "camera"), Image)
    assert (image.height, image.width, image.encoding, image.step) == (6, 8, "mono8", 8)
    assert (image.header.stamp.sec, image.header.stamp.nanosec) == (1_700_000_000, 123_456_789)
    assert image.header.frame_id == "camera"
    np.testing.assert_array_equal(np.asarray(image.data, np.uint8).reshape(6, 8), mask * 255)


def test_a_mask_image_needs_a_uint8_plane():
    encoder = MaskImageEncoder()
    with pytest.raises(EncodeError, match="uint8 mask, got float32"):
        encoder.encode(np.zeros((4, 4), np.float32), 0, "camera")
    with pytest.raises(EncodeError, match=r"\(4, 4, 3\)"):
        encoder.encode(np.zeros((4, 4, 3), np.uint8), 0, "camera")
    with pytest.raises(EncodeError, match="int32 sec"):
        encoder.encode(np.zeros((4, 4), np.uint8), 2**31 * 10**9, "camera")
