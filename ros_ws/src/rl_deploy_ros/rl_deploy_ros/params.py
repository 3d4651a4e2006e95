"""Every ROS parameter of every node, with default and description, free of rclpy.

The nodes declare exactly these; the static checks compare them with config/*.yaml.
"""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

from rl_deploy.config import PipelineConfig

ParamValue = bool | int | float | str | list[bool] | list[int] | list[float] | list[str]


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter; `kind` is the ROS type ("double", "string[]", ...)."""

    name: str  # dotted, as in the params YAML's nesting
    default: ParamValue
    kind: str
    description: str
    required: bool = False  # the shipped params file must set it (deployment-specific)


_KINDS = {bool: "bool", int: "integer", float: "double", str: "string"}


def _kind(hint: Any) -> str:
    if hint in _KINDS:
        return _KINDS[hint]
    args = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Literal:
        return _KINDS[type(args[0])]
    if typing.get_origin(hint) is tuple and args:
        return _KINDS[args[0]] + "[]"
    raise TypeError(f"no ROS parameter type for {hint!r}")


def specs_from_dataclass(
    instance: Any, descriptions: Mapping[str, str], prefix: str = ""
) -> list[ParamSpec]:
    """Flatten a config dataclass into dotted parameters (nested dataclasses become prefixes)."""
    hints = typing.get_type_hints(type(instance))
    specs: list[ParamSpec] = []
    for item in fields(instance):
        name, value = prefix + item.name, getattr(instance, item.name)
        if is_dataclass(value):
            specs += specs_from_dataclass(value, descriptions, name + ".")
            continue
        default = list(value) if isinstance(value, tuple) else value
        specs.append(ParamSpec(name, default, _kind(hints[item.name]), descriptions.get(name, "")))
    return specs


def nest(values: Mapping[str, Any]) -> dict[str, Any]:
    """{"a.b": 1} → {"a": {"b": 1}}: dotted parameters back into a config mapping."""
    nested: dict[str, Any] = {}
    for dotted, value in values.items():
        *parents, leaf = dotted.split(".")
        node = nested
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return nested


def defaults(specs: Sequence[ParamSpec]) -> dict[str, Any]:
    return {spec.name: spec.default for spec in specs}


def core_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    """The nested config mapping of the core: without the node's own `ros.*` and base_dir."""
    return nest({k: v for k, v in values.items() if not k.startswith("ros.") and k != "base_dir"})


# ---------------------------------------------------------------- shared by every node

# Keys under `ros.` belong to the node, not to the core (the core skips them in params files).
NODE_SPECS = [
    ParamSpec(
        "ros.autostart",
        True,
        "bool",
        "Configure and activate at start-up; false leaves the node unconfigured for a "
        "lifecycle manager to drive.",
    ),
]
QOS_HELP = (
    "sensor_data, reliable, best_effort, transient_local or system_default, with an optional "
    ":depth (e.g. reliable:5)"
)
CAMERA_QOS_SPECS = [
    ParamSpec("ros.qos.camera", "sensor_data", "string", f"QoS of camera inputs: {QOS_HELP}."),
    ParamSpec("ros.qos.state", "reliable:10", "string", "QoS of the other inputs."),
    ParamSpec("ros.qos.output", "reliable:10", "string", "QoS of the outputs."),
]
DETECTOR_DESCRIPTIONS = {
    "detector.model": "YOLO-seg ONNX export; class names come from its metadata.",
    "detector.providers": "ONNX Runtime execution providers in order of preference.",
    "detector.conf": "Minimum class score of a detection.",
    "detector.iou": "NMS IoU threshold within a class.",
    "detector.max_det": "Most detections kept per frame.",
    "detector.class_names": "Overrides the model's class names; empty: the model's own.",
    "detector.trt_cache_dir": "TensorRT engine cache directory; empty rebuilds each start.",
    "detector.fp16": "Build FP16 TensorRT engines.",
    "detector.intra_op_threads": "ONNX Runtime intra-op threads; 0: its default.",
    "detector.min_contrast": "Frames whose pixel standard deviation is below this (all black, "
    "saturated) give no detections; 0 disables the check.",
    "detector.io_binding": "ONNX Runtime I/O binding: auto (GPU providers only), on or off.",
}

