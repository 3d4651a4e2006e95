"""The ONNX Runtime YOLO-seg runner: RGB frame in, `Detections` out, as Ultralytics predicts.

Letterbox, one `session.run`, confidence filter, class-aware NMS and box scaling; masks stay as
coefficients until someone asks for them (perception.masks).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from rl_deploy.errors import ConfigError, DecodeError
from rl_deploy.perception.detections import Detections
from rl_deploy.perception.letterbox import LetterboxBuffer, LetterboxGeometry, letterbox_geometry
from rl_deploy.perception.model import GPU_PROVIDERS, ModelInfo, open_session, read_model_info
from rl_deploy.perception.nms import class_aware_nms
from rl_deploy.settings import setting

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DetectorConfig:
    """How to run a YOLO-seg ONNX export."""

    model: str = setting(
        "models/detector/detector.onnx",
        "YOLO-seg ONNX export; class names come from its metadata.",
    )
    sha256: str = setting("", "Expected SHA-256 of the ONNX file; empty skips the check.")
    providers: tuple[str, ...] = setting(
        ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
        "ONNX Runtime execution providers in order of preference.",
    )
    conf: float = setting(
        0.25, "Minimum class score of a detection (kept when strictly above, as Ultralytics)."
    )
    iou: float = setting(0.7, "NMS IoU threshold within a class.")
    max_det: int = setting(300, "Most detections kept per frame.")
    class_names: tuple[str, ...] = setting(
        (), "Overrides the model's class names (models without metadata); empty: its own."
    )
    trt_cache_dir: str = setting(
        "", "TensorRT engine cache directory; empty rebuilds the engines at each start."
    )
    fp16: bool = setting(False, "Build FP16 TensorRT engines.")
    intra_op_threads: int = setting(0, "ONNX Runtime intra-op threads; 0: its default.")
    io_binding: str = setting(
        "auto", "ONNX Runtime I/O binding: auto (GPU providers only), on or off."
    )
    # A covered, dark or blinded camera carries no scene: no detections instead of guesses.
    min_contrast: float = setting(
        2.0,
        "Frames whose grey levels vary less than this (standard deviation over a sparse grid) "
        "give no detections; 0 disables the check.",
    )


class YoloSegRunner:
    """Runs one Ultralytics segmentation export with ONNX Runtime."""

    def __init__(self, config: DetectorConfig) -> None:
        if not 0.0 <= config.conf <= 1.0 or not 0.0 <= config.iou <= 1.0 or config.max_det < 1:
            raise ConfigError(
                f"detector thresholds out of range: conf={config.conf}, iou={config.iou}, "
                f"max_det={config.max_det}"
            )
        if config.io_binding not in ("auto", "on", "off"):
            raise ConfigError(f"io_binding must be auto, on or off, got {config.io_binding!r}")
        self.config = config
        self.session = open_session(
            config.model,
            config.providers,
            config.trt_cache_dir or None,
            config.fp16,
            intra_op_threads=config.intra_op_threads,
            expected_sha256=config.sha256,
        )
        self.info: ModelInfo = read_model_info(self.session, config.model, config.class_names)
        self.provider: str = self.session.get_providers()[0]
        self._input = LetterboxBuffer()
        empty = np.zeros((0, 4 + self.info.n_protos), np.float32)
        empty.flags.writeable = False  # shared by every frame without a candidate
        self._no_boxes = (empty[:, :4], empty[:, 0], np.zeros(0, np.intp), empty[:, 4:])
        self._geometry: LetterboxGeometry | None = None
        # On a GPU, I/O binding copies the input once and keeps outputs in onnxruntime's buffers.
        binding = config.io_binding == "on" or (
            config.io_binding == "auto" and self.provider in GPU_PROVIDERS
        )
        self._binding = self.session.io_binding() if binding else None
        if self._binding is not None:
            for name in self.info.output_names:
                self._binding.bind_output(name)  # onnxruntime allocates, and reuses when it can

    @property
    def names(self) -> tuple[str, ...]:
        return self.info.names

    def geometry(self, frame_hw: tuple[int, int]) -> LetterboxGeometry:
        """Letterbox geometry for a frame size (cached: a camera's size does not change)."""
        if self._geometry is None or self._geometry.frame_hw != frame_hw:
            self._geometry = letterbox_geometry(
                frame_hw, self.info.imgsz, self.info.stride, auto=self.info.dynamic
            )
        return self._geometry

    def preprocess(self, rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """The network input for `rgb`, (1, 3, H, W) float32 (a buffer reused by the next call)."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise DecodeError(
                f"detector needs an (H, W, 3) uint8 RGB frame, got {rgb.dtype} {rgb.shape}"
            )
        if rgb.shape[0] == 0 or rgb.shape[1] == 0:
            raise DecodeError(f"detector got an empty frame {rgb.shape}")
        self._input.fill(rgb, self.geometry((rgb.shape[0], rgb.shape[1])))
        return self._input.tensor

    def infer(self, tensor: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float32], ...]:
        """One network run: (predictions, prototypes) for batch item 0."""
        if self._binding is not None:
            self._binding.bind_cpu_input(self.info.input_name, tensor)
            self.session.run_with_iobinding(self._binding)
            outputs = self._binding.copy_outputs_to_cpu()
        else:
            outputs = self.session.run(list(self.info.output_names), {self.info.input_name: tensor})
        return np.asarray(outputs[0][0], np.float32), np.asarray(outputs[1][0], np.float32)

    def detect(
        self,
        rgb: npt.NDArray[np.uint8],
        depth_m: npt.NDArray[np.float32] | None = None,
        classes: Sequence[str] | None = None,
    ) -> Detections:
        """Detect instances in an (H, W, 3) uint8 RGB frame.

        `classes` keeps only those classes (before NMS, as Ultralytics' `classes`); `depth_m`
        (aligned with the frame) is carried for depth-filtered class masks.
        """
        tensor = self.preprocess(rgb)
        frame_hw = (rgb.shape[0], rgb.shape[1])
        if depth_m is not None and depth_m.shape[:2] != frame_hw:
            raise DecodeError(
                f"depth {depth_m.shape[:2]} is not aligned with the RGB frame {frame_hw}"
            )
        class_filter = None if classes is None else self._class_ids(classes)
        if not self.has_contrast(rgb):
            return self._empty(frame_hw, depth_m)
        predictions, protos = self.infer(tensor)
        if self.info.end2end:
            boxes, scores, class_ids, coeffs = self._from_end2end(predictions, class_filter)
        else:
            boxes, scores, class_ids, coeffs = self._from_raw(predictions, class_filter)
        if len(boxes):
            boxes = self.geometry(frame_hw).boxes_to_frame(boxes)
        return Detections(
            boxes_xyxy=boxes,
            scores=scores,
            class_ids=class_ids,
            mask_coeffs=coeffs,
            protos=protos,
            frame_hw=frame_hw,
            names=self.info.names,
            depth_m=depth_m,
        )

    def has_contrast(self, rgb: npt.NDArray[np.uint8]) -> bool:
        """False for frames without a scene in them (uniform black, white or grey)."""
        if self.config.min_contrast <= 0:
            return True
        step = max(1, min(rgb.shape[0], rgb.shape[1]) // 32)  # a few hundred samples suffice
        samples = np.ascontiguousarray(rgb[::step, ::step]).reshape(-1)
        _, std = cv2.meanStdDev(samples)  # one call: numpy's std is a dozen on this size
        return float(std[0, 0]) >= self.config.min_contrast

    def _empty(
        self, frame_hw: tuple[int, int], depth_m: npt.NDArray[np.float32] | None
    ) -> Detections:
        n_protos = self.info.n_protos
        return Detections(
            boxes_xyxy=np.zeros((0, 4), np.float32),
            scores=np.zeros(0, np.float32),
            class_ids=np.zeros(0, np.intp),
            mask_coeffs=np.zeros((0, n_protos), np.float32),
            protos=np.zeros((n_protos, 1, 1), np.float32),
            frame_hw=frame_hw,
            names=self.info.names,
            depth_m=depth_m,
        )

    def _class_ids(self, classes: Sequence[str]) -> npt.NDArray[np.intp]:
        unknown = [name for name in classes if name not in self.info.names]
        if unknown:
            raise ConfigError(f"classes {unknown} are not in the model's {self.info.names}")
        return np.asarray([self.info.names.index(name) for name in classes], dtype=np.intp)

    def _from_raw(
        self, predictions: npt.NDArray[np.float32], class_filter: npt.NDArray[np.intp] | None
    ) -> tuple[
        npt.NDArray[np.float32],
        npt.NDArray[np.float32],
        npt.NDArray[np.intp],
        npt.NDArray[np.float32],
    ]:
        """(4 + nc + P, N) raw head output → NMS-ed boxes (input pixels), scores, ids, coeffs."""
        n_classes = len(self.info.names)
        class_scores = predictions[4 : 4 + n_classes]
        candidates = np.flatnonzero(class_scores.max(axis=0) > self.config.conf)
        if candidates.size == 0:  # most frames of a search: nothing to sort out
            return self._no_boxes
        rows = predictions[:, candidates].T  # (M, 4 + nc + P), only the candidates
        scores_all = rows[:, 4 : 4 + n_classes]
        class_ids: npt.NDArray[np.intp] = scores_all.argmax(axis=1)
        scores = scores_all.max(axis=1)  # the score of the argmax class
        if class_filter is not None:
            keep = (class_ids[:, np.newaxis] == class_filter).any(axis=1)
            rows, class_ids, scores = rows[keep], class_ids[keep], scores[keep]
        centre, half = rows[:, 0:2], rows[:, 2:4] / 2
        boxes = np.concatenate([centre - half, centre + half], axis=1)
        kept = class_aware_nms(boxes, scores, class_ids, self.config.iou, self.config.max_det)
        coeffs = np.ascontiguousarray(rows[kept, 4 + n_classes :], dtype=np.float32)
        return boxes[kept], scores[kept], class_ids[kept], coeffs

    def _from_end2end(
        self, predictions: npt.NDArray[np.float32], class_filter: npt.NDArray[np.intp] | None
    ) -> tuple[
        npt.NDArray[np.float32],
        npt.NDArray[np.float32],
        npt.NDArray[np.intp],
        npt.NDArray[np.float32],
    ]:
        """(K, 6 + P) rows already past NMS: x1, y1, x2, y2, score, class, coefficients."""
        keep = predictions[:, 4] > self.config.conf
        class_ids = predictions[:, 5].astype(np.intp)
        if class_filter is not None:
            keep &= np.isin(class_ids, class_filter)
        rows = predictions[keep][: self.config.max_det]
        return (
            np.ascontiguousarray(rows[:, :4], dtype=np.float32),
            np.ascontiguousarray(rows[:, 4], dtype=np.float32),
            class_ids[keep][: self.config.max_det],
            np.ascontiguousarray(rows[:, 6:], dtype=np.float32),
        )


def load_runner(model: str | Path, **overrides: object) -> YoloSegRunner:
    """A runner for `model` with DetectorConfig defaults, CPU unless providers are given."""
    fields: dict[str, object] = {"model": str(model), "providers": ("CPUExecutionProvider",)}
    fields.update(overrides)
    return YoloSegRunner(DetectorConfig(**fields))  # type: ignore[arg-type]
