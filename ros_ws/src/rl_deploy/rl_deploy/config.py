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
from rl_deploy.settings import MAX_TIMEOUT_S, setting

# Keys of a node's params file that belong to the ROS host, not to the pipeline.
HOST_KEYS = frozenset({"ros", "use_sim_time"})
MAX_SYNC_SLOP_S = 1.0  # far beyond any camera's frame period

PoseSource = Literal["amcl", "pose_stamped", "odometry", "tf"]
MaskSource = Literal["segmentation", "detector", "topics"]
ArmCommandType = Literal["joint_trajectory", "float64_multi_array"]


@dataclass(frozen=True)
class PolicyConfig:
    card: str = setting(
        "models/example_reach.yaml",
        "Policy card YAML; its ONNX model sits beside it. Relative to base_dir.",
    )
    providers: tuple[str, ...] = setting(
        ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
        "ONNX Runtime execution providers in order of preference.",
    )
    sha256: str = setting("", "Expected SHA-256 of the ONNX file; empty skips the check.")
    # A policy network runs in a fraction of a millisecond, so worker threads buy it little;
    # where the detector runs in the same process they spin on the cores its run needs
    # (back-to-back ticks: the detector 16-22 ms beside them, 10 ms without; stack_node: a
    # third of a core spent spinning).
    intra_op_threads: int = setting(
        -1,
        "ONNX Runtime intra-op threads of the policy's session; -1: one when a detector runs "
        "in this process (masks.source detector, or stack_node), else onnxruntime's default; "
        "0: its default (one per core).",
    )
    target_class: str = setting(
        "", "Object class the policy is asked to reach; empty: the card's first."
    )


@dataclass(frozen=True)
class TopicsConfig:
    depth: str = setting("/camera/depth/image_raw", "Depth image input (16UC1 mm or 32FC1 m).")
    rgb: str = setting("/camera/color/image_raw", "RGB image input (masks.source detector).")
    camera_info: str = setting("/camera/color/camera_info", "Camera info of the RGB image.")
    segmentation: str = setting(
        "/camera/segmentation",
        "Class-id segmentation image, mono8/16, as simulators publish (masks.source segmentation).",
    )
    joint_states: str = setting("/joint_states", "Joint states input.")
    pose: str = setting("/amcl_pose", "Base pose input; the /tf topic when pose_source is tf.")
    tf_static: str = setting("/tf_static", "Static transforms, read when pose_source is tf.")
    estop: str = setting("/estop", "std_msgs/Bool e-stop; true gives zero commands until false.")
    cmd_vel: str = setting("/cmd_vel", "Base command output (to command_guard).")
    arm_command: str = setting(
        "/arm_controller/joint_trajectory", "Arm command output (to command_guard)."
    )
    mask_out: str = setting(
        "/rl_deploy/target_mask",
        "Target mask used by the policy (mono8 Image, camera size), for debugging; policy_node "
        "publishes it while someone subscribes.",
    )
    diagnostics: str = setting("/diagnostics", "Health output.")


@dataclass(frozen=True)
class MasksConfig:
    source: MaskSource = setting(
        "segmentation",
        "Where target masks come from: segmentation (a class-id image, simulators' ground "
        "truth), detector (YOLO-seg on topics.rgb in this process, lowest latency) or topics "
        "(a separate perception_node's per-class masks).",
    )
    topic_prefix: str = setting(
        "/rl_deploy/masks", "masks.source topics: masks arrive on <prefix>/<class>."
    )
    # Gazebo's label map is rgb8; MuJoCo and most tools publish mono8/mono16.
    segmentation_channel: int = setting(
        -1,
        "Channel of a multi-channel segmentation image that holds the class id (Gazebo: the "
        "last); -1 for single-channel images.",
    )
    depth_tolerance_m: float = setting(
        0.0,
        "masks.source detector: keep mask pixels this near the instance's median depth (m); "
        "0 disables.",
    )
    # The class-id table of the segmentation image as parallel lists (ROS parameters have no
    # maps).
    class_names: tuple[str, ...] = setting(
        ("cup", "bottle", "bowl", "table", "shelf"),
        "Class names of the segmentation image, parallel to class_ids.",
    )
    class_ids: tuple[int, ...] = setting(
        (1, 2, 3, 4, 5), "Pixel values of those classes in the segmentation image."
    )


@dataclass(frozen=True)
class FramesConfig:
    map: str = setting("map", "Fixed frame of the pose (REP-105).")
    base: str = setting("base_link", "Robot base frame; frame_id of stamped commands.")


@dataclass(frozen=True)
class TimeoutsConfig:
    camera_s: float = setting(0.5, "s (at most 5); older camera frames give zero commands.")
    joints_s: float = setting(0.5, "s (at most 5); older joint states give zero commands.")
    pose_s: float = setting(0.5, "s (at most 5); an older pose gives zero commands.")


