"""`rl-deploy export-detector`: Ultralytics weights → ONNX the runner loads, verified against them.

Wraps Ultralytics' ONNX export, adds the runner's card (metadata in the file and a YAML beside
it), then runs Ultralytics' predict and our runner on the same frames and reports box/mask IoU.
Ultralytics and torch are imported inside functions: they are export-time dependencies only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from rl_deploy.errors import ConfigError
from rl_deploy.perception.detections import Detections
from rl_deploy.perception.masks import decode_masks
from rl_deploy.perception.model import CARD_METADATA_KEY
from rl_deploy.perception.runner import YoloSegRunner, load_runner
from rl_deploy.perception.synthetic import render_scene

CAMERA_HW = (480, 640)  # verification frames: the example scene's camera
MATCH_MIN_BOX_IOU = 0.5  # a pair of detections of one class is the same object above this


@dataclass(frozen=True)
class Reference:
    """Ultralytics' result on one frame, at the frame's resolution."""

    boxes_xyxy: npt.NDArray[np.float32]  # (N, 4) frame pixels
    scores: npt.NDArray[np.float32]  # (N,)
    class_ids: npt.NDArray[np.intp]  # (N,)
    masks: npt.NDArray[np.bool_]  # (N, H, W)


@dataclass(frozen=True)
class Parity:
    """Agreement between our runner and Ultralytics over a set of frames.

    Means run over every instance either side found: an instance without a partner counts 0,
    so a missed or extra detection lowers the figure instead of hiding.
    """

    frames: int
    ours: int  # instances we found
    theirs: int  # instances Ultralytics found
    matched: int  # pairs of one class with box IoU >= MATCH_MIN_BOX_IOU
    box_iou: float  # mean over matched and unmatched instances
    mask_iou: float


def box_iou(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """Pairwise IoU of (N, 4) and (M, 4) x1y1x2y2 boxes → (N, M)."""
    a64, b64 = a.astype(np.float64)[:, None], b.astype(np.float64)[None]
    width = np.clip(
        np.minimum(a64[..., 2], b64[..., 2]) - np.maximum(a64[..., 0], b64[..., 0]), 0, None
    )
    height = np.clip(
        np.minimum(a64[..., 3], b64[..., 3]) - np.maximum(a64[..., 1], b64[..., 1]), 0, None
    )
    inter = width * height
    area_a = (a64[..., 2] - a64[..., 0]) * (a64[..., 3] - a64[..., 1])
    area_b = (b64[..., 2] - b64[..., 0]) * (b64[..., 3] - b64[..., 1])
    union = area_a + area_b - inter
    out: npt.NDArray[np.float64] = np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)
    return out


def mask_iou(a: npt.NDArray[np.bool_], b: npt.NDArray[np.bool_]) -> float:
    union = int(np.logical_or(a, b).sum())
    return 1.0 if union == 0 else int(np.logical_and(a, b).sum()) / union


def compare(ours: list[Detections], theirs: list[Reference]) -> Parity:
    """Greedy same-class matching by box IoU, best Ultralytics score first."""
    box_scores: list[float] = []
    mask_scores: list[float] = []
    n_ours = n_theirs = matched = 0
    for detections, reference in zip(ours, theirs, strict=True):
        # Ultralytics drops instances whose mask came out empty; leave those out on our side too.
        our_masks = decode_masks(detections)
        kept = our_masks.any(axis=(1, 2))
        our_masks, boxes, class_ids = (
            our_masks[kept],
            detections.boxes_xyxy[kept],
            detections.class_ids[kept],
        )
        n_ours += len(boxes)
        n_theirs += len(reference.scores)
        ious = box_iou(reference.boxes_xyxy, boxes)
        same_class = reference.class_ids[:, None] == class_ids[None, :]
        ious = np.where(same_class, ious, 0.0)
        free = np.ones(len(boxes), dtype=np.bool_)
        for j in np.argsort(-reference.scores, kind="stable"):
            candidates = np.where(free, ious[j], -1.0)
            if len(candidates) == 0 or candidates.max() < MATCH_MIN_BOX_IOU:
                continue
            i = int(candidates.argmax())
            free[i] = False
            matched += 1
            box_scores.append(float(ious[j, i]))
            mask_scores.append(mask_iou(our_masks[i], reference.masks[j]))
    unmatched = (n_ours - matched) + (n_theirs - matched)
    total = matched + unmatched
    return Parity(
        frames=len(ours),
        ours=n_ours,
        theirs=n_theirs,
        matched=matched,
        box_iou=sum(box_scores) / total if total else 1.0,
        mask_iou=sum(mask_scores) / total if total else 1.0,
    )


def ultralytics_model(path: str | Path) -> Any:
    """An Ultralytics YOLO model (PyTorch weights or an export) for predict."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    return YOLO(str(path), task="segment")


