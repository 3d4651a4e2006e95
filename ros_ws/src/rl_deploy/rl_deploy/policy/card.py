"""The policy card: what an ONNX policy expects and emits, as frozen dataclasses.

The YAML format is documented in models/README.md; `load_card` parses, validates and checks it
against its ONNX graph (rl_deploy.policy.loader; `parse_card` there parses only).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal, get_args

SourceKind = Literal[
    "depth", "target_mask", "mask", "joints", "relative_pose", "prev_action", "constant", "not_done"
]
SOURCE_KINDS: tuple[str, ...] = get_args(SourceKind)
IMAGE_SOURCES = ("depth", "target_mask", "mask")
DTYPES = ("float32", "float16", "float64", "int64", "int32", "int8", "uint8", "bool")
BASE_FIELDS = ("linear_x", "linear_y", "angular_z")
POSE_COMPONENTS = ("x", "y", "yaw")
CARD_METADATA_KEY = "rl_deploy_card"  # key of the card YAML in the ONNX metadata_props


@dataclass(frozen=True)
class TensorSpec:
    """A named tensor of the graph: static shape (batch first) and numpy dtype name."""

    name: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class Statistics:
    """Training-time statistics of one frame of an input (after preprocessing, before `normalize`).

    Each field holds one value (applies to every element) or one value per frame element.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    min: tuple[float, ...]
    max: tuple[float, ...]


@dataclass(frozen=True)
class ImageGeometry:
    """How a camera-sized image becomes the (height, width) frame the network sees."""

    mode: Literal["shortest_edge", "stretch"]
    size: int  # px: target of the shorter side (shortest_edge); 0 for stretch
    crop: Literal["center", "none"]  # center after shortest_edge; none for stretch
    interpolation: Literal["area", "nearest", "linear", "cubic"]  # depth; masks use nearest
    layout: Literal["NCHW", "NHWC"]
    height: int  # px, output frame
    width: int  # px, output frame


@dataclass(frozen=True)
class DepthPreprocess:
    """Depth in metres → network values: fill invalid, clip to [min_m, max_m], multiply by scale."""

    invalid_values: tuple[float, ...]  # m; NaN and ±inf are always invalid
    fill_m: float  # m, written where the depth is invalid
    min_m: float
    max_m: float
    scale: float  # e.g. 0.1 maps 0..10 m to 0..1


@dataclass(frozen=True)
class InputSpec:
    """One network input: its tensor, where its values come from, and their preprocessing."""

    name: str
    shape: tuple[int, ...]  # batch first (1, ...)
    dtype: str
    source: SourceKind
    history: int = 1  # frames stacked along the feature axis, oldest first
    history_fill: Literal["repeat_first", "zeros"] = "repeat_first"  # at episode start
    scale: tuple[float, ...] = ()  # vector sources: per-term factor (1 or per frame element)
    normalize: bool = False  # builder applies (x - mean) / std (graph lacks the normalizer)
    clip: tuple[float, float] | None = None  # applied after normalization
    statistics: Statistics | None = None
    image: ImageGeometry | None = None  # depth, target_mask, mask
    depth: DepthPreprocess | None = None  # depth
    classes: tuple[str, ...] = ()  # mask: one channel per class
    components: tuple[str, ...] = ()  # relative_pose: subset of x, y, yaw
    joints: tuple[str, ...] = ()  # joints: names in input order (default: card.joint_names)
    value: tuple[float, ...] = ()  # constant: one value or one per frame element

    @property
    def tensor(self) -> TensorSpec:
        return TensorSpec(self.name, self.shape, self.dtype)

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """Shape of one history frame, batch included (feature axis divided by `history`)."""
        axis = self.feature_axis
        shape = list(self.shape)
        shape[axis] //= self.history
        return tuple(shape)

    @property
    def feature_axis(self) -> int:
        """Axis along which history frames are stacked: channels for images, last for vectors."""
        if self.image is not None and self.image.layout == "NCHW":
            return 1
        return len(self.shape) - 1

    @property
    def frame_size(self) -> int:
        return math.prod(self.frame_shape)


@dataclass(frozen=True)
class RecurrentSpec:
    """State the graph reads from `input` and writes to `output`; the runner feeds it back."""

    input: str
    output: str
    shape: tuple[int, ...]
    dtype: str
    reset: Literal["episode_start"] = "episode_start"  # zeroed by reset()

    @property
    def input_tensor(self) -> TensorSpec:
        return TensorSpec(self.input, self.shape, self.dtype)

    @property
    def output_tensor(self) -> TensorSpec:
        return TensorSpec(self.output, self.shape, self.dtype)


@dataclass(frozen=True)
class ContinuousDecoding:
    """target_i = clip(deadband(scale_i * output[indices_i] + offset_i)).

    Base targets are BaseVelocity fields (m/s, rad/s); arm targets are joint names whose value
    is an absolute position or, in `delta` mode, an offset added to the measured joint position.
    """

    output: str
    targets: tuple[str, ...]
    indices: tuple[int, ...]  # into the flattened output
    scale: tuple[float, ...]
    offset: tuple[float, ...]
    clip_low: tuple[float, ...]  # -inf where unclipped; bounds the scaled value (or the delta)
    clip_high: tuple[float, ...]
    deadband: tuple[float, ...]  # |value| below this becomes 0
    mode: Literal["velocity", "absolute", "delta"]


@dataclass(frozen=True)
class DiscreteDecoding:
    """Row `argmax(logits)` (or the emitted index) of `table` gives the value of each target."""

    output: str
    encoding: Literal["logits", "index"]
    targets: tuple[str, ...]
    table: tuple[tuple[float, ...], ...]  # (num_actions, len(targets))
    mode: Literal["velocity", "absolute", "delta"]


Decoding = ContinuousDecoding | DiscreteDecoding


@dataclass(frozen=True)
class DecodingSpec:
    base: Decoding | None  # None: the policy never moves the base
    arm: Decoding | None  # None: the policy never moves the arm


@dataclass(frozen=True)
class PolicyCard:
    """Everything the runtime must know about one policy; the sim-to-real contract."""

    name: str
    version: str
    onnx_path: Path  # resolved from the card's `onnx` (relative to the YAML)
    control_rate_hz: float
    joint_names: tuple[str, ...]  # order of joint values in RawObservation.joints
    target_classes: tuple[str, ...]
    inputs: tuple[InputSpec, ...]
    recurrent: tuple[RecurrentSpec, ...]
    outputs: tuple[TensorSpec, ...]  # action outputs (recurrent outputs are listed apart)
    decoding: DecodingSpec

    def input(self, name: str) -> InputSpec:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def output(self, name: str) -> TensorSpec:
        for spec in self.outputs:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @cached_property
    def action_parts(self) -> tuple[tuple[str, int], ...]:
        """(output, size) pieces of the raw action vector, in `outputs` order.

        An output decoded from logits contributes its chosen index (one value); every other
        output contributes all its values. The vector is what `prev_action` inputs receive.
        """
        logits = {
            dec.output
            for dec in (self.decoding.base, self.decoding.arm)
            if isinstance(dec, DiscreteDecoding) and dec.encoding == "logits"
        }
        return tuple(
            (out.name, 1 if out.name in logits else math.prod(out.shape)) for out in self.outputs
        )

    @cached_property
    def action_size(self) -> int:
        return sum(size for _, size in self.action_parts)
