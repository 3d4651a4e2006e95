"""Rebuild the training-time observation tensors from robot data, as the policy card says.

`ObservationBuilder.build` turns one RawObservation into the ONNX feeds (batch dim included).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from rl_deploy.depth import DepthImage
from rl_deploy.errors import ConfigError, DecodeError, ModelContractError, StaleInputError
from rl_deploy.geometry import Pose2D
from rl_deploy.policy.card import InputSpec, PolicyCard
from rl_deploy.policy.image import SampledMask, preprocess_depth, preprocess_mask

FloatArray = npt.NDArray[np.float32]

# Which RawObservation field each source needs; None for sources fed by the builder itself.
_REQUIRED_FIELD = {
    "depth": "depth_m",
    "target_mask": "target_class",
    "joints": "joints",
    "relative_pose": "pose",
}


@dataclass(frozen=True)
class RawObservation:
    """One step of robot data in robot units, before any policy-specific preprocessing."""

    depth_m: npt.NDArray[np.floating] | DepthImage | None = None  # (H, W) metres, or as sent
    masks: Mapping[str, npt.NDArray[np.generic] | SampledMask] = field(default_factory=dict)
    # class name → (H, W) uint8 (or a mask read where needed), nonzero = object; a class
    # absent here was not detected
    joints: npt.NDArray[np.floating] | None = None  # (len(card.joint_names),) m / rad
    pose: Pose2D | None = None  # absolute base pose in the map frame
    target_class: str | None = None  # class the target_mask inputs show


class _InputState:
    """Per-input constants (statistics as arrays) and the history of frames."""

    def __init__(self, spec: InputSpec) -> None:
        self.spec = spec
        self.frames: deque[FloatArray] = deque(maxlen=spec.history)
        stats = spec.statistics
        self.mean: FloatArray | None = None
        self.inv_std: FloatArray | None = None
        if spec.normalize and stats is not None:
            self.mean = self._as_frame(stats.mean)
            self.inv_std = 1.0 / self._as_frame(stats.std)
        self.constant = self._as_frame(spec.value) if spec.source == "constant" else None
        self.scale = self._as_frame(spec.scale) if spec.scale else None

    def _as_frame(self, values: tuple[float, ...]) -> FloatArray:
        array = np.asarray(values, dtype=np.float32)
        if array.size == 1:
            return array.reshape(())
        return array.reshape(self.spec.frame_shape)

    def push(self, frame: FloatArray) -> npt.NDArray[np.generic]:
        """Scale, normalize, clip, stack with the history (oldest first), cast to the dtype."""
        spec = self.spec
        if self.scale is not None:
            frame = frame * self.scale
        if self.mean is not None and self.inv_std is not None:
            frame = (frame - self.mean) * self.inv_std
        if spec.clip is not None:
            frame = np.clip(frame, spec.clip[0], spec.clip[1])
        if not self.frames:
            filler = frame if spec.history_fill == "repeat_first" else np.zeros_like(frame)
            self.frames.extend([filler] * (spec.history - 1))
        self.frames.append(frame)
        stacked = (
            frame if spec.history == 1 else np.concatenate(self.frames, axis=spec.feature_axis)
        )
        return stacked.astype(spec.dtype, copy=False)


class ObservationBuilder:
    """Stateful across an episode: history, start pose, previous action, first-step flag."""

    def __init__(self, card: PolicyCard) -> None:
        self.card = card
        self._states = [_InputState(spec) for spec in card.inputs]
        self._joint_index = {name: index for index, name in enumerate(card.joint_names)}
        self._start_pose: Pose2D | None = None
        self._prev_action = np.zeros(card.action_size, dtype=np.float32)
        self._first_step = True

    def reset(self, start_pose: Pose2D | None = None) -> None:
        """Start an episode; None takes the pose of the first build() as the start."""
        if start_pose is not None and not start_pose.is_finite():
            raise DecodeError(f"start pose: not finite: {start_pose}")
        for state in self._states:
            state.frames.clear()
        self._start_pose = start_pose
        self._prev_action = np.zeros(self.card.action_size, dtype=np.float32)
        self._first_step = True

    @property
    def start_pose(self) -> Pose2D | None:
        return self._start_pose

    def record_action(self, action: npt.NDArray[np.floating]) -> None:
        """The raw action vector of this step, fed to `prev_action` inputs on the next one."""
        flat = np.asarray(action, dtype=np.float32).reshape(-1)
        if flat.size != self.card.action_size:
            raise ModelContractError(
                f"record_action: expected {self.card.action_size} values "
                f"{list(self.card.action_parts)}, got shape {np.shape(action)}"
            )
        self._prev_action = flat.copy()

    def build(self, raw: RawObservation) -> dict[str, npt.NDArray[np.generic]]:
        """Feeds for every card input, shaped and typed exactly as the card says."""
        missing = [
            f"{_REQUIRED_FIELD[state.spec.source]} (input '{state.spec.name}')"
            for state in self._states
            if state.spec.source in _REQUIRED_FIELD
            and getattr(raw, _REQUIRED_FIELD[state.spec.source]) is None
        ]
        if missing:
            raise StaleInputError(f"missing required observation: {', '.join(missing)}")
        # The codecs refuse non-finite poses off the wire; other callers (simulator hosts,
        # scripts) meet the same check here, before a bad pose can become the start.
        if raw.pose is not None and not raw.pose.is_finite():
            raise DecodeError(f"pose: not finite: {raw.pose}")
        # Every frame is built before any history changes, so a failing input leaves none behind
        # (nor a start pose: the next good one becomes the start).
        first_pose = raw.pose is not None and self._start_pose is None
        if first_pose:
            self._start_pose = raw.pose
        try:
            frames = [self._frame(state, raw) for state in self._states]
        except Exception:
            if first_pose:
                self._start_pose = None
            raise
        feeds = {
            state.spec.name: state.push(frame)
            for state, frame in zip(self._states, frames, strict=True)
        }
        self._first_step = False
        return feeds

    def _frame(self, state: _InputState, raw: RawObservation) -> FloatArray:
        spec = state.spec
        source = spec.source
        if source == "depth":
            assert raw.depth_m is not None and spec.depth is not None and spec.image is not None
            return self._image_frame(spec, [preprocess_depth(raw.depth_m, spec.depth, spec.image)])
        if source == "target_mask":
            assert raw.target_class is not None
            if raw.target_class not in self.card.target_classes:
                raise ConfigError(
                    f"target_class: {raw.target_class!r} is not one of the card's "
                    f"target_classes {list(self.card.target_classes)}"
                )
            return self._image_frame(spec, [self._mask(spec, raw, raw.target_class)])
        if source == "mask":
            return self._image_frame(spec, [self._mask(spec, raw, name) for name in spec.classes])
        return self._vector_frame(state, raw).reshape(spec.frame_shape)

    def _mask(self, spec: InputSpec, raw: RawObservation, class_name: str) -> FloatArray:
        assert spec.image is not None
        mask = raw.masks.get(class_name)
        if mask is None:  # nothing detected: an empty mask
            return np.zeros((spec.image.height, spec.image.width), dtype=np.float32)
        return preprocess_mask(mask, spec.image)

    @staticmethod
    def _image_frame(spec: InputSpec, channels: list[FloatArray]) -> FloatArray:
        assert spec.image is not None
        axis = 0 if spec.image.layout == "NCHW" else 2
        if len(channels) == 1:  # a view, not a copy
            return channels[0].reshape(spec.frame_shape)
        return np.stack(channels, axis=axis)[np.newaxis]

    def _vector_frame(self, state: _InputState, raw: RawObservation) -> FloatArray:
        spec = state.spec
        source = spec.source
        if source == "joints":
            assert raw.joints is not None
            with np.errstate(over="ignore"):  # beyond float32's range: inf, refused below
                joints = np.asarray(raw.joints, dtype=np.float32).reshape(-1)
            if joints.size != len(self.card.joint_names):
                raise DecodeError(
                    f"joints: expected {len(self.card.joint_names)} values in the order "
                    f"{list(self.card.joint_names)}, got shape {np.shape(raw.joints)}"
                )
            if not np.isfinite(joints).all():
                names, given = self.card.joint_names, np.asarray(raw.joints).flat
                bad = {
                    n: float(v)
                    for n, v, f in zip(names, given, joints, strict=True)
                    if not np.isfinite(f)
                }
                raise DecodeError(f"joints: not finite as float32: {bad}")
            if spec.joints == self.card.joint_names:
                return joints
            return joints[[self._joint_index[name] for name in spec.joints]]
        if source == "relative_pose":
            assert raw.pose is not None and self._start_pose is not None
            relative = raw.pose.relative_to(self._start_pose)
            with np.errstate(over="ignore"):
                frame = np.array([getattr(relative, name) for name in spec.components], np.float32)
            if not np.isfinite(frame).all():  # poses far apart beyond float32's range
                raise DecodeError(
                    f"pose: {raw.pose} from the start {self._start_pose} is not finite as "
                    f"float32: {dict(zip(spec.components, frame.tolist(), strict=True))}"
                )
            return frame
        if source == "prev_action":
            return self._prev_action.copy()
        if source == "not_done":
            return np.array([0.0 if self._first_step else 1.0], dtype=np.float32)
        assert state.constant is not None  # constant
        return np.broadcast_to(state.constant, spec.frame_shape).astype(np.float32)