def ultralytics_reference(
    model: Any, rgb: npt.NDArray[np.uint8], imgsz: tuple[int, int], conf: float, iou: float
) -> Reference:
    """Ultralytics' predict on one RGB frame, masks at frame resolution (retina_masks)."""
    bgr = np.ascontiguousarray(rgb[..., ::-1])  # Ultralytics takes numpy frames as BGR
    result = model.predict(
        bgr, imgsz=list(imgsz), conf=conf, iou=iou, retina_masks=True, device="cpu", verbose=False
    )[0]
    height, width = rgb.shape[:2]
    if result.masks is None:
        return Reference(
            np.zeros((0, 4), np.float32),
            np.zeros(0, np.float32),
            np.zeros(0, np.intp),
            np.zeros((0, height, width), np.bool_),
        )
    return Reference(
        boxes_xyxy=result.boxes.xyxy.numpy().astype(np.float32),
        scores=result.boxes.conf.numpy().astype(np.float32),
        class_ids=result.boxes.cls.numpy().astype(np.intp),
        masks=result.masks.data.numpy() > 0.5,
    )


def sample_frames(n_frames: int, seed: int = 7) -> list[npt.NDArray[np.uint8]]:
    """Synthetic camera frames of the example scene (never seen in training: own seed)."""
    rng = np.random.default_rng(seed)
    return [render_scene(rng, CAMERA_HW[1], CAMERA_HW[0]).rgb for _ in range(n_frames)]


