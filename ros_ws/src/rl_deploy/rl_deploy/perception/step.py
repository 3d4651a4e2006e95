"""The perception node's logic: camera CDR in, target masks and detections CDR out.

A ROS host feeds every message to `PerceptionStep.feed` and publishes what it returns; the
in-process pipeline calls `detect` and `class_masks` directly and skips the CDR round trip.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from rl_deploy import codec
from rl_deploy.codec.detections import detection2d_array
from rl_deploy.codec.template import MaskImageEncoder
from rl_deploy.codec.typestore import CAMERA_INFO, DETECTION2D_ARRAY, IMAGE, LABEL_INFO
from rl_deploy.depth import DepthImage
from rl_deploy.errors import ConfigError, DecodeError, RlDeployError
from rl_deploy.io import Output, mask_topic
from rl_deploy.log import RateLimitedLog
from rl_deploy.perception import masks as mask_ops
from rl_deploy.perception.detections import Detections
from rl_deploy.perception.messages import DetectionMessages, overlay_image
from rl_deploy.perception.runner import DETECT_STAGES, DetectorConfig, YoloSegRunner
from rl_deploy.settings import setting

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PerceptionTopics:
    rgb: str = setting("/camera/color/image_raw", "RGB image input.")
    depth: str = setting(
        "/camera/aligned_depth_to_color/image_raw",
        "Depth aligned to the RGB image, for depth filtering; empty: none.",
    )
    camera_info: str = setting(
        "/camera/color/camera_info",
        "Camera info of the RGB image (frame sizes are checked against it); empty: none.",
    )
    detections: str = setting(
        "/rl_deploy/detections",
        "vision_msgs/Detection2DArray output (where vision_msgs is installed).",
    )
    label_info: str = setting(
        "/rl_deploy/label_info", "vision_msgs/LabelInfo class map, transient-local."
    )
    masks: str = setting(
        "/rl_deploy/masks", "Prefix of the per-class mono8 mask outputs: <prefix>/<class>."
    )
    overlay: str = setting(
        "/rl_deploy/detections_overlay", "rgb8 debug overlay output, only when overlay is true."
    )


@dataclass(frozen=True)
class PerceptionConfig:
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    topics: PerceptionTopics = field(default_factory=PerceptionTopics)
    target_classes: tuple[str, ...] = setting(
        (), "Classes that get a mask topic; empty: every class of the model."
    )
    mask_size: tuple[int, int] = setting(
        (0, 0), "[height, width] of the masks; [0, 0]: the camera's."
    )
    depth_tolerance_m: float = setting(
        0.0, "Keep mask pixels this near the instance's median depth (m); 0: off."
    )
    depth_slop_s: float = setting(
        0.05, "s; a depth frame pairs with an RGB frame this close in time."
    )
    overlay: bool = setting(
        False, "Publish the debug overlay image (costs a full-resolution mask decode)."
    )


STEP_STAGES = ("decode", *DETECT_STAGES, "masks", "encode")  # PerceptionStats.last_stage_ms


@dataclass
class PerceptionStats:
    """Counters since start, for diagnostics."""

    frames: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # per topic, undecodable or unusable
    instances: int = 0
    last_step_ms: float = 0.0  # the last RGB frame, CDR in to CDR out
    # Its stages (STEP_STAGES): decode, the detector's preprocess, network (its session run; 0
    # on a frame without contrast) and postprocess, masks, encode.
    last_stage_ms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _DepthFrame:
    stamp_ns: int
    depth: DepthImage  # as sent; metres only when a frame is filtered


class PerceptionStep:
    """Runs the detector on each RGB frame and returns the messages to publish."""

    def __init__(self, config: PerceptionConfig, runner: YoloSegRunner | None = None) -> None:
        self.config = config
        self.runner = runner if runner is not None else YoloSegRunner(config.detector)
        names = self.runner.names
        unknown = [name for name in config.target_classes if name not in names]
        if unknown:
            raise ConfigError(f"target_classes {unknown} are not classes of the detector {names}")
        self.target_classes = config.target_classes or names
        size = config.mask_size
        # Parameters arrive as any list: [480] or [120.5, 160] would fail on the first frame.
        if (
            not isinstance(size, list | tuple)
            or len(size) != 2
            or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in size)
            or (0 in size and any(size))
        ):
            raise ConfigError(f"mask_size must be (height, width) > 0 or (0, 0), got {size!r}")
        self.mask_topics = {
            name: mask_topic(config.topics.masks, name) for name in self.target_classes
        }
        if len(set(self.mask_topics.values())) != len(self.mask_topics):
            raise ConfigError(
                f"target classes {list(self.target_classes)} give the same mask topic twice "
                f"({self.mask_topics}): rename them in the model's names"
            )
        tolerance = config.depth_tolerance_m
        if not (math.isfinite(tolerance) and tolerance >= 0):
            raise ConfigError(f"depth_tolerance_m must be a finite number >= 0, got {tolerance!r}")
        self.stats = PerceptionStats()
        self._messages = DetectionMessages()
        self._mask_images = MaskImageEncoder()
        self._log = RateLimitedLog(logger)
        self._depth: _DepthFrame | None = None
        self._camera_hw: tuple[int, int] | None = None

    @property
    def provider(self) -> str:
        """The onnxruntime execution provider the detector actually runs on."""
        return self.runner.provider

    def output_types(self) -> dict[str, str]:
        """Topic → message type of everything this step may publish (for creating publishers)."""
        topics = self.config.topics
        types = {topics.detections: DETECTION2D_ARRAY, topics.label_info: LABEL_INFO}
        types |= dict.fromkeys(self.mask_topics.values(), IMAGE)
        if self.config.overlay:
            types[topics.overlay] = IMAGE
        return types

    def label_info(self, stamp_ns: int, frame_id: str = "") -> Output:
        """The class map, to publish once with transient-local durability."""
        msg = self._messages.label_info(
            self.runner.names, self.runner.config.conf, stamp_ns, frame_id
        )
        return Output(self.config.topics.label_info, LABEL_INFO, codec.encode(msg, LABEL_INFO))

    # ---------------------------------------------------------------- direct calls

    def detect(
        self, rgb: npt.NDArray[np.uint8], depth_m: npt.NDArray[np.float32] | None
    ) -> Detections:
        """Detections in an (H, W, 3) RGB frame; `depth_m` (aligned, metres) enables filtering."""
        return self.runner.detect(rgb, depth_m)

    def class_masks(
        self, detections: Detections, classes: Sequence[str], size: tuple[int, int] | None = None
    ) -> dict[str, npt.NDArray[np.uint8]]:
        """(H, W) uint8 0/1 mask per class at `size` (height, width; default: the frame's)."""
        tolerance = self.config.depth_tolerance_m or None
        return mask_ops.class_masks(detections, classes, size, tolerance)

    # ---------------------------------------------------------------- CDR in, CDR out

    def feed(self, topic: str, data: bytes | memoryview, now_ns: int) -> list[Output]:
        """Take one message; an RGB frame returns its masks, then detections, to publish.

        Never raises on bad input: the frame is dropped, counted and logged (rate-limited).
        """
        topics = self.config.topics
        try:
            if topic == topics.rgb:
                return self._on_rgb(data)
            if topic == topics.depth and topics.depth:
                self._on_depth(codec.decode_image(data))
            elif topic == topics.camera_info and topics.camera_info:
                self._camera_hw = image_size(codec.decode(data, CAMERA_INFO))
        except RlDeployError as err:
            self.stats.dropped[topic] = self.stats.dropped.get(topic, 0) + 1
            self._log.warning(topic, f"dropped message on {topic}: {err}")
        return []

    def _on_depth(self, frame: codec.ImageFrame) -> None:
        self._depth = _DepthFrame(frame.stamp_ns, frame.depth())

    def _paired_depth(
        self, stamp_ns: int, frame_hw: tuple[int, int]
    ) -> npt.NDArray[np.float32] | None:
        if not self.config.depth_tolerance_m or self._depth is None:
            return None
        if abs(self._depth.stamp_ns - stamp_ns) > self.config.depth_slop_s * 1e9:
            return None
        if self._depth.depth.shape != frame_hw:
            raise DecodeError(
                f"depth is {self._depth.depth.shape} but the RGB frame is {frame_hw}: "
                "depth must be aligned to the colour camera"
            )
        return self._depth.depth.metres

    def _on_rgb(self, data: bytes | memoryview) -> list[Output]:
        start = time.perf_counter()
        frame = codec.decode_image(data)
        stamp_ns, frame_id = frame.stamp_ns, frame.frame_id
        rgb = frame.rgb()
        frame_hw = (rgb.shape[0], rgb.shape[1])
        if self._camera_hw is not None and frame_hw != self._camera_hw:
            raise DecodeError(
                f"RGB frame is {frame_hw[1]}x{frame_hw[0]} but camera_info says "
                f"{self._camera_hw[1]}x{self._camera_hw[0]}"
            )
        depth = self._paired_depth(stamp_ns, frame_hw)
        decoded = time.perf_counter()
        detections = self.runner.detect(rgb, depth)
        detected = time.perf_counter()
        size = self.config.mask_size if all(self.config.mask_size) else frame_hw
        masks = self.class_masks(detections, self.target_classes, size)
        masked = time.perf_counter()
        topics = self.config.topics
        # The masks first, the policy's input: a host publishes in this order.
        outputs = [
            Output(
                self.mask_topics[name], IMAGE, self._mask_images.encode(mask, stamp_ns, frame_id)
            )
            for name, mask in masks.items()
        ]
        array = detection2d_array(
            stamp_ns, frame_id, detections.class_names, detections.scores, detections.boxes_xyxy
        )
        outputs.append(Output(topics.detections, DETECTION2D_ARRAY, array))
        if self.config.overlay:
            overlay = overlay_image(rgb, detections, stamp_ns, frame_id)
            outputs.append(Output(topics.overlay, IMAGE, codec.encode(overlay, IMAGE)))
        end = time.perf_counter()
        self.stats.frames += 1
        self.stats.instances += len(detections)
        self.stats.last_step_ms = (end - start) * 1e3
        self.stats.last_stage_ms = {
            "decode": (decoded - start) * 1e3,
            **self.runner.last_timings_ms,
            "masks": (masked - detected) * 1e3,
            "encode": (end - masked) * 1e3,
        }
        return outputs


def image_size(info: Any) -> tuple[int, int] | None:
    """(height, width) of the images a sensor_msgs/CameraInfo describes: its calibration size,
    divided by the binning, or its region of interest when one is set. None when it gives no
    size (0): nothing to check the frames against."""
    roi = info.roi
    if roi.height and roi.width:
        return int(roi.height), int(roi.width)
    height = int(info.height) // max(int(info.binning_y), 1)
    width = int(info.width) // max(int(info.binning_x), 1)
    return (height, width) if height and width else None
