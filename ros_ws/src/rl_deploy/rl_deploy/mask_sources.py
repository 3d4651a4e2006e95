"""Where the pipeline's target masks come from: ground truth, the detector, or mask topics.

Each source decodes its own messages into bounded frame buffers that the pipeline matches with
depth by stamp, and turns a matched set into binary masks lazily: only the classes the policy
asks for are ever computed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from rl_deploy import codec
from rl_deploy.codec.typestore import IMAGE
from rl_deploy.config import PipelineConfig
from rl_deploy.depth import DepthImage
from rl_deploy.errors import ConfigError, DecodeError
from rl_deploy.perception.detections import Detections
from rl_deploy.perception.masks import class_masks
from rl_deploy.perception.runner import YoloSegRunner
from rl_deploy.sync import FrameBuffer, Stamped

Mask = npt.NDArray[np.uint8]  # (H, W) 0/1
Handler = Callable[[Any, int], None]


class MaskSource(Protocol):
    """What the pipeline needs from a source of masks."""

    handlers: dict[str, tuple[str, Handler]]  # topic -> (msgtype, on_message(msg, now_ns))
    buffers: dict[str, FrameBuffer[Any]]  # streams to match with depth by stamp

    def masks(self, partners: Mapping[str, Stamped[Any]], depth: DepthImage) -> Mapping[str, Mask]:
        """Class name -> mask at the depth frame's resolution, for one matched frame set."""
        ...


class _LazyMasks(Mapping[str, Mask]):
    """A read-only mapping whose values are computed on first access."""

    def __init__(self, names: tuple[str, ...], compute: Callable[[str], Mask]) -> None:
        self._names, self._compute = names, compute
        self._cache: dict[str, Mask] = {}

    def __getitem__(self, name: str) -> Mask:
        if name not in self._names:
            raise KeyError(name)
        if name not in self._cache:
            self._cache[name] = self._compute(name)
        return self._cache[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def _stamped(msg: Any, value: Any, now_ns: int) -> Stamped[Any]:
    return Stamped(value, codec.stamp_to_ns(msg.header.stamp), now_ns, msg.header.frame_id)


class SegmentationMasks:
    """A class-id image (pixel = class id), as simulators publish ground truth."""

    def __init__(self, topic: str, class_table: Mapping[str, int], channel: int = -1) -> None:
        self._topic, self._table, self._channel = topic, dict(class_table), channel
        self._frames: FrameBuffer[Any] = FrameBuffer()
        self.handlers: dict[str, tuple[str, Handler]] = {topic: (IMAGE, self._on_image)}
        self.buffers = {topic: self._frames}

    def _on_image(self, msg: Any, now_ns: int) -> None:
        class_ids = codec.image_to_array(msg)
        if class_ids.ndim == 3 and 0 <= self._channel < class_ids.shape[2]:
            class_ids = class_ids[:, :, self._channel]
        if class_ids.ndim != 2:
            raise DecodeError(
                f"segmentation is {msg.encoding!r}: single-channel expected, or set "
                f"masks.segmentation_channel to the channel that holds the class id"
            )
        self._frames.push(_stamped(msg, class_ids, now_ns))

    def masks(self, partners: Mapping[str, Stamped[Any]], depth: DepthImage) -> Mapping[str, Mask]:
        class_ids = partners[self._topic].value
        if class_ids.shape != depth.shape:
            raise DecodeError(
                f"segmentation {class_ids.shape} is not aligned with depth {depth.shape}"
            )
        return _LazyMasks(
            tuple(self._table), lambda name: (class_ids == self._table[name]).view(np.uint8)
        )


class DetectorMasks:
    """The YOLO-seg detector run on the RGB frame matched with depth, in this process."""

    def __init__(
        self, topic: str, runner: YoloSegRunner, classes: tuple[str, ...], tolerance_m: float
    ) -> None:
        unknown = [name for name in classes if name not in runner.names]
        if unknown:
            raise ConfigError(f"the policy needs classes {unknown} the detector lacks")
        self._topic, self._runner, self._classes = topic, runner, classes
        self._tolerance_m = tolerance_m or None
        self._frames: FrameBuffer[Any] = FrameBuffer()
        self.handlers: dict[str, tuple[str, Handler]] = {topic: (IMAGE, self._on_image)}
        self.buffers = {topic: self._frames}
        self.last_detections: Detections | None = None

    def _on_image(self, msg: Any, now_ns: int) -> None:
        self._frames.push(_stamped(msg, codec.rgb_from_image(msg), now_ns))

    def masks(self, partners: Mapping[str, Stamped[Any]], depth: DepthImage) -> Mapping[str, Mask]:
        rgb = partners[self._topic].value
        # Metres only for depth filtering, the one use of depth at the frame's resolution.
        aligned = depth.metres if self._tolerance_m and depth.shape == rgb.shape[:2] else None
        detections = self._runner.detect(rgb, aligned, self._classes)
        self.last_detections = detections
        size = (int(depth.shape[0]), int(depth.shape[1]))
        return _LazyMasks(
            self._classes,
            lambda name: class_masks(detections, (name,), size, self._tolerance_m)[name],
        )


class TopicMasks:
    """One mono8 mask per class on `<prefix>/<class>`, from a separate perception process."""

    def __init__(self, prefix: str, classes: tuple[str, ...]) -> None:
        self._topics = {name: f"{prefix.rstrip('/')}/{name}" for name in classes}
        self.buffers: dict[str, FrameBuffer[Any]] = {
            t: FrameBuffer() for t in self._topics.values()
        }
        self.handlers: dict[str, tuple[str, Handler]] = {
            topic: (IMAGE, self._handler(topic)) for topic in self.buffers
        }

    def _handler(self, topic: str) -> Handler:
        def on_image(msg: Any, now_ns: int) -> None:
            mask = codec.image_to_array(msg)
            if mask.ndim != 2:
                raise DecodeError(f"{topic}: a mask must be mono8, got {msg.encoding!r}")
            self.buffers[topic].push(_stamped(msg, mask, now_ns))

        return on_image

    def masks(self, partners: Mapping[str, Stamped[Any]], depth: DepthImage) -> Mapping[str, Mask]:
        def binary(name: str) -> Mask:
            mask = partners[self._topics[name]].value
            if mask.shape != depth.shape:
                raise DecodeError(f"mask {name} {mask.shape} is not aligned with {depth.shape}")
            binary_u8: Mask = (mask > 0).view(np.uint8)
            return binary_u8

        return _LazyMasks(tuple(self._topics), binary)


def make_mask_source(
    config: PipelineConfig, classes: tuple[str, ...], runner: YoloSegRunner | None
) -> MaskSource:
    """The configured source; `classes` are those the policy's inputs need."""
    masks = config.masks
    if masks.source == "segmentation":
        table = dict(zip(masks.class_names, masks.class_ids, strict=True))
        missing = [name for name in classes if name not in table]
        if missing:
            raise ConfigError(f"masks.class_names lacks {missing}, which the policy needs")
        return SegmentationMasks(config.topics.segmentation, table, masks.segmentation_channel)
    if masks.source == "detector":
        if runner is None:
            model = str(config.resolve(config.detector.model))
            runner = YoloSegRunner(dataclasses.replace(config.detector, model=model))
        return DetectorMasks(config.topics.rgb, runner, classes, masks.depth_tolerance_m)
    return TopicMasks(masks.topic_prefix, classes)
