"""Builders of the sensor messages a simulator publishes, on top of the project codec.

Each returns an addressed `Output` (CDR bytes); images go through `rl_deploy.codec.array_to_image`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from rl_deploy.codec import array_to_image, encode, make_header, message_class, ns_to_stamp
from rl_deploy.codec.typestore import (
    CAMERA_INFO,
    CLOCK,
    IMAGE,
    JOINT_STATE,
    ODOMETRY,
    POINT,
    POSE,
    POSE_WITH_COVARIANCE,
    POSE_WITH_COVARIANCE_STAMPED,
    QUATERNION,
    TF_MESSAGE,
    TRANSFORM,
    TRANSFORM_STAMPED,
    TWIST,
    VECTOR3,
)
from rl_deploy.geometry import Pose2D
from rl_deploy.io import Output
from rl_deploy.sim.spec import CameraSpec

TWIST_WITH_COVARIANCE = "geometry_msgs/msg/TwistWithCovariance"
REGION_OF_INTEREST = "sensor_msgs/msg/RegionOfInterest"
_ZEROS36 = np.zeros(36, dtype=np.float64)


def _vector3(x: float, y: float, z: float) -> Any:
    return message_class(VECTOR3)(x=float(x), y=float(y), z=float(z))


def yaw_quaternion(yaw_rad: float) -> Any:
    return message_class(QUATERNION)(
        x=0.0, y=0.0, z=math.sin(yaw_rad / 2.0), w=math.cos(yaw_rad / 2.0)
    )


def _pose(pose: Pose2D) -> Any:
    point = message_class(POINT)(x=float(pose.x), y=float(pose.y), z=0.0)
    return message_class(POSE)(position=point, orientation=yaw_quaternion(pose.yaw))


def planar_covariance(std_xy_m: float, std_yaw_rad: float) -> npt.NDArray[np.float64]:
    """Row-major 6x6 covariance (x, y, z, roll, pitch, yaw) of a planar estimate."""
    covariance = np.zeros((6, 6), dtype=np.float64)
    covariance[0, 0] = covariance[1, 1] = std_xy_m**2
    covariance[5, 5] = std_yaw_rad**2
    return covariance.reshape(36)


def image(
    topic: str, array: npt.NDArray[Any], encoding: str, stamp_ns: int, frame_id: str
) -> Output:
    return Output(topic, IMAGE, encode(array_to_image(array, encoding, stamp_ns, frame_id), IMAGE))


def depth_image(
    topic: str, depth_m: npt.NDArray[np.float32], encoding: str, stamp_ns: int, frame_id: str
) -> Output:
    """Depth in metres (0 = invalid) as 16UC1 millimetres or 32FC1 metres."""
    if encoding == "16UC1":
        millimetres = np.clip(np.rint(depth_m * 1000.0), 0, 65535).astype(np.uint16)
        return image(topic, millimetres, encoding, stamp_ns, frame_id)
    return image(topic, depth_m.astype(np.float32, copy=False), encoding, stamp_ns, frame_id)


def camera_info(topic: str, stamp_ns: int, camera: CameraSpec) -> Output:
    """The ideal (undistorted) pinhole model of a simulated camera at its full resolution."""
    width, height, frame_id = camera.width, camera.height, camera.frame_id
    fx, fy, cx, cy = camera.intrinsics(width, height)
    roi = message_class(REGION_OF_INTEREST)(
        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
    )
    msg = message_class(CAMERA_INFO)(
        header=make_header(stamp_ns, frame_id),
        height=height,
        width=width,
        distortion_model="plumb_bob",
        d=np.zeros(5, dtype=np.float64),
        k=np.array([fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]),
        r=np.eye(3).reshape(9),
        p=np.array([fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]),
        binning_x=0,
        binning_y=0,
        roi=roi,
    )
    return Output(topic, CAMERA_INFO, encode(msg, CAMERA_INFO))


def joint_state(
    topic: str,
    stamp_ns: int,
    names: Sequence[str],
    positions: npt.NDArray[np.float64],
    velocities: npt.NDArray[np.float64],
) -> Output:
    msg = message_class(JOINT_STATE)(
        header=make_header(stamp_ns, ""),
        name=list(names),
        position=np.ascontiguousarray(positions, dtype=np.float64),
        velocity=np.ascontiguousarray(velocities, dtype=np.float64),
        effort=np.zeros(0, dtype=np.float64),
    )
    return Output(topic, JOINT_STATE, encode(msg, JOINT_STATE))


def odometry(
    topic: str,
    stamp_ns: int,
    frames: tuple[str, str],
    pose: Pose2D,
    *,
    linear_mps: float,
    angular_rps: float,
) -> Output:
    """nav_msgs/Odometry; `frames` = (header frame, child frame)."""
    frame_id, child_frame_id = frames
    twist = message_class(TWIST)(
        linear=_vector3(linear_mps, 0.0, 0.0), angular=_vector3(0.0, 0.0, angular_rps)
    )
    msg = message_class(ODOMETRY)(
        header=make_header(stamp_ns, frame_id),
        child_frame_id=child_frame_id,
        pose=message_class(POSE_WITH_COVARIANCE)(pose=_pose(pose), covariance=_ZEROS36),
        twist=message_class(TWIST_WITH_COVARIANCE)(twist=twist, covariance=_ZEROS36),
    )
    return Output(topic, ODOMETRY, encode(msg, ODOMETRY))


def pose_with_covariance(
    topic: str, stamp_ns: int, frame_id: str, pose: Pose2D, covariance: npt.NDArray[np.float64]
) -> Output:
    msg = message_class(POSE_WITH_COVARIANCE_STAMPED)(
        header=make_header(stamp_ns, frame_id),
        pose=message_class(POSE_WITH_COVARIANCE)(pose=_pose(pose), covariance=covariance),
    )
    return Output(topic, POSE_WITH_COVARIANCE_STAMPED, encode(msg, POSE_WITH_COVARIANCE_STAMPED))


def transform(
    stamp_ns: int,
    parent: str,
    child: str,
    xyz: tuple[float, float, float],
    wxyz: tuple[float, float, float, float],
) -> Any:
    """One TransformStamped (rotation as a w, x, y, z quaternion)."""
    rotation = message_class(QUATERNION)(
        x=float(wxyz[1]), y=float(wxyz[2]), z=float(wxyz[3]), w=float(wxyz[0])
    )
    return message_class(TRANSFORM_STAMPED)(
        header=make_header(stamp_ns, parent),
        child_frame_id=child,
        transform=message_class(TRANSFORM)(translation=_vector3(*xyz), rotation=rotation),
    )


def planar_transform(stamp_ns: int, parent: str, child: str, pose: Pose2D) -> Any:
    half = pose.yaw / 2.0
    return transform(
        stamp_ns, parent, child, (pose.x, pose.y, 0.0), (math.cos(half), 0.0, 0.0, math.sin(half))
    )


def tf_message(topic: str, transforms: Sequence[Any]) -> Output:
    msg = message_class(TF_MESSAGE)(transforms=list(transforms))
    return Output(topic, TF_MESSAGE, encode(msg, TF_MESSAGE))


def clock(topic: str, stamp_ns: int) -> Output:
    return Output(topic, CLOCK, encode(message_class(CLOCK)(clock=ns_to_stamp(stamp_ns)), CLOCK))