def verify(
    runner: YoloSegRunner, reference_model: Any, frames: list[npt.NDArray[np.uint8]]
) -> Parity:
    """Run our runner and Ultralytics on the same frames and compare."""
    conf, iou = runner.config.conf, runner.config.iou
    ours = [runner.detect(frame) for frame in frames]
    theirs = [
        ultralytics_reference(reference_model, frame, runner.info.imgsz, conf, iou)
        for frame in frames
    ]
    return compare(ours, theirs)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_card(onnx_path: Path, card: dict[str, Any]) -> None:
    """Embed the card as JSON metadata in the ONNX file and write it as YAML beside it."""
    import onnx

    model = onnx.load(str(onnx_path))
    entries = [p for p in model.metadata_props if p.key != CARD_METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(entries)
    entry = model.metadata_props.add()
    entry.key, entry.value = CARD_METADATA_KEY, json.dumps(card, sort_keys=True)
    onnx.save(model, str(onnx_path))
    onnx_path.with_suffix(".yaml").write_text(yaml.safe_dump(card, sort_keys=False))


def export_detector(
    weights: str | Path,
    imgsz: list[int],
    out: str | Path,
    half: bool = False,
    dynamic: bool = False,
) -> Path:
    """Export `weights` to ONNX at `imgsz` ([size] or [height, width]) and write it to `out`."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    import ultralytics
    from ultralytics.cfg import DEFAULT_CFG_DICT

    precision: dict[str, Any] = {}
    if half:  # newer Ultralytics replaced half=True by quantize=16
        precision = {"quantize": 16} if "quantize" in DEFAULT_CFG_DICT else {"half": True}
    size: int | list[int] = imgsz[0] if len(imgsz) == 1 else imgsz
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Ultralytics writes the export beside the weights, where it could overwrite a shipped model
    # of the same name: export from a private copy instead.
    with tempfile.TemporaryDirectory() as scratch:
        private = Path(scratch) / Path(weights).name
        shutil.copy2(weights, private)
        model = ultralytics_model(private)
        exported = model.export(
            format="onnx", imgsz=size, dynamic=dynamic, simplify=True, device="cpu", **precision
        )
        shutil.move(str(exported), out)
    names = model.names
    card = {
        "task": "segment",
        "names": [names[i] for i in sorted(names)],
        "imgsz": [imgsz[0], imgsz[-1]],
        "dynamic": dynamic,
        "fp16": half,
        "source_weights": Path(weights).name,
        "source_sha256": _sha256(Path(weights)),
        "ultralytics_version": ultralytics.__version__,
    }
    _write_card(out, card)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rl-deploy export-detector",
        description="Export Ultralytics YOLO-seg weights to ONNX for the runner and verify it.",
    )
    parser.add_argument("weights", type=Path, help="Ultralytics .pt weights")
    parser.add_argument("--imgsz", type=int, nargs="+", default=[640], help="size, or height width")
    parser.add_argument("--out", type=Path, required=True, help="ONNX file to write")
    parser.add_argument("--half", action="store_true", help="FP16 weights (I/O stays float32)")
    parser.add_argument("--dynamic", action="store_true", help="dynamic input height/width")
    parser.add_argument("--verify-frames", type=int, default=8, help="0 skips verification")
    parser.add_argument("--min-mask-iou", type=float, default=0.95)
    return parser


def export_and_verify(
    weights: str | Path,
    imgsz: list[int],
    out: str | Path,
    *,
    half: bool = False,
    dynamic: bool = False,
    verify_frames: int = 8,
) -> dict[str, Any]:
    """Export, then compare our runner with Ultralytics (its ONNX and PyTorch predict)."""
    onnx_path = export_detector(weights, imgsz, out, half, dynamic)
    report: dict[str, Any] = {
        "onnx": str(onnx_path),
        "size_mb": round(onnx_path.stat().st_size / 1e6, 2),
    }
    if verify_frames > 0:
        frames = sample_frames(verify_frames)
        runner = load_runner(onnx_path)
        report["vs_ultralytics_onnx"] = asdict(verify(runner, ultralytics_model(onnx_path), frames))
        report["vs_ultralytics_pt"] = asdict(verify(runner, ultralytics_model(weights), frames))
    return report


MIN_IMGSZ = 32  # the coarsest stride of a YOLO network


def check_export_args(weights: Path, imgsz: list[int], out: Path) -> None:
    """ConfigError naming the argument at fault, before any export work is done."""
    if not weights.is_file():
        raise ConfigError(f"weights: no such file, got '{weights}'")
    if len(imgsz) not in (1, 2) or min(imgsz) < MIN_IMGSZ:
        raise ConfigError(f"--imgsz takes one size, or height width, each >= {MIN_IMGSZ}: {imgsz}")
    if out.suffix.lower() != ".onnx" or out.is_dir():
        raise ConfigError(f"--out must name an .onnx file, got '{out}'")


def export_detector_main(argv: list[str]) -> int:
    """Entry point of `rl-deploy export-detector`; non-zero when verification fails."""
    args = build_parser().parse_args(argv)
    check_export_args(args.weights, args.imgsz, args.out)
    report = export_and_verify(
        args.weights,
        args.imgsz,
        args.out,
        half=args.half,
        dynamic=args.dynamic,
        verify_frames=args.verify_frames,
    )
    print(json.dumps(report, indent=2))
    parity = report.get("vs_ultralytics_onnx")
    if parity is not None and parity["mask_iou"] < args.min_mask_iou:
        print(
            f"verification failed: mask IoU {parity['mask_iou']:.4f} < {args.min_mask_iou}",
            file=sys.stderr,
        )
        return 1
    return 0
