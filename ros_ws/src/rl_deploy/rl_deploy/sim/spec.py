"""The scene description as frozen dataclasses: room, furniture, objects, robot, task, sensors.

`scene.load_scene` builds a `SceneSpec` from YAML; MJCF, SDF and the bridge config derive from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Rgba = tuple[float, float, float, float]

FLOOR = "floor"  # support name of objects standing on the floor
FURNITURE_KINDS = ("table", "shelf")
OBJECT_SHAPES = ("cup", "bottle", "bowl", "cylinder", "box")


@dataclass(frozen=True)
class RoomSpec:
    size_x_m: float  # interior extent along x; the room is centred on the origin
    size_y_m: float
    wall_height_m: float
    wall_thickness_m: float
    floor_rgba: Rgba
    wall_rgba: Rgba


@dataclass(frozen=True)
class ObjectClassSpec:
    """How every object of one class looks; `radius_m` is also its footprint on a support."""

    name: str
    shape: str  # one of OBJECT_SHAPES
    radius_m: float  # cylinder radius, or half the box side
    height_m: float
    rgba: Rgba


@dataclass(frozen=True)
class FurnitureSpec:
    name: str
    kind: str  # one of FURNITURE_KINDS
    x_m: float  # footprint centre, world frame
    y_m: float
    yaw_rad: float
    length_m: float  # along the furniture's own x
    depth_m: float  # along its own y (a shelf's back panel is at +y)
    height_m: float  # top surface
    levels_m: tuple[float, ...]  # heights objects can stand on, ascending, the top included
    rgba: Rgba


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    class_name: str
    support: str  # FLOOR or a furniture name
    level: int  # index into the support's levels_m (0 on the floor)
    x_m: float  # nominal position, world frame; episodes may re-sample it
    y_m: float
    yaw_rad: float


@dataclass(frozen=True)
class BaseSpec:
    """Differential-drive base; base_link sits on the floor at the centre of the wheel axle."""

    radius_m: float
    height_m: float
    mass_kg: float
    wheel_radius_m: float
    wheel_separation_m: float
    max_linear_mps: float
    max_angular_rps: float
    max_linear_accel_mps2: float
    max_angular_accel_rps2: float
    cmd_timeout_s: float  # a driver stops the base when cmd_vel goes quiet this long
    odom_rate_hz: float


@dataclass(frozen=True)
class CameraSpec:
    """Head RGB-D camera, rigidly mounted; pose given in base_link."""

    name: str
    frame_id: str  # optical frame (z forward, x right, y down) of published images
    width: int  # px
    height: int  # px
    hfov_rad: float
    x_m: float
    y_m: float
    z_m: float
    pitch_rad: float  # > 0 looks down
    rate_hz: float
    min_depth_m: float  # closer returns are invalid (0), as on a RealSense
    max_depth_m: float  # farther returns are invalid (0)
    depth_encoding: str  # "16UC1" (mm, as RealSense drivers publish) or "32FC1" (m)

    @property
    def vfov_rad(self) -> float:
        return 2.0 * math.atan(math.tan(self.hfov_rad / 2.0) * self.height / self.width)

    def intrinsics(self, width: int, height: int) -> tuple[float, float, float, float]:
        """(fx, fy, cx, cy) in px of a pinhole with this HFOV rendered at width x height."""
        fx = (width / 2.0) / math.tan(self.hfov_rad / 2.0)
        return fx, fx, (width - 1) / 2.0, (height - 1) / 2.0


@dataclass(frozen=True)
class JointSpec:
    name: str
    lower: float  # m or rad
    upper: float
    default: float  # position at episode start
    max_velocity: float  # m/s or rad/s; targets are approached no faster


@dataclass(frozen=True)
class ArmSpec:
    """Stretch-like arm reaching forward: lift (z), telescope (x), wrist yaw, two-finger gripper.

    `lift` is the carriage height above the floor; the end effector hangs `ee_drop_m` below it
    and sits `ee_reach_m` ahead of base_link when the telescope is retracted.
    """

    lift: JointSpec
    extension: JointSpec
    wrist_yaw: JointSpec
    gripper: JointSpec  # opening of each finger
    ee_reach_m: float
    ee_drop_m: float
    joint_state_rate_hz: float

    @property
    def joints(self) -> tuple[JointSpec, ...]:
        return (self.lift, self.extension, self.wrist_yaw, self.gripper)


@dataclass(frozen=True)
class RobotSpec:
    name: str
    base: BaseSpec
    camera: CameraSpec
    arm: ArmSpec


@dataclass(frozen=True)
class StartSpec:
    """Where episodes start: facing the target within `max_bearing_rad`, at a sampled range."""

    min_distance_m: float
    max_distance_m: float
    max_bearing_rad: float


@dataclass(frozen=True)
class TaskSpec:
    success_distance_m: float  # end effector to a target-class object centre
    target_supports: tuple[str, ...]  # where target objects may stand (FLOOR, furniture names)
    max_episode_s: float
    control_rate_hz: float
    randomize_objects: bool
    color_jitter: float  # ± per RGB channel, per episode; 0 keeps the class colours
    start: StartSpec


@dataclass(frozen=True)
class PoseSourceSpec:
    """SLAM-like pose: ground truth seen through latency, white noise and a random-walk drift."""

    rate_hz: float
    noise_xy_m: float  # std of white noise per axis
    noise_yaw_rad: float
    drift_xy_m_per_sqrt_s: float  # random-walk std growth
    drift_yaw_rad_per_sqrt_s: float
    latency_s: float  # published estimates describe the robot this long ago


@dataclass(frozen=True)
class TopicsSpec:
    """ROS topic names, identical in MuJoCo and Gazebo (through the bridge)."""

    rgb: str = "/camera/color/image_raw"
    depth: str = "/camera/depth/image_raw"
    camera_info: str = "/camera/color/camera_info"
    depth_camera_info: str = "/camera/depth/camera_info"
    segmentation: str = "/camera/segmentation"
    joint_states: str = "/joint_states"
    odom: str = "/odom"
    pose: str = "/amcl_pose"
    tf: str = "/tf"
    tf_static: str = "/tf_static"
    cmd_vel: str = "/cmd_vel"
    arm_command: str = "/arm_controller/joint_trajectory"
    clock: str = "/clock"


@dataclass(frozen=True)
class SceneSpec:
    name: str
    classes: tuple[str, ...]  # class table: segmentation id = index + 1, 0 = background
    object_classes: dict[str, ObjectClassSpec]
    room: RoomSpec
    furniture: tuple[FurnitureSpec, ...]
    objects: tuple[ObjectSpec, ...]
    robot: RobotSpec
    task: TaskSpec
    pose_source: PoseSourceSpec
    topics: TopicsSpec
    timestep_s: float  # physics step

    def class_id(self, class_name: str) -> int:
        """Segmentation id of a class; 0 (background) for a name outside the class table."""
        return self.classes.index(class_name) + 1 if class_name in self.classes else 0

    def furniture_named(self, name: str) -> FurnitureSpec:
        for item in self.furniture:
            if item.name == name:
                return item
        raise KeyError(name)

    def support_height_m(self, obj: ObjectSpec) -> float:
        if obj.support == FLOOR:
            return 0.0
        return self.furniture_named(obj.support).levels_m[obj.level]
