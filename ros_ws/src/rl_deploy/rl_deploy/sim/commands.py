"""Commands a simulator takes as CDR bytes: base twists and arm targets, decoded by the codec.

A base driver reads Twist (or TwistStamped); an arm controller reads JointTrajectory (last
point) or a ros2_control forward command (Float64MultiArray, in the robot's joint order).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rl_deploy.codec import decode
from rl_deploy.codec.typestore import FLOAT64_MULTI_ARRAY, JOINT_TRAJECTORY, TWIST, TWIST_STAMPED
from rl_deploy.command import ArmTarget, BaseVelocity
from rl_deploy.errors import DecodeError


def base_velocity_from_cdr(data: bytes | memoryview, msgtype: str | None = None) -> BaseVelocity:
    kind = msgtype or TWIST
    if kind not in (TWIST, TWIST_STAMPED):
        raise DecodeError(f"a base command must be Twist or TwistStamped, got {kind!r}")
    msg = decode(data, kind)
    twist = msg.twist if kind == TWIST_STAMPED else msg
    return BaseVelocity(float(twist.linear.x), float(twist.linear.y), float(twist.angular.z))


def arm_target_from_cdr(
    data: bytes | memoryview, joint_order: Sequence[str], msgtype: str | None = None
) -> ArmTarget:
    """`joint_order` names the values of a Float64MultiArray (its first N joints)."""
    kind = msgtype or JOINT_TRAJECTORY
    if kind == FLOAT64_MULTI_ARRAY:
        values = np.asarray(decode(data, kind).data, dtype=np.float64)
        if not 0 < len(values) <= len(joint_order):
            raise DecodeError(
                f"Float64MultiArray arm command has {len(values)} values for joints "
                f"{list(joint_order)}"
            )
        if not np.isfinite(values).all():
            raise DecodeError(f"Float64MultiArray arm command is not finite: {values.tolist()}")
        return ArmTarget(tuple(joint_order[: len(values)]), values)
    if kind != JOINT_TRAJECTORY:
        raise DecodeError(f"an arm command must be JointTrajectory or Float64MultiArray: {kind!r}")
    msg = decode(data, kind)
    if not msg.points:
        raise DecodeError("JointTrajectory arm command has no points")
    names = tuple(str(name) for name in msg.joint_names)
    positions = np.asarray(msg.points[-1].positions, dtype=np.float64)
    if positions.shape != (len(names),):
        raise DecodeError(
            f"JointTrajectory: {len(names)} joint names but {positions.shape} positions"
        )
    target = ArmTarget(names, positions)
    if not target.is_finite():
        raise DecodeError(
            f"arm command is not finite: {dict(zip(names, positions.tolist(), strict=True))}"
        )
    return target
