"""A generated RGB-D bag: a robot drives towards a cup, recorded as rosbag2 (mcap or sqlite3).

Used by the tests and the demo so replay can be exercised with no robot and no download. The
scene is simple on purpose: a floor plane, a back wall and a cup whose image region and depth
follow the robot's motion, published on the topics the default config expects.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from rosbags.rosbag2 import StoragePlugin, Writer

from rl_deploy import codec
from rl_deploy.codec import typestore as msgtypes
from rl_deploy.config import TopicsConfig
from rl_deploy.geometry import Pose2D

CUP_CLASS_ID = 1  # matches the default MasksConfig table
EXTRA_JOINTS = ("joint_head_pan", "joint_head_tilt", "joint_gripper")  # ignored by the stack


@dataclass(frozen=True)
class SyntheticBagSpec:
    seconds: float = 3.0
    camera_hz: float = 30.0
    joints_hz: float = 50.0
    pose_hz: float = 10.0
    width: int = 640
    height: int = 480
    storage: Literal["mcap", "sqlite3"] = "mcap"
    pose_source: Literal["amcl", "pose_stamped", "odometry", "tf"] = "amcl"
    joint_names: tuple[str, ...] = ("joint_lift", "joint_arm", "joint_wrist_yaw")
    start_ns: int = 1_700_000_000_000_000_000
    seed: int = 0


def write_synthetic_bag(path: str | Path, spec: SyntheticBagSpec = SyntheticBagSpec()) -> Path:
    """Write the bag directory at `path` (must not exist) and return it."""
    path = Path(path)
    topics = TopicsConfig()
    rng = np.random.default_rng(spec.seed)
    plugin = StoragePlugin.MCAP if spec.storage == "mcap" else StoragePlugin.SQLITE3
    messages: list[tuple[int, str, str, Any]] = []

    for stamp_ns in _times(spec, spec.camera_hz):
        pose = _robot_pose(spec, stamp_ns)
        depth_m, class_ids = _render(spec, pose, rng)
        rgb = _colourise(depth_m, class_ids)
        for topic, msgtype, msg in (
            (topics.depth, msgtypes.IMAGE, _depth_image(depth_m, stamp_ns)),
            (
                topics.segmentation,
                msgtypes.IMAGE,
                codec.array_to_image(class_ids, "mono8", stamp_ns, "camera_color_optical_frame"),
            ),
            (
                topics.rgb,
                msgtypes.IMAGE,
                codec.array_to_image(rgb, "rgb8", stamp_ns, "camera_color_optical_frame"),
            ),
        ):
            messages.append((stamp_ns, topic, msgtype, msg))
    for stamp_ns in _times(spec, spec.joints_hz):
        messages.append(
            (stamp_ns, topics.joint_states, msgtypes.JOINT_STATE, _joint_state(spec, stamp_ns))
        )
    for stamp_ns in _times(spec, spec.pose_hz):
        pose = _robot_pose(spec, stamp_ns)
        messages.extend(_pose_messages(spec, topics, pose, stamp_ns))
    messages.sort(key=lambda m: m[0])

    with Writer(path, version=9, storage_plugin=plugin) as writer:
        connections = {}
        for _, topic, msgtype, _ in messages:
            if topic not in connections:
                connections[topic] = writer.add_connection(
                    topic, msgtype, typestore=codec.TYPESTORE
                )
        for stamp_ns, topic, msgtype, msg in messages:
            writer.write(connections[topic], stamp_ns, codec.encode(msg, msgtype))
    return path


def _times(spec: SyntheticBagSpec, rate_hz: float) -> list[int]:
    count = int(spec.seconds * rate_hz)
    return [spec.start_ns + round(i * 1e9 / rate_hz) for i in range(count)]


def _robot_pose(spec: SyntheticBagSpec, stamp_ns: int) -> Pose2D:
    t_s = (stamp_ns - spec.start_ns) / 1e9
    return Pose2D(x=1.0 + 0.2 * t_s, y=0.5, yaw=0.1 * math.sin(t_s))


def _render(
    spec: SyntheticBagSpec, pose: Pose2D, rng: np.random.Generator
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8]]:
    """Depth (m) and class ids: floor below the horizon, a wall at 4 m, a cup at x = 3.5 m."""
    h, w = spec.height, spec.width
    rows = np.arange(h, dtype=np.float32)[:, None]
    horizon = h * 0.45
    floor_m = np.where(rows > horizon, 1.3 * (h * 0.9) / np.maximum(rows - horizon, 1.0), 0.0)
    wall_m = np.float32(4.0 - (pose.x - 1.0))
    depth = np.broadcast_to(np.where((floor_m > 0) & (floor_m < wall_m), floor_m, wall_m), (h, w))
    depth = (depth + rng.normal(0.0, 0.005, (h, w))).astype(np.float32)
    depth[rng.random((h, w)) < 0.01] = 0.0  # dropouts, as a real sensor has
    class_ids = np.zeros((h, w), dtype=np.uint8)
    cup_range_m = 3.5 - pose.x
    half_px = int(min(w / 4, 0.08 / max(cup_range_m, 0.3) * w * 1.3))
    centre_u = int(w / 2 - pose.yaw * w)
    centre_v = int(horizon + 40 / max(cup_range_m, 0.3))
    v0, v1 = max(centre_v - half_px, 0), min(centre_v + half_px, h)
    u0, u1 = max(centre_u - half_px, 0), min(centre_u + half_px, w)
    class_ids[v0:v1, u0:u1] = CUP_CLASS_ID
    depth[v0:v1, u0:u1] = cup_range_m
    return depth, class_ids


def _colourise(
    depth_m: npt.NDArray[np.float32], class_ids: npt.NDArray[np.uint8]
) -> npt.NDArray[np.uint8]:
    grey = np.clip(255 - depth_m * 40, 0, 255).astype(np.uint8)
    rgb = np.stack([grey, grey, grey], axis=-1)
    rgb[class_ids == CUP_CLASS_ID] = (200, 40, 40)
    return rgb


def _depth_image(depth_m: npt.NDArray[np.float32], stamp_ns: int) -> Any:
    depth_mm = np.round(depth_m * 1000.0).astype(np.uint16)  # RealSense-style 16UC1
    return codec.array_to_image(depth_mm, "16UC1", stamp_ns, "camera_depth_optical_frame")


def _joint_state(spec: SyntheticBagSpec, stamp_ns: int) -> Any:
    t_s = (stamp_ns - spec.start_ns) / 1e9
    names: Sequence[str] = (*EXTRA_JOINTS[:1], *spec.joint_names, *EXTRA_JOINTS[1:])
    positions = [0.0] + [0.5 + 0.05 * math.sin(t_s), 0.1, 0.0] + [0.0] * (len(EXTRA_JOINTS) - 1)
    state = codec.message_class(msgtypes.JOINT_STATE)
    return state(
        header=codec.make_header(stamp_ns, ""),
        name=list(names),
        position=np.array(positions[: len(names)], dtype=np.float64),
        velocity=np.zeros(0, dtype=np.float64),
        effort=np.zeros(0, dtype=np.float64),
    )


# Topic each pose source is published on; pass the same to the pipeline's `topics.pose`.
POSE_TOPICS = {"amcl": "/amcl_pose", "pose_stamped": "/pose", "odometry": "/odom", "tf": "/tf"}
MAP_TO_ODOM = Pose2D(x=0.3, y=-0.2, yaw=0.25)  # a SLAM correction, for the tf chain


def _pose_messages(
    spec: SyntheticBagSpec, topics: TopicsConfig, pose: Pose2D, stamp_ns: int
) -> list[tuple[int, str, str, Any]]:
    """The base pose as the configured source publishes it (topics.pose is ignored for tf)."""
    topic = POSE_TOPICS[spec.pose_source]
    header = codec.make_header(stamp_ns, "map")
    if spec.pose_source == "amcl":
        covariance = np.zeros(36, dtype=np.float64)
        with_covariance = msgtypes.POSE_WITH_COVARIANCE
        msg = codec.message_class(msgtypes.POSE_WITH_COVARIANCE_STAMPED)(
            header=header,
            pose=codec.message_class(with_covariance)(
                pose=_geometry_pose(pose), covariance=covariance
            ),
        )
        return [(stamp_ns, topic, msgtypes.POSE_WITH_COVARIANCE_STAMPED, msg)]
    if spec.pose_source == "pose_stamped":
        msg = codec.message_class(msgtypes.POSE_STAMPED)(header=header, pose=_geometry_pose(pose))
        return [(stamp_ns, topic, msgtypes.POSE_STAMPED, msg)]
    if spec.pose_source == "odometry":
        return [(stamp_ns, topic, msgtypes.ODOMETRY, _odometry(pose, stamp_ns))]
    # tf: map→odom is static here, odom→base_link moves; the pipeline chains them.
    odom_to_base = _inverse(MAP_TO_ODOM).compose(pose)
    messages = [
        (stamp_ns, "/tf", msgtypes.TF_MESSAGE, _tf([("odom", "base_link", odom_to_base)], stamp_ns))
    ]
    if stamp_ns == spec.start_ns:
        static = _tf([("map", "odom", MAP_TO_ODOM)], stamp_ns)
        messages.append((stamp_ns, "/tf_static", msgtypes.TF_MESSAGE, static))
    return messages


def _inverse(pose: Pose2D) -> Pose2D:
    c, s = math.cos(pose.yaw), math.sin(pose.yaw)
    return Pose2D(x=-(c * pose.x + s * pose.y), y=s * pose.x - c * pose.y, yaw=-pose.yaw)


def _odometry(pose: Pose2D, stamp_ns: int) -> Any:
    cls = codec.message_class
    zeros = np.zeros(36, dtype=np.float64)
    vector = cls(msgtypes.VECTOR3)
    twist = cls(msgtypes.TWIST)(
        linear=vector(x=0.2, y=0.0, z=0.0), angular=vector(x=0.0, y=0.0, z=0.0)
    )
    return cls(msgtypes.ODOMETRY)(
        header=codec.make_header(stamp_ns, "odom"),
        child_frame_id="base_link",
        pose=cls(msgtypes.POSE_WITH_COVARIANCE)(pose=_geometry_pose(pose), covariance=zeros),
        twist=cls("geometry_msgs/msg/TwistWithCovariance")(twist=twist, covariance=zeros),
    )


def _tf(links: list[tuple[str, str, Pose2D]], stamp_ns: int) -> Any:
    cls = codec.message_class
    transforms = []
    for parent, child, pose in links:
        geometry = _geometry_pose(pose)
        translation = cls(msgtypes.VECTOR3)(x=pose.x, y=pose.y, z=0.0)
        transform = cls(msgtypes.TRANSFORM)(translation=translation, rotation=geometry.orientation)
        transforms.append(
            cls(msgtypes.TRANSFORM_STAMPED)(
                header=codec.make_header(stamp_ns, parent),
                child_frame_id=child,
                transform=transform,
            )
        )
    return cls(msgtypes.TF_MESSAGE)(transforms=transforms)


def _geometry_pose(pose: Pose2D) -> Any:
    point = codec.message_class(msgtypes.POINT)(x=pose.x, y=pose.y, z=0.0)
    quaternion = codec.message_class(msgtypes.QUATERNION)(
        x=0.0, y=0.0, z=math.sin(pose.yaw / 2), w=math.cos(pose.yaw / 2)
    )
    return codec.message_class(msgtypes.POSE)(position=point, orientation=quaternion)
