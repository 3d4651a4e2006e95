"""Where the pipeline's target masks come from: ground truth, the detector, or mask topics.

Each source decodes its own messages into bounded frame buffers that the pipeline matches with
depth by stamp, and turns a matched set into binary masks lazily: only the classes the policy
asks for are ever computed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from functools import cached_property
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from rl_deploy import codec
from rl_deploy.codec.typestore import IMAGE
from rl_deploy.config import PipelineConfig
from rl_deploy.depth import DepthImage
from rl_deploy.errors import ConfigError, DecodeError
from rl_deploy.io import mask_topic
from rl_deploy.perception.detections import Detections
from rl_deploy.perception.masks import class_masks
from rl_deploy.perception.runner import YoloSegRunner
from rl_deploy.sync import FrameBuffer, Stamped

Mask = npt.NDArray[np.uint8]  # (H, W) 0/1
Pixels = npt.NDArray[np.intp]  # ascending row or column indices
Handler = Callable[[Any, int], None]  # (codec.decode_input's value, now_ns)


class MaskSource(Protocol):
    """What the pipeline needs from a source of masks."""

    handlers: dict[str, tuple[str, Handler]]  # topic -> (msgtype, on_message(msg, now_ns))
    buffers: dict[str, FrameBuffer[Any]]  # streams to match with depth by stamp

    def masks(
        self, partners: Mapping[str, Stamped[Any]], depth: DepthImage
    ) -> Mapping[str, LazyMask]:
        """Class name -> mask at the depth frame's resolution, for one matched frame set."""
        ...


class LazyMask:
    """One class's mask of a frame set: made whole, or read at a few pixels, only when asked.

    The policy reads a mask at its own resolution (policy.image.SampledMask); the camera-sized
    mask is made only for whoever wants it (the debug topic, reports).
    """

    def __init__(
        self,
        shape: tuple[int, int],
        whole: Callable[[], Mask],
        at: Callable[[Pixels, Pixels], Mask] | None = None,
    ) -> None:
        self.shape = shape
        self._whole, self._at = whole, at

    @cached_property
    def whole(self) -> Mask:
        """(H, W) uint8, 1 = object."""
        return self._whole()

    def at(self, rows: Pixels, cols: Pixels) -> Mask:
        """`whole[np.ix_(rows, cols)]`, computed at those pixels unless whole already is."""
        if self._at is None or "whole" in self.__dict__:
            picked: Mask = self.whole[np.ix_(rows, cols)]
            return picked
        return self._at(rows, cols)


def _stamped(frame: codec.ImageFrame, value: Any, now_ns: int) -> Stamped[Any]:
    return Stamped(value, frame.stamp_ns, now_ns, frame.frame_id)


class SegmentationMasks:
    """A class-id image (pixel = class id), as simulators publish ground truth."""

    def __init__(self, topic: str, class_table: Mapping[str, int], channel: int = -1) -> None:
        self._topic, self._table, self._channel = topic, dict(class_table), channel
        self._frames: FrameBuffer[Any] = FrameBuffer()
        self.handlers: dict[str, tuple[str, Handler]] = {topic: (IMAGE, self._on_image)}
        self.buffers = {topic: self._frames}

    def _on_image(self, frame: codec.ImageFrame, now_ns: int) -> None:
        class_ids = frame.pixels
        if class_ids.ndim == 3 and 0 <= self._channel < class_ids.shape[2]:
            class_ids = class_ids[:, :, self._channel]
        if class_ids.ndim != 2:
            raise DecodeError(
                f"segmentation is {frame.encoding!r}: single-channel expected, or set "
                f"masks.segmentation_channel to the channel that holds the class id"
            )
        self._frames.push(_stamped(frame, class_ids, now_ns))

    def masks(
        self, partners: Mapping[str, Stamped[Any]], depth: DepthImage
    ) -> Mapping[str, LazyMask]:
        class_ids = partners[self._topic].value
        if class_ids.shape != depth.shape:
            raise DecodeError(
                f"segmentation {class_ids.shape} is not aligned with depth {depth.shape}"
            )

        def masks_of(class_id: int) -> LazyMask:
            return LazyMask(
                class_ids.shape,
                lambda: (class_ids == class_id).view(np.uint8),
                lambda rows, cols: (class_ids[np.ix_(rows, cols)] == class_id).view(np.uint8),
            )

        return {name: masks_of(class_id) for name, class_id in self._table.items()}


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

    def _on_image(self, frame: codec.ImageFrame, now_ns: int) -> None:
        self._frames.push(_stamped(frame, frame.rgb(), now_ns))

    def masks(
        self, partners: Mapping[str, Stamped[Any]], depth: DepthImage
    ) -> Mapping[str, LazyMask]:
        rgb = partners[self._topic].value
        # Metres only for depth filtering, the one use of depth at the frame's resolution.
        aligned = depth.metres if self._tolerance_m and depth.shape == rgb.shape[:2] else None
        detections = self._runner.detect(rgb, aligned, self._classes)
        self.last_detections = detections
        size = (int(depth.shape[0]), int(depth.shape[1]))
        tolerance = self._tolerance_m

        def masks_of(name: str) -> LazyMask:
            return LazyMask(
                size,
                lambda: class_masks(detections, (name,), size, tolerance)[name],
                lambda rows, cols: class_masks(detections, (name,), size, tolerance, (rows, cols))[
                    name
                ],
            )

        return {name: masks_of(name) for name in self._classes}


class TopicMasks:
    """One mono8 mask per class on `<prefix>/<class>`, from a separate perception process."""

    def __init__(self, prefix: str, classes: tuple[str, ...]) -> None:
        self._topics = {name: mask_topic(prefix, name) for name in classes}
        self.buffers: dict[str, FrameBuffer[Any]] = {
            t: FrameBuffer() for t in self._topics.values()
        }
        self.handlers: dict[str, tuple[str, Handler]] = {
            topic: (IMAGE, self._handler(topic)) for topic in self.buffers
        }

    def _handler(self, topic: str) -> Handler:
        def on_image(frame: codec.ImageFrame, now_ns: int) -> None:
            mask = frame.pixels
            if mask.ndim != 2:
                raise DecodeError(f"{topic}: a mask must be mono8, got {frame.encoding!r}")
            self.buffers[topic].push(_stamped(frame, mask, now_ns))

        return on_image

    def masks(
        self, partners: Mapping[str, Stamped[Any]], depth: DepthImage
    ) -> Mapping[str, LazyMask]:
        def masks_of(name: str) -> LazyMask:
            mask = partners[self._topics[name]].value
            if mask.shape != depth.shape:
                raise DecodeError(f"mask {name} {mask.shape} is not aligned with {depth.shape}")
            return LazyMask(
                mask.shape,
                lambda: (mask > 0).view(np.uint8),
                lambda rows, cols: (mask[np.ix_(rows, cols)] > 0).view(np.uint8),
            )

        return {name: masks_of(name) for name in self._topics}


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