# ---------------------------------------------------------------- policy_node

PIPELINE_DESCRIPTIONS = {
    **DETECTOR_DESCRIPTIONS,
    "policy.card": "Policy card YAML; its ONNX model sits beside it. Relative to base_dir.",
    "policy.providers": "ONNX Runtime execution providers in order of preference.",
    "policy.sha256": "Expected SHA-256 of the ONNX file; empty skips the check.",
    "policy.target_class": "Object class the policy is asked to reach; empty: the card's first.",
    "robot_profile": "Robot profile YAML with the hard limits (config/robots/). Relative to "
    "base_dir.",
    "topics.depth": "Depth image input (16UC1 mm or 32FC1 m).",
    "topics.rgb": "RGB image input (masks.source detector).",
    "topics.camera_info": "Camera info of the RGB image.",
    "topics.segmentation": "Class-id segmentation image (masks.source segmentation).",
    "topics.joint_states": "Joint states input.",
    "topics.pose": "Base pose input; the /tf topic when pose_source is tf.",
    "topics.tf_static": "Static transforms, read when pose_source is tf.",
    "topics.estop": "std_msgs/Bool e-stop; true gives zero commands until false.",
    "topics.cmd_vel": "Base command output (to command_guard).",
    "topics.arm_command": "Arm command output (to command_guard).",
    "topics.mask_out": "Target mask used by the policy (mono8 Image), for debugging.",
    "topics.diagnostics": "Health output.",
    "masks.source": "Where target masks come from: segmentation (class-id image), detector "
    "(in this process) or topics (perception_node's per-class masks).",
    "masks.topic_prefix": "masks.source topics: masks arrive on <prefix>/<class>.",
    "masks.depth_tolerance_m": "masks.source detector: keep mask pixels this near the "
    "instance's median depth (m); 0 disables.",
    "masks.class_names": "Class names of the segmentation image, parallel to class_ids.",
    "masks.class_ids": "Pixel values of those classes in the segmentation image.",
    "masks.segmentation_channel": "Channel of a multi-channel segmentation image that holds "
    "the class id (Gazebo: the last); -1 for single-channel images.",
    "frames.map": "Fixed frame of the pose (REP-105).",
    "frames.base": "Robot base frame; frame_id of stamped commands.",
    "timeouts.camera_s": "s; older camera frames give zero commands.",
    "timeouts.joints_s": "s; older joint states give zero commands.",
    "timeouts.pose_s": "s; an older pose gives zero commands.",
    "drift.window": "Control steps over which live observation statistics are compared with "
    "the policy card's training statistics.",
    "drift.min_frames": "Control steps in the window before a drift score is reported.",
    "drift.threshold": "Drift score (shift of the live mean in training standard deviations) "
    "above which /diagnostics reports WARN for that input.",
    "drift.inputs": "Policy inputs to watch for drift; empty: the image inputs (depth, masks).",
    "pose_source": "Message type of the pose topic: amcl, pose_stamped, odometry or tf.",
    "sync_slop_s": "s; depth and mask stamps closer than this form one frame set.",
    "depth_min_valid_fraction": "Depth frames with fewer valid pixels (finite, > 0) than this "
    "fraction are refused: zero command and a WARN on /diagnostics.",
    "arm_command_type": "joint_trajectory (JointTrajectoryController) or float64_multi_array "
    "(forward position controller).",
    "cmd_vel_stamped": "Publish TwistStamped instead of Twist.",
    "diagnostics_period_s": "s between two /diagnostics messages.",
    "base_dir": "Directory that relative paths (card, robot profile, detector) are taken "
    "from; empty: the working directory when the card is found there, else the installed "
    "package share.",
}