@dataclass(frozen=True)
class DriftConfig:
    """Observation drift against the card's training statistics (rl_deploy.drift)."""

    window: int = setting(
        200,
        "Control steps over which live observation statistics are compared with the policy "
        "card's training statistics (200: 20 s at 10 Hz, a few episodes).",
    )
    min_frames: int = setting(100, "Control steps in the window before a drift score is reported.")
    # Measured in the example room with the trained example policy over 20 s windows: nominal
    # runs score at most 0.6; a camera tilted 10 degrees further down narrows the spread of
    # depth to 0.59-0.68 of training (score 1.15-1.6). Depth noise of a few cm moves neither.
    threshold: float = setting(
        1.0,
        "Drift score above which /diagnostics reports WARN for that input. The score is the "
        "larger of the live mean's shift in training standard deviations and "
        "|ln(live std / training std)| / ln(spread_factor).",
    )
    spread_factor: float = setting(
        1.4, "Ratio of live to training spread (wider or narrower) that scores 1.0."
    )
    # Vector inputs such as the pose relative to the episode start change with the phase of
    # the task, not with the world: only images are watched by default.
    inputs: tuple[str, ...] = setting(
        (), "Policy inputs to watch for drift; empty: the image inputs (depth, masks)."
    )


@dataclass(frozen=True)
class PipelineConfig:
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    robot_profile: str = setting(
        "config/robots/diff_drive_arm.yaml",
        "Robot profile YAML with the hard limits (config/robots/). Relative to base_dir.",
    )
    topics: TopicsConfig = field(default_factory=TopicsConfig)
    masks: MasksConfig = field(default_factory=MasksConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)  # masks.source: detector
    frames: FramesConfig = field(default_factory=FramesConfig)
    timeouts: TimeoutsConfig = field(default_factory=TimeoutsConfig)
    drift: DriftConfig = field(default_factory=DriftConfig)
    pose_source: PoseSource = setting(
        "amcl", "Message type of the pose topic: amcl, pose_stamped, odometry or tf."
    )
    sync_slop_s: float = setting(
        0.05, "s (at most 1); depth, mask and RGB stamps closer than this form one frame set."
    )
    depth_min_valid_fraction: float = setting(
        0.05,
        "Depth frames with fewer valid pixels (finite, > 0) than this fraction are refused: "
        "zero command and a WARN on /diagnostics.",
    )
    arm_command_type: ArmCommandType = setting(
        "joint_trajectory",
        "joint_trajectory (JointTrajectoryController) or float64_multi_array (forward "
        "position controller).",
    )
    cmd_vel_stamped: bool = setting(False, "Publish TwistStamped instead of Twist.")
    diagnostics_period_s: float = setting(1.0, "s between two /diagnostics messages.")
    base_dir: str = setting(
        "",
        "Directory that relative paths (card, robot profile, detector) are taken from; empty: "
        "the working directory.",
    )

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
            document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
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
        for key, value, most in (  # each finite and > 0, and at most `most`
            ("sync_slop_s", self.sync_slop_s, MAX_SYNC_SLOP_S),
            ("depth_min_valid_fraction", self.depth_min_valid_fraction, 1.0),
            ("diagnostics_period_s", self.diagnostics_period_s, math.inf),
            ("timeouts.camera_s", self.timeouts.camera_s, MAX_TIMEOUT_S),
            ("timeouts.joints_s", self.timeouts.joints_s, MAX_TIMEOUT_S),
            ("timeouts.pose_s", self.timeouts.pose_s, MAX_TIMEOUT_S),
            ("drift.threshold", self.drift.threshold, math.inf),
        ):
            if not math.isfinite(value) or value <= 0:
                raise ConfigError(f"{key} must be a finite number > 0, got {value!r}")
            if value > most:
                raise ConfigError(f"{key} must be at most {most}, got {value!r}")
        tolerance = self.masks.depth_tolerance_m
        if not (math.isfinite(tolerance) and tolerance >= 0):
            raise ConfigError(
                f"masks.depth_tolerance_m must be a finite number >= 0 (0: off), got {tolerance!r}"
            )
        if not (math.isfinite(self.drift.spread_factor) and self.drift.spread_factor > 1):
            raise ConfigError(
                f"drift.spread_factor must be a finite number > 1, got {self.drift.spread_factor!r}"
            )
        if self.policy.intra_op_threads < -1:
            raise ConfigError(
                f"policy.intra_op_threads must be >= -1, got {self.policy.intra_op_threads}"
            )
        if not 1 <= self.drift.min_frames <= self.drift.window:
            raise ConfigError(
                f"drift.min_frames ({self.drift.min_frames}) must be in [1, drift.window "
                f"({self.drift.window})]"
            )


Config = TypeVar("Config")


def config_from_mapping(cls: type[Config], values: Mapping[str, Any], **given: Any) -> Config:
    """Any config dataclass from a nested mapping; unknown keys and wrong types name the key.

    `given` fields are passed on as they are (objects with no mapping form, such as limits).
    """
    return _build(cls, values, "", given)


def _build(
    cls: type[Config],
    values: Mapping[str, Any],
    prefix: str,
    given: Mapping[str, Any] | None = None,
) -> Config:
    if not isinstance(values, Mapping):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} must be a mapping, got {values!r}")
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown config key(s) {[prefix + k for k in unknown]}")
    kwargs = {name: _coerce(hints[name], value, prefix + name) for name, value in values.items()}
    return cls(**kwargs, **(given or {}))


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
        advice = ""
        if hint is str and isinstance(value, bool):  # `io_binding: off`, as YAML 1.1 reads it
            advice = " (quote on / off: unquoted, YAML reads them as booleans)"
        raise ConfigError(f"{key} must be {_SCALARS[hint]}, got {value!r:.60}{advice}")
    if hint is float:
        try:
            return float(value)
        except OverflowError:
            raise ConfigError(
                f"{key} must be a number within float range, got {value!r:.60}"
            ) from None
    return value
