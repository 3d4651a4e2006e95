"""Pipeline configuration: one frozen tree, read from YAML or from ROS parameters.

The YAML layout is the ROS parameter layout (`policy_node: ros__parameters:` is accepted and
unwrapped), so a params file for the robot is also a valid `rl-deploy replay --config`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_type_hints

import yaml

from rl_deploy.errors import ConfigError
from rl_deploy.perception.runner import DetectorConfig

# Keys of a node's params file that belong to the ROS host, not to the pipeline.
HOST_KEYS = frozenset({"ros", "use_sim_time"})

PoseSource = Literal["amcl", "pose_stamped", "odometry", "tf"]
MaskSource = Literal["segmentation", "detector", "topics"]
ArmCommandType = Literal["joint_trajectory", "float64_multi_array"]


@dataclass(frozen=True)
class PolicyConfig:
    card: str = "models/example_reach.yaml"  # policy card YAML (its ONNX sits beside it)
    providers: tuple[str, ...] = (
        "TensorrtExecutionProvider",
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    )
    sha256: str = ""  # pin of the ONNX file; empty = not checked
    target_class: str = ""  # empty = the card's first target class


@dataclass(frozen=True)
class TopicsConfig:
    depth: str = "/camera/depth/image_raw"
    rgb: str = "/camera/color/image_raw"
    camera_info: str = "/camera/color/camera_info"
    segmentation: str = "/camera/segmentation"  # class-id image (mono8/16) from a simulator
    joint_states: str = "/joint_states"
    pose: str = "/amcl_pose"  # for pose_source tf: the /tf topic
    tf_static: str = "/tf_static"
    estop: str = "/estop"  # std_msgs/Bool
    cmd_vel: str = "/cmd_vel"
    arm_command: str = "/arm_controller/joint_trajectory"
    mask_out: str = "/rl_deploy/target_mask"
    diagnostics: str = "/diagnostics"


@dataclass(frozen=True)
class MasksConfig:
    # segmentation: a class-id image (simulators' ground truth) on topics.segmentation;
    # detector: the YOLO-seg detector on topics.rgb, in this process (lowest latency);
    # topics: one mono8 mask per class on <topic_prefix>/<class> (a separate perception_node).
    source: MaskSource = "segmentation"
    topic_prefix: str = "/rl_deploy/masks"
    # Channel holding the class id in a colour segmentation image (Gazebo's label map is rgb8);
    # -1: the image must be single-channel (mono8/mono16), as MuJoCo and most tools publish.
    segmentation_channel: int = -1
    depth_tolerance_m: float = 0.0  # detector masks: keep pixels this near the median depth
    # Class-id table of the segmentation image, as parallel lists (ROS parameters have no maps).
    class_names: tuple[str, ...] = ("cup", "bottle", "bowl", "table", "shelf")
    class_ids: tuple[int, ...] = (1, 2, 3, 4, 5)


@dataclass(frozen=True)
class FramesConfig:
    map: str = "map"
    base: str = "base_link"  # frame_id of stamped commands


@dataclass(frozen=True)
class TimeoutsConfig:
    camera_s: float = 0.5
    joints_s: float = 0.5
    pose_s: float = 0.5


@dataclass(frozen=True)
class DriftConfig:
    """Observation drift against the card's training statistics (rl_deploy.drift)."""

    window: int = 100  # control steps in the live window (10 s at 10 Hz)
    min_frames: int = 30  # no score before this many steps: a few frames say little
    # Score (mean shift in training standard deviations) above which /diagnostics reports WARN.
    # Measured in the example room with the trained example policy: nominal runs stay below
    # it, a camera tilted 10 degrees further down scores above it on depth.
    threshold: float = 0.4
    # Inputs to watch; empty: the image inputs (depth, masks). Vector inputs such as the pose
    # relative to the episode start change with the phase of the task, not with the world.
    inputs: tuple[str, ...] = ()