def policy_specs() -> list[ParamSpec]:
    config = PipelineConfig()
    specs = [
        spec
        if spec.name not in ("policy.card", "robot_profile")
        else ParamSpec(spec.name, spec.default, spec.kind, spec.description, required=True)
        for spec in specs_from_dataclass(config, PIPELINE_DESCRIPTIONS)
    ]
    # base_dir is the node's choice (see description), not the config's "." default.
    specs = [
        ParamSpec("base_dir", "", "string", PIPELINE_DESCRIPTIONS["base_dir"])
        if spec.name == "base_dir"
        else spec
        for spec in specs
    ]
    return NODE_SPECS + CAMERA_QOS_SPECS + specs


# ---------------------------------------------------------------- command_guard

GUARD_SPECS = [
    *NODE_SPECS,
    ParamSpec("ros.qos.input", "reliable:10", "string", f"QoS of the inputs: {QOS_HELP}."),
    ParamSpec("ros.qos.output", "reliable:10", "string", "QoS of the outputs."),
    ParamSpec(
        "robot_profile",
        "config/robots/diff_drive_arm.yaml",
        "string",
        "Robot profile YAML with the hard limits; relative: the working directory, then the "
        "installed package share.",
        required=True,
    ),
    ParamSpec("period_s", 0.02, "double", "s between two outputs (zero or not)."),
    ParamSpec(
        "input_timeout_s",
        0.15,
        "double",
        "s; a policy command older than this gives zero. Keep it below two policy periods "
        "minus period_s.",
        required=True,
    ),
    ParamSpec("teleop_timeout_s", 0.5, "double", "s; teleop has priority while this fresh."),
    ParamSpec("joints_timeout_s", 0.5, "double", "s; arm targets need joint states this fresh."),
    ParamSpec("stamped_in", False, "bool", "Policy and teleop inputs are TwistStamped."),
    ParamSpec("stamped_out", False, "bool", "Publish TwistStamped (Jazzy diff_drive_controller)."),
    ParamSpec(
        "arm_command_type",
        "joint_trajectory",
        "string",
        "joint_trajectory or float64_multi_array, for the arm input and output alike.",
    ),
    ParamSpec(
        "arm_joint_names",
        ["joint_lift", "joint_arm", "joint_wrist_yaw"],
        "string[]",
        "Joint order of float64_multi_array arm commands.",
    ),
    ParamSpec("frame_id", "base_link", "string", "frame_id of stamped outputs."),
    ParamSpec("diagnostics_period_s", 1.0, "double", "s between two /diagnostics messages."),
]

# ---------------------------------------------------------------- perception_node

PERCEPTION_DESCRIPTIONS = {
    **DETECTOR_DESCRIPTIONS,
    "topics.rgb": "RGB image input.",
    "topics.depth": "Depth aligned to the RGB image, for depth filtering; empty: none.",
    "topics.camera_info": "Camera info of the RGB image (sizes are checked); empty: none.",
    "topics.detections": "vision_msgs/Detection2DArray output (when vision_msgs is installed).",
    "topics.label_info": "vision_msgs/LabelInfo class map, transient-local.",
    "topics.masks": "Prefix of the per-class mono8 mask outputs: <prefix>/<class>.",
    "topics.overlay": "Debug overlay image output, only when overlay is true.",
    "target_classes": "Classes that get a mask topic; empty: every class of the model.",
    "mask_size": "[height, width] of the masks; [0, 0]: the camera's.",
    "depth_tolerance_m": "Keep mask pixels this near the instance's median depth (m); 0: off.",
    "depth_slop_s": "s; a depth frame pairs with an RGB frame this close in time.",
    "overlay": "Publish the debug overlay image (costs a full-resolution mask decode).",
    "base_dir": "Directory that a relative detector.model is taken from; empty: the working "
    "directory when the model is found there, else the installed package share.",
}


def perception_specs() -> list[ParamSpec]:
    from rl_deploy.perception.step import PerceptionConfig

    specs = specs_from_dataclass(PerceptionConfig(), PERCEPTION_DESCRIPTIONS)
    required = ("detector.model",)
    specs = [
        ParamSpec(s.name, s.default, s.kind, s.description, required=s.name in required)
        for s in specs
    ]
    base_dir = ParamSpec("base_dir", "", "string", PERCEPTION_DESCRIPTIONS["base_dir"])
    return [*NODE_SPECS, *CAMERA_QOS_SPECS, base_dir, *specs]
