"""Every ROS parameter of every node, with default and description, free of rclpy.

Names, types, defaults and descriptions come from the core's config dataclasses (their fields
are declared with `rl_deploy.settings.setting`); only the nodes' own parameters are written
here. The nodes declare exactly these; the static checks compare them with config/*.yaml.
"""

from __future__ import annotations

import typing
from collections.abc import Collection, Iterable, Mapping
from dataclasses import MISSING, dataclass, fields, is_dataclass, replace
from typing import Any

from rl_deploy.config import PipelineConfig
from rl_deploy.settings import description_of

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
    cls: type, prefix: str = "", exclude: Collection[str] = ()
) -> list[ParamSpec]:
    """Flatten a config dataclass into dotted parameters: nested dataclasses become prefixes,
    every other field (but `exclude`) a parameter with the field's default and description."""
    hints = typing.get_type_hints(cls)
    specs: list[ParamSpec] = []
    for item in fields(cls):
        name, hint = prefix + item.name, hints[item.name]
        if item.name in exclude:
            continue
        if is_dataclass(hint):
            specs += specs_from_dataclass(hint, name + ".")  # type: ignore[arg-type]
            continue
        if item.default is MISSING:
            raise TypeError(f"{name} has no default: give it one or exclude it")
        default = list(item.default) if isinstance(item.default, tuple) else item.default
        specs.append(ParamSpec(name, default, _kind(hint), description_of(item)))
    return specs


def required(specs: Iterable[ParamSpec], names: Collection[str]) -> list[ParamSpec]:
    """The same specs, those in `names` marked as required."""
    return [replace(spec, required=True) if spec.name in names else spec for spec in specs]


def field_values(cls: type, values: Mapping[str, Any]) -> dict[str, Any]:
    """The values of `cls`'s own fields among flat parameter values."""
    return {item.name: values[item.name] for item in fields(cls) if item.name in values}


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
# An e-stop publisher may latch its state (transient-local) instead of repeating it.
ESTOP_QOS_SPEC = ParamSpec(
    "ros.qos.estop",
    "reliable:10",
    "string",
    "QoS of the e-stop input. transient_local also hears an e-stop latched before this node "
    "started; its publisher must then be transient-local too (a volatile one goes unheard, "
    f"with rclpy's incompatible-QoS warning). {QOS_HELP}.",
)
BASE_DIR_HELP = (
    "empty: the working directory when {what} is found there, else the installed package share."
)

# ---------------------------------------------------------------- policy_node


def policy_specs() -> list[ParamSpec]:
    # base_dir is the node's choice (see its description), not the config's.
    specs = specs_from_dataclass(PipelineConfig, exclude=("base_dir",))
    base_dir = ParamSpec(
        "base_dir",
        "",
        "string",
        "Directory that relative paths (card, robot profile, detector) are taken from; "
        + BASE_DIR_HELP.format(what="the card"),
    )
    return [
        *NODE_SPECS,
        *CAMERA_QOS_SPECS,
        ESTOP_QOS_SPEC,
        base_dir,
        *required(specs, ("policy.card", "robot_profile")),
    ]


# ---------------------------------------------------------------- perception_node


def perception_specs() -> list[ParamSpec]:
    from rl_deploy.perception.step import PerceptionConfig

    base_dir = ParamSpec(
        "base_dir",
        "",
        "string",
        "Directory that a relative detector.model is taken from; "
        + BASE_DIR_HELP.format(what="the model"),
    )
    specs = specs_from_dataclass(PerceptionConfig)
    return [*NODE_SPECS, *CAMERA_QOS_SPECS, base_dir, *required(specs, ("detector.model",))]


# ---------------------------------------------------------------- command_guard


def guard_specs() -> list[ParamSpec]:
    from rl_deploy.guard import GuardConfig, GuardIO

    robot_profile = ParamSpec(
        "robot_profile",
        "config/robots/diff_drive_arm.yaml",
        "string",
        "Robot profile YAML with the hard limits; relative: the working directory, then the "
        "installed package share.",
        required=True,
    )
    timing = specs_from_dataclass(GuardConfig, exclude=("limits",))  # limits: the profile's
    wire = specs_from_dataclass(GuardIO, exclude=("topics",))  # topics: remapped at launch
    return [
        *NODE_SPECS,
        ParamSpec("ros.qos.input", "reliable:10", "string", f"QoS of the inputs: {QOS_HELP}."),
        ParamSpec("ros.qos.output", "reliable:10", "string", "QoS of the outputs."),
        ESTOP_QOS_SPEC,
        robot_profile,
        *required(timing, ("input_timeout_s",)),
        *wire,
    ]