@dataclass(frozen=True)
class PipelineConfig:
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    robot_profile: str = "config/robots/diff_drive_arm.yaml"
    topics: TopicsConfig = field(default_factory=TopicsConfig)
    masks: MasksConfig = field(default_factory=MasksConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)  # masks.source: detector
    frames: FramesConfig = field(default_factory=FramesConfig)
    timeouts: TimeoutsConfig = field(default_factory=TimeoutsConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)
    pose_source: PoseSource = "amcl"
    sync_slop_s: float = 0.05  # depth/mask/rgb stamps closer than this form one frame set
    # A depth frame with fewer valid pixels (finite, > 0) than this is garbage: zero command.
    depth_min_valid_fraction: float = 0.05
    arm_command_type: ArmCommandType = "joint_trajectory"
    cmd_vel_stamped: bool = False
    diagnostics_period_s: float = 1.0
    # Relative paths (card, robot profile, detector) are taken from here; "" = the working
    # directory, as for the ROS nodes (whose launch files pass absolute share paths).
    base_dir: str = ""

    @classmethod
    def from_mapping(
        cls, values: Mapping[str, Any], base_dir: str | Path | None = None
    ) -> PipelineConfig:
        """Build from a nested mapping; unknown keys and wrong types name the offending key.

        `base_dir`, when given, overrides the mapping's own `base_dir`.
        """
        core = {k: v for k, v in values.items() if k not in HOST_KEYS}
        if base_dir is not None:
            core["base_dir"] = str(base_dir)
        config = _build(cls, core, "")
        config.validate()
        return config

    @classmethod
    def from_yaml(cls, path: str | Path) -> PipelineConfig:
        path = Path(path)
        try:
            document = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"cannot read config {path}: {err}") from err
        if not isinstance(document, Mapping):
            raise ConfigError(f"config {path} must hold a mapping, got {type(document).__name__}")
        # Accept a ROS params file: `<node name>: ros__parameters: {...}`.
        for value in document.values():
            if isinstance(value, Mapping) and "ros__parameters" in value:
                document = value["ros__parameters"]
                break
        return cls.from_mapping(document)

    def resolve(self, relative: str) -> Path:
        path = Path(relative)
        return path if path.is_absolute() else Path(self.base_dir or Path.cwd()) / path

    def validate(self) -> None:
        if len(self.masks.class_names) != len(self.masks.class_ids):
            raise ConfigError(
                f"masks.class_names ({len(self.masks.class_names)}) and masks.class_ids "
                f"({len(self.masks.class_ids)}) must have the same length"
            )
        for key, value in (
            ("sync_slop_s", self.sync_slop_s),
            ("depth_min_valid_fraction", self.depth_min_valid_fraction),
            ("diagnostics_period_s", self.diagnostics_period_s),
            ("timeouts.camera_s", self.timeouts.camera_s),
            ("timeouts.joints_s", self.timeouts.joints_s),
            ("timeouts.pose_s", self.timeouts.pose_s),
            ("drift.threshold", self.drift.threshold),
        ):
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{key} must be a finite number > 0, got {value!r}")
        if not 1 <= self.drift.min_frames <= self.drift.window:
            raise ConfigError(
                f"drift.min_frames ({self.drift.min_frames}) must be in [1, drift.window "
                f"({self.drift.window})]"
            )


Config = TypeVar("Config")


def _build(cls: type[Config], values: Mapping[str, Any], prefix: str) -> Config:
    if not isinstance(values, Mapping):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a mapping, got {values!r}")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown config key(s) {[prefix + k for k in unknown]}")
    kwargs = {name: _coerce(hints[name], value, prefix + name) for name, value in values.items()}
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, key: str) -> Any:
    if is_dataclass(hint):
        return _build(hint, value, key + ".")  # type: ignore[arg-type]
    choices = get_args(hint) if getattr(hint, "__origin__", None) is Literal else ()
    if choices:
        if value not in choices:
            raise ConfigError(f"{key} must be one of {list(choices)}, got {value!r}")
        return value
    if hint in _SCALARS:
        return _scalar(hint, value, key)
    item_type = get_args(hint)[0] if get_args(hint) else str
    if not isinstance(value, list | tuple) or not all(
        isinstance(v, item_type) and not isinstance(v, bool) for v in value
    ):
        raise ConfigError(f"{key} must be a list of {item_type.__name__}, got {value!r}")
    return tuple(value)


_SCALARS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}


def _scalar(hint: type, value: Any, key: str) -> Any:
    # bool is an int in Python, but `true` for a number (or 1 for a flag) is a typo here.
    ok = isinstance(value, bool) if hint is bool else not isinstance(value, bool)
    if hint is float:
        ok = ok and isinstance(value, int | float)
    elif hint is not bool:
        ok = ok and isinstance(value, hint)
    if not ok:
        raise ConfigError(f"{key} must be {_SCALARS[hint]}, got {value!r}")
    return float(value) if hint is float else value
