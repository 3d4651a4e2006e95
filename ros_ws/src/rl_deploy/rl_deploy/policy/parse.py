"""Parse and validate a policy card from YAML text or a mapping (no file or ONNX access).

Every CardError names the key path (e.g. `inputs[2].history`) and the offending value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, cast

import yaml

from rl_deploy.errors import CardError
from rl_deploy.policy._fields import Fields, as_number
from rl_deploy.policy.card import (
    BASE_FIELDS,
    DTYPES,
    IMAGE_SOURCES,
    POSE_COMPONENTS,
    SOURCE_KINDS,
    ContinuousDecoding,
    Decoding,
    DecodingSpec,
    DepthPreprocess,
    DiscreteDecoding,
    ImageGeometry,
    InputSpec,
    PolicyCard,
    RecurrentSpec,
    SourceKind,
    Statistics,
    TensorSpec,
)

Mode = Literal["velocity", "absolute", "delta"]
MIN_RATE_HZ, MAX_RATE_HZ = 0.1, 1000.0  # bounds of control_rate_hz, as of a sim scene


def parse_card(source: str | Mapping[str, Any], base_dir: Path) -> PolicyCard:
    """Card from YAML text or an already-loaded mapping; `onnx` is resolved against base_dir."""
    if isinstance(source, str):
        try:
            source = yaml.safe_load(source)
        except yaml.YAMLError as err:
            raise CardError(f"card: invalid YAML: {err}") from err
    top = Fields(source, "")
    name = top.string("name")
    version = top.string("version")
    onnx_file = top.string("onnx")
    rate_hz = top.number("control_rate_hz", positive=True)
    if not MIN_RATE_HZ <= rate_hz <= MAX_RATE_HZ:  # 5e-324 Hz overflows the control period
        raise top.fail("control_rate_hz", rate_hz, f"expected [{MIN_RATE_HZ}, {MAX_RATE_HZ}] Hz")
    joint_names = top.strings("joint_names")
    target_classes = top.strings("target_classes")
    outputs = _tensor_list(top, "outputs")
    recurrent = _recurrent_list(top)
    decoding = _decoding(top.sub("decoding"), outputs, joint_names)
    card = PolicyCard(
        name=name,
        version=version,
        onnx_path=(base_dir / onnx_file).resolve(),
        control_rate_hz=rate_hz,
        joint_names=joint_names,
        target_classes=target_classes,
        inputs=(),
        recurrent=recurrent,
        outputs=tuple(outputs),
        decoding=decoding,
    )
    inputs = _input_list(top, card)
    top.done()
    _check_unique(
        "inputs/recurrent.input",
        [spec.name for spec in inputs] + [state.input for state in recurrent],
    )
    _check_unique(
        "outputs/recurrent.output",
        [out.name for out in outputs] + [state.output for state in recurrent],
    )
    return replace(card, inputs=inputs)


def _check_unique(key: str, names: list[str]) -> None:
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise CardError(f"{key}: tensor names must be unique, got duplicates {duplicates}")


def _list(top: Fields, key: str, *, required: bool = True) -> list[Any]:
    if not required:
        value = top.raw(key) or []  # `recurrent:` left empty means none
        if not isinstance(value, list):
            raise top.fail(key, value, "expected a list")
        return value
    value = top.req(key)
    if not isinstance(value, list) or not value:
        raise top.fail(key, value, "expected a non-empty list")
    return value


def _shape(fields: Fields, key: str = "shape") -> tuple[int, ...]:
    value = fields.req(key)
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(dim, int) and not isinstance(dim, bool) and dim > 0 for dim in value)
    ):
        raise fields.fail(key, value, "expected a list of positive integers (static dims)")
    return tuple(value)


def _tensor(fields: Fields) -> TensorSpec:
    return TensorSpec(
        fields.string("name"), _shape(fields), fields.string("dtype", "float32", DTYPES)
    )


def _tensor_list(top: Fields, key: str) -> list[TensorSpec]:
    specs = []
    for index, item in enumerate(_list(top, key)):
        fields = Fields(item, f"{key}[{index}]")
        specs.append(_tensor(fields))
        fields.done()
    return specs


def _recurrent_list(top: Fields) -> tuple[RecurrentSpec, ...]:
    states = []
    for index, item in enumerate(_list(top, "recurrent", required=False)):
        fields = Fields(item, f"recurrent[{index}]")
        states.append(
            RecurrentSpec(
                input=fields.string("input"),
                output=fields.string("output"),
                shape=_shape(fields),
                dtype=fields.string("dtype", "float32", DTYPES),
                reset=cast(
                    Literal["episode_start"],
                    fields.string("reset", "episode_start", ("episode_start",)),
                ),
            )
        )
        fields.done()
    return tuple(states)


# --- inputs -------------------------------------------------------------------------------------


def _input_list(top: Fields, card: PolicyCard) -> tuple[InputSpec, ...]:
    return tuple(
        _input(Fields(item, f"inputs[{index}]"), card)
        for index, item in enumerate(_list(top, "inputs"))
    )


def _input(fields: Fields, card: PolicyCard) -> InputSpec:
    name = fields.string("name")
    source = cast(SourceKind, fields.string("source", choices=SOURCE_KINDS))
    shape = _shape(fields)
    if shape[0] != 1:
        raise fields.fail("shape", list(shape), "expected batch dimension 1 first")
    spec = InputSpec(
        name=name,
        shape=shape,
        dtype=fields.string("dtype", "float32", DTYPES),
        source=source,
        history=fields.integer("history", 1, minimum=1),
        history_fill=cast(
            Literal["repeat_first", "zeros"],
            fields.string("history_fill", "repeat_first", ("repeat_first", "zeros")),
        ),
        normalize=fields.boolean("normalize", False),
        clip=_range(fields, "clip") if fields.has("clip") else None,
    )
    if source in IMAGE_SOURCES:
        spec = _image_input(fields, spec)
    else:
        spec = _vector_input(fields, spec, card)
    if spec.shape[spec.feature_axis] % spec.history:
        raise fields.fail(
            "history",
            spec.history,
            f"feature axis {spec.feature_axis} of shape {list(shape)} is not a multiple of it",
        )
    spec = replace(spec, statistics=_statistics(fields, spec))
    if spec.normalize and spec.statistics is None:
        raise fields.fail("normalize", True, "needs a `statistics` section with mean and std")
    fields.done()
    return spec


def _range(fields: Fields, key: str) -> tuple[float, float]:
    value = fields.raw(key)
    if not isinstance(value, list) or len(value) != 2:
        raise fields.fail(key, value, "expected [low, high]")
    low, high = (as_number(item, fields.key(key)) for item in value)
    if not low < high:
        raise fields.fail(key, value, "expected low < high")
    return low, high


def _image_input(fields: Fields, spec: InputSpec) -> InputSpec:
    if len(spec.shape) != 4:
        raise fields.fail("shape", list(spec.shape), "expected rank 4 for an image input")
    layout = cast(Literal["NCHW", "NHWC"], fields.string("layout", "NCHW", ("NCHW", "NHWC")))
    height, width = spec.shape[1:3] if layout == "NHWC" else spec.shape[2:4]
    resize = fields.sub("resize")
    mode = cast(
        Literal["shortest_edge", "stretch"],
        resize.string("mode", choices=("shortest_edge", "stretch")),
    )
    if mode == "shortest_edge":
        size = resize.integer("size", minimum=1)
        if size < min(height, width):
            raise resize.fail(
                "size", size, f"must be >= the shorter output side {min(height, width)}"
            )
        crop = resize.string("crop", choices=("center",))
    else:
        size, crop = 0, resize.string("crop", "none", ("none",))
    default_interp = "area" if spec.source == "depth" else "nearest"
    allowed = ("area", "nearest", "linear", "cubic") if spec.source == "depth" else ("nearest",)
    interpolation = resize.string("interpolation", default_interp, allowed)
    resize.done()
    geometry = ImageGeometry(
        mode=mode,
        size=size,
        crop=cast(Literal["center", "none"], crop),
        interpolation=cast(Literal["area", "nearest", "linear", "cubic"], interpolation),
        layout=layout,
        height=height,
        width=width,
    )
    spec = replace(spec, image=geometry)
    channels = spec.shape[spec.feature_axis]
    if spec.source == "depth":
        spec = replace(spec, depth=_depth(fields.sub("depth")))
        frame_channels = 1
    elif spec.source == "mask":
        spec = replace(spec, classes=fields.strings("classes"))
        frame_channels = len(spec.classes)
    else:
        frame_channels = 1
    if channels != frame_channels * spec.history:
        raise fields.fail(
            "shape",
            list(spec.shape),
            f"expected {frame_channels * spec.history} channels "
            f"({frame_channels} per frame x history {spec.history}) in layout {layout}",
        )
    return spec


def _depth(fields: Fields) -> DepthPreprocess:
    depth = DepthPreprocess(
        invalid_values=fields.numbers("invalid_values", (0.0,)),
        fill_m=fields.number("fill_m", 0.0),
        min_m=fields.number("min_m"),
        max_m=fields.number("max_m"),
        scale=fields.number("scale", 1.0, positive=True),
    )
    if not depth.min_m < depth.max_m:
        raise fields.fail("max_m", depth.max_m, f"must be > min_m ({depth.min_m})")
    fields.done()
    return depth


def _vector_input(fields: Fields, spec: InputSpec, card: PolicyCard) -> InputSpec:
    if len(spec.shape) != 2:
        raise fields.fail("shape", list(spec.shape), "expected rank 2 (1, features) for a vector")
    spec, frame_size = _vector_source(fields, spec, card)
    if fields.has("scale"):
        scale = fields.numbers("scale")
        if len(scale) not in (1, frame_size):
            raise fields.fail("scale", list(scale), f"expected 1 or {frame_size} values")
        spec = replace(spec, scale=scale)
    if spec.shape[1] != frame_size * spec.history:
        why = f"expected {frame_size * spec.history} features ({frame_size} per frame"
        if spec.source == "prev_action":
            why += f": the raw action vector {list(card.action_parts)}"
        raise fields.fail("shape", list(spec.shape), f"{why} x history {spec.history})")
    return spec


def _vector_source(fields: Fields, spec: InputSpec, card: PolicyCard) -> tuple[InputSpec, int]:
    """The spec with its source-specific keys, and the number of values in one frame."""
    if spec.source == "joints":
        joints = fields.strings("joints", default=card.joint_names)
        unknown = [joint for joint in joints if joint not in card.joint_names]
        if unknown:
            raise fields.fail("joints", list(joints), f"{unknown} not in joint_names")
        spec, frame_size = replace(spec, joints=joints), len(joints)
    elif spec.source == "relative_pose":
        components = fields.strings("components")
        bad = [item for item in components if item not in POSE_COMPONENTS]
        if bad:
            raise fields.fail(
                "components", list(components), f"expected items of {POSE_COMPONENTS}"
            )
        spec, frame_size = replace(spec, components=components), len(components)
    elif spec.source == "prev_action":
        frame_size = card.action_size
    elif spec.source == "constant":
        frame_size = spec.shape[1] // spec.history
        value = fields.numbers("value")
        if len(value) not in (1, frame_size):
            raise fields.fail("value", list(value), f"expected 1 or {frame_size} values")
        spec = replace(spec, value=value)
    else:  # not_done
        frame_size = 1
    return spec, frame_size


def _statistics(fields: Fields, spec: InputSpec) -> Statistics | None:
    if not fields.has("statistics"):
        return None
    stats_fields = fields.sub("statistics")
    values = {}
    for key in ("mean", "std", "min", "max"):
        items = stats_fields.numbers(key)
        if len(items) not in (1, spec.frame_size):
            raise stats_fields.fail(
                key, list(items), f"expected 1 value or {spec.frame_size} (one per frame element)"
            )
        values[key] = items
    if min(values["std"]) <= 0:
        raise stats_fields.fail("std", list(values["std"]), "expected values > 0")
    stats_fields.done()
    return Statistics(**values)


# --- decoding -----------------------------------------------------------------------------------


def _decoding(
    fields: Fields, outputs: list[TensorSpec], joint_names: tuple[str, ...]
) -> DecodingSpec:
    sections: dict[str, Decoding | None] = {}
    for part in ("base", "arm"):
        sections[part] = (
            _section(fields.sub(part), part, outputs, joint_names) if fields.has(part) else None
        )
    fields.done()
    if sections["base"] is None and sections["arm"] is None:
        raise CardError("decoding: expected a `base` and/or an `arm` section, got neither")
    return DecodingSpec(base=sections["base"], arm=sections["arm"])


def _section(
    fields: Fields, part: str, outputs: list[TensorSpec], joint_names: tuple[str, ...]
) -> Decoding:
    kind = fields.string("type", choices=("continuous", "discrete"))
    output_name = fields.string("output")
    sizes = {out.name: math.prod(out.shape) for out in outputs}
    if output_name not in sizes:
        raise fields.fail("output", output_name, f"not one of the card's outputs {list(sizes)}")
    mode: Mode
    if part == "base":
        targets = fields.strings("fields", non_empty=True)
        bad = [item for item in targets if item not in BASE_FIELDS]
        if bad:
            raise fields.fail("fields", list(targets), f"expected items of {BASE_FIELDS}")
        mode = "velocity"
    else:
        targets = fields.strings("joints", non_empty=True)
        mode = cast(Mode, fields.string("mode", choices=("absolute", "delta")))
        missing = [joint for joint in targets if joint not in joint_names]
        if mode == "delta" and missing:
            raise fields.fail(
                "joints",
                list(targets),
                f"delta mode adds to measured joints; {missing} not in joint_names",
            )
    if kind == "continuous":
        section: Decoding = _continuous(fields, output_name, sizes[output_name], targets, mode)
    else:
        section = _discrete(fields, output_name, sizes[output_name], targets, mode)
    fields.done()
    return section


def _per_target(fields: Fields, key: str, count: int, default: float) -> tuple[float, ...]:
    values = fields.numbers(key, (default,))
    if len(values) == 1:
        return values * count
    if len(values) != count:
        raise fields.fail(key, list(values), f"expected 1 value or {count} (one per target)")
    return values


def _continuous(
    fields: Fields, output: str, size: int, targets: tuple[str, ...], mode: Mode
) -> ContinuousDecoding:
    count = len(targets)
    indices = fields.req("indices")
    if (
        not isinstance(indices, list)
        or len(indices) != count
        or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < size for i in indices
        )
    ):
        raise fields.fail(
            "indices", indices, f"expected {count} integers in [0, {size}) (size of '{output}')"
        )
    low, high = _clip_bounds(fields, count)
    deadband = _per_target(fields, "deadband", count, 0.0)
    if min(deadband) < 0:
        raise fields.fail("deadband", list(deadband), "expected values >= 0")
    return ContinuousDecoding(
        output=output,
        targets=targets,
        indices=tuple(indices),
        scale=_per_target(fields, "scale", count, 1.0),
        offset=_per_target(fields, "offset", count, 0.0),
        clip_low=low,
        clip_high=high,
        deadband=deadband,
        mode=mode,
    )


def _clip_bounds(fields: Fields, count: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    if not fields.has("clip"):
        return (-math.inf,) * count, (math.inf,) * count
    value = fields.raw("clip")
    pairs = value if isinstance(value, list) and value and isinstance(value[0], list) else [value]
    if len(pairs) == 1:
        pairs = pairs * count
    if len(pairs) != count or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
        raise fields.fail("clip", value, f"expected [low, high] or {count} such pairs")
    low = tuple(as_number(pair[0], fields.key("clip")) for pair in pairs)
    high = tuple(as_number(pair[1], fields.key("clip")) for pair in pairs)
    if any(lo > hi for lo, hi in zip(low, high, strict=True)):
        raise fields.fail("clip", value, "expected low <= high")
    return low, high


def _discrete(
    fields: Fields, output: str, size: int, targets: tuple[str, ...], mode: Mode
) -> DiscreteDecoding:
    encoding = cast(
        Literal["logits", "index"], fields.string("encoding", "logits", ("logits", "index"))
    )
    table = fields.req("table")
    if not isinstance(table, list) or not table:
        raise fields.fail("table", table, "expected a non-empty list of rows")
    rows = []
    for row_index, row in enumerate(table):
        if not isinstance(row, list) or len(row) != len(targets):
            raise fields.fail(
                "table", row, f"row {row_index}: expected {len(targets)} values ({list(targets)})"
            )
        rows.append(tuple(as_number(item, f"{fields.key('table')}[{row_index}]") for item in row))
    if encoding == "logits" and size != len(rows):
        raise fields.fail("table", table, f"expected {size} rows, one per logit of '{output}'")
    if encoding == "index" and size != 1:
        raise fields.fail("output", output, f"index encoding needs a 1-element output, got {size}")
    return DiscreteDecoding(
        output=output, encoding=encoding, targets=targets, table=tuple(rows), mode=mode
    )
