"""The ONNX Runtime YOLO-seg runner: RGB frame in, `Detections` out, as Ultralytics predicts.

Letterbox, one `session.run` of the composed graph (perception.graph: the frame's conversion and
the confidence filter run inside it), class-aware NMS on the candidates and box scaling; masks
stay as coefficients until someone asks for them (perception.masks).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from onnx import TensorProto

from rl_deploy.errors import ConfigError, DecodeError, ModelContractError
from rl_deploy.perception.detections import Detections
from rl_deploy.perception.graph import (
    CANDIDATE_OUTPUTS,
    CLASSES_INPUT,
    network_as_run,
    with_candidate_outputs,
    with_uint8_input,
)
from rl_deploy.perception.letterbox import (
    LetterboxBuffer,
    LetterboxGeometry,
    Uint8LetterboxBuffer,
    letterbox_geometry,
)
from rl_deploy.perception.model import (
    GPU_PROVIDERS,
    ModelInfo,
    load_model,
    open_session,
    read_model_info,
)
from rl_deploy.perception.nms import class_aware_nms
from rl_deploy.perception.protos import with_protos_on_demand
from rl_deploy.settings import setting

logger = logging.getLogger(__name__)

DETECT_STAGES = ("preprocess", "network", "postprocess")  # YoloSegRunner.last_timings_ms


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
    # Measured at 30 Hz, 320, 2-core VM: spinning 10.3 ms per frame for 44 ms of CPU (1.3
    # cores), sleeping 12.8 ms for 18.6 ms (0.56 cores).
    spin_wait: bool = setting(
        True,
        "ONNX Runtime's workers spin-wait between runs (lowest latency); false: they sleep, "
        "the run takes about a quarter longer and the process less than half the CPU (cores "
        "shared with Nav2, SLAM or a Jetson's other nodes).",
    )
    io_binding: str = setting(
        "auto", "ONNX Runtime I/O binding: auto (GPU providers only), on or off."
    )
    protos_on_demand: str = setting(
        "auto",
        "Compute the mask prototypes only on frames with a candidate of the allowed classes "
        "(on: 12-21 % off the step on a frame without, about 0.4 ms added on the others at "
        "320, 2-core CPU), on every frame (off), or auto: on for the CPU provider only (GPU "
        "untested).",
    )
    uint8_input: bool = setting(
        True,
        "Feed the network the letterboxed uint8 frame and convert it to the float tensor inside "
        "the graph (the same values; one pass less around the network); false: in numpy.",
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
        # Scores must be above conf: at 1.0 nothing could ever be detected.
        if not 0.0 <= config.conf < 1.0 or not 0.0 <= config.iou <= 1.0 or config.max_det < 1:
            raise ConfigError(
                f"detector thresholds out of range (conf in [0, 1), iou in [0, 1], max_det >= 1): "
                f"conf={config.conf}, iou={config.iou}, max_det={config.max_det}"
            )
        if not (math.isfinite(config.min_contrast) and config.min_contrast >= 0):
            raise ConfigError(
                f"min_contrast must be a finite number >= 0, got {config.min_contrast!r}"
            )
        for name in ("io_binding", "protos_on_demand"):
            if getattr(config, name) not in ("auto", "on", "off"):
                raise ConfigError(f"{name} must be auto, on or off, got {getattr(config, name)!r}")
        self.config = config
        model = load_model(config.model, config.sha256)
        self.info: ModelInfo = read_model_info(model, config.model, config.class_names)
        model = network_as_run(model)
        if config.uint8_input:
            model = with_uint8_input(model, self.info)
        elif self.info.input_type != TensorProto.FLOAT:
            raise ConfigError(f"{config.model} takes float16 input: it needs uint8_input true")
        protos = self.info.output_names[1]
        self.protos_on_demand = False  # prototypes only on frames with candidates
        if self.info.end2end:
            self.output_names: tuple[str, ...] = self.info.output_names
        else:  # the first filter runs in the graph; NMS gets the candidates
            model = with_candidate_outputs(model, self.info, config.conf)
            self.output_names = (*CANDIDATE_OUTPUTS, protos)
            self.protos_on_demand = _protos_on_demand(config)
            if self.protos_on_demand:
                model = with_protos_on_demand(model, self.info)
        # Outputs whose shapes change per frame (I/O binding gives them fresh buffers each run).
        self._varying_outputs = self.output_names[: None if self.protos_on_demand else -1]
        self._output_list = list(self.output_names)
        self._allowed: dict[tuple[str, ...] | None, npt.NDArray[np.bool_]] = {}
        self.session = open_session(
            model,
            config.model,
            config.providers,
            config.trt_cache_dir or None,
            config.fp16,
            intra_op_threads=config.intra_op_threads,
            spin_wait=config.spin_wait,
        )
        self.provider: str = self.session.get_providers()[0]
        self._input = Uint8LetterboxBuffer() if config.uint8_input else LetterboxBuffer()
        self._geometry: LetterboxGeometry | None = None
        # The last detect's stages: preprocess, network, postprocess (0: not run, no contrast).
        self.last_timings_ms: dict[str, float] = dict.fromkeys(DETECT_STAGES, 0.0)
        self.last_instances = 0  # the last detect's: 0 also when it ran no prototypes
        # On a GPU, I/O binding copies the input once and keeps outputs in onnxruntime's buffers.
        binding = config.io_binding == "on" or (
            config.io_binding == "auto" and self.provider in GPU_PROVIDERS
        )
        self._binding = self.session.io_binding() if binding else None
        if self._binding is not None:
            for name in self.output_names:  # in this order: copy_outputs_to_cpu keeps it
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

    def preprocess(self, rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.generic]:
        """The session's input for `rgb` (a buffer reused by the next call): the (1, H, W, 3)
        uint8 letterboxed frame, or with `uint8_input` off the (1, 3, H, W) float32 tensor."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise DecodeError(
                f"detector needs an (H, W, 3) uint8 RGB frame, got {rgb.dtype} {rgb.shape}"
            )
        if rgb.shape[0] == 0 or rgb.shape[1] == 0:
            raise DecodeError(f"detector got an empty frame {rgb.shape}")
        self._input.fill(rgb, self.geometry((rgb.shape[0], rgb.shape[1])))
        return self._input.tensor

    def infer(
        self, tensor: npt.NDArray[np.generic], classes: Sequence[str] | None = None
    ) -> list[npt.NDArray[Any]]:
        """One session run on the input from `preprocess`: the arrays of `output_names`.

        Raw exports give the candidates of the allowed `classes` (all by default): boxes
        (x1, y1, x2, y2, input pixels), scores, class ids, mask coefficients; then the
        prototypes. Exports with NMS inside give their (1, K, 6 + P) rows and the prototypes.
        """
        return self._run(tensor, self._allowed_classes(classes))

    def _run(
        self, tensor: npt.NDArray[np.generic], allowed: npt.NDArray[np.bool_]
    ) -> list[npt.NDArray[Any]]:
        feeds = {self.info.input_name: tensor}
        if not self.info.end2end:
            feeds[CLASSES_INPUT] = allowed
        try:
            if self._binding is None:
                outputs: list[npt.NDArray[Any]] = self.session.run(self._output_list, feeds)
                return outputs
            for name, value in feeds.items():
                self._binding.bind_cpu_input(name, value)
            # Candidate counts change per frame: fresh outputs each run, not the last run's.
            for name in self._varying_outputs:
                self._binding.bind_output(name)
            self.session.run_with_iobinding(self._binding)
            copied: list[npt.NDArray[Any]] = self._binding.copy_outputs_to_cpu()
            return copied
        except Exception as err:  # a runtime failure (CUDA OOM) must drop the frame, not the host
            raise ModelContractError(f"{self.config.model}: inference failed: {err}") from err

    def _allowed_classes(self, classes: Sequence[str] | None) -> npt.NDArray[np.bool_]:
        key = None if classes is None else tuple(classes)
        allowed = self._allowed.get(key)
        if allowed is None:
            allowed = np.ones(len(self.info.names), np.bool_)
            if classes is not None:
                allowed[:] = False
                allowed[self._class_ids(classes)] = True
            self._allowed[key] = allowed
        return allowed

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
        timings = self.last_timings_ms
        timings.update(dict.fromkeys(DETECT_STAGES, 0.0))
        self.last_instances = 0
        start = time.perf_counter()
        tensor = self.preprocess(rgb)
        frame_hw = (rgb.shape[0], rgb.shape[1])
        if depth_m is not None and depth_m.shape[:2] != frame_hw:
            raise DecodeError(
                f"depth {depth_m.shape[:2]} is not aligned with the RGB frame {frame_hw}"
            )
        allowed = self._allowed_classes(classes)  # unknown classes refused, even when dark
        contrast = self.has_contrast(rgb)
        preprocessed = time.perf_counter()
        timings["preprocess"] = (preprocessed - start) * 1e3
        if not contrast:
            return self._empty(frame_hw, depth_m)
        outputs = self._run(tensor, allowed)
        inferred = time.perf_counter()
        timings["network"] = (inferred - preprocessed) * 1e3
        detections = self._detections(outputs, frame_hw, depth_m, classes)
        timings["postprocess"] = (time.perf_counter() - inferred) * 1e3
        self.last_instances = len(detections)
        return detections

    def _detections(
        self,
        outputs: list[npt.NDArray[Any]],
        frame_hw: tuple[int, int],
        depth_m: npt.NDArray[np.float32] | None,
        classes: Sequence[str] | None,
    ) -> Detections:
        """The session's outputs past NMS, boxes in frame pixels."""
        protos = _float32(outputs[-1][0])
        if self.info.end2end:
            class_filter = None if classes is None else self._class_ids(classes)
            boxes, scores, class_ids, coeffs = self._from_end2end(outputs[0][0], class_filter)
        else:
            boxes, scores, class_ids, coeffs = self._after_nms(*outputs[:4])
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

    def _after_nms(
        self,
        boxes: npt.NDArray[Any],
        scores: npt.NDArray[Any],
        class_ids: npt.NDArray[np.intp],
        coeffs: npt.NDArray[Any],
    ) -> tuple[
        npt.NDArray[np.float32],
        npt.NDArray[np.float32],
        npt.NDArray[np.intp],
        npt.NDArray[np.float32],
    ]:
        """The candidates (input pixels) that class-aware NMS keeps, best first."""
        boxes, scores, coeffs = _float32(boxes), _float32(scores), _float32(coeffs)
        if len(boxes) <= 1:  # most frames: nothing, or one object, to sort out
            return boxes, scores, class_ids, coeffs
        kept = class_aware_nms(boxes, scores, class_ids, self.config.iou, self.config.max_det)
        return boxes[kept], scores[kept], class_ids[kept], coeffs[kept]

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


def _protos_on_demand(config: DetectorConfig) -> bool:
    """Whether the prototype branch runs only on frames with candidates (`protos_on_demand`)."""
    if config.protos_on_demand != "auto":
        return config.protos_on_demand == "on"
    available = set(ort.get_available_providers())
    # auto: on where the session will run on the CPU provider, i.e. no other requested is here
    return not any(p in available for p in config.providers if p != "CPUExecutionProvider")


def load_runner(model: str | Path, **overrides: object) -> YoloSegRunner:
    """A runner for `model` with DetectorConfig defaults, CPU unless providers are given."""
    fields: dict[str, object] = {"model": str(model), "providers": ("CPUExecutionProvider",)}
    fields.update(overrides)
    return YoloSegRunner(DetectorConfig(**fields))  # type: ignore[arg-type]


def _float32(array: npt.NDArray[Any]) -> npt.NDArray[np.float32]:
    """float16 exports' outputs in float32; float32 ones as they are."""
    return array if array.dtype == np.float32 else array.astype(np.float32)
