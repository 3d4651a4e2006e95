"""Train the example detector from scratch: synthetic scenes in, a YOLO-seg ONNX model out.

`rl-deploy train-detector` writes a YOLO-format dataset, trains an Ultralytics model built from
its YAML (no downloaded weights), scores it on a held-out split and exports it with the runner's
metadata. Ultralytics and torch are imported inside functions: export-time dependencies only.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import yaml

from rl_deploy.errors import ConfigError
from rl_deploy.perception.synthetic import SCENE_CLASSES, Scene, render_scene

logger = logging.getLogger(__name__)

ASPECT = 4 / 3  # rendered frames are landscape 4:3, like the example scene's camera
TRAIN_SEED_OFFSET = 0
HELD_OUT_SEED_OFFSET = 1_000_003  # held-out scenes come from a seed stream training never sees


def mask_to_polygon(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    """Outline of a mask, fragments and holes included, as one polygon (N, 2) of pixel x, y.

    Every contour (outer boundaries and hole boundaries) is closed and joined to the first by a
    zero-width bridge walked out and back. Filled with the even-odd rule, as Ultralytics' label
    loader does (cv2.fillPoly), the polygon gives back the mask: the YOLO format holds one
    polygon per instance and no holes otherwise.
    """
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    parts = [c.reshape(-1, 2).astype(np.float64) for c in contours if len(c) >= 3]
    if not parts:
        return np.zeros((0, 2), np.float64)
    parts.sort(key=lambda p: -cv2.contourArea(p.astype(np.float32)))
    closed = [np.vstack([part, part[:1]]) for part in parts]
    # After the last contour, walk back over the bridges' start points to the first contour.
    way_back = [part[:1] for part in reversed(parts[1:-1])]
    return np.vstack(closed + way_back)


def _label_lines(scene: Scene) -> list[str]:
    height, width = scene.rgb.shape[:2]
    lines = []
    for instance in scene.instances:
        polygon = mask_to_polygon(instance.mask)
        if len(polygon) < 3:
            continue
        normalised = polygon / np.array([width, height], np.float64)
        coords = " ".join(f"{v:.5f}" for v in np.clip(normalised, 0.0, 1.0).ravel())
        lines.append(f"{instance.class_id} {coords}")
    return lines


def _write_split(root: Path, split: str, n_images: int, seed: int, imgsz: int) -> None:
    images, labels = root / "images" / split, root / "labels" / split
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    width, height = imgsz, round(imgsz / ASPECT)
    for index in range(n_images):
        scene = render_scene(rng, width, height)
        name = f"{split}_{index:05d}"
        cv2.imwrite(str(images / f"{name}.png"), cv2.cvtColor(scene.rgb, cv2.COLOR_RGB2BGR))
        (labels / f"{name}.txt").write_text("\n".join(_label_lines(scene)) + "\n")


DATASET_ENTRIES = frozenset({"data.yaml", "images", "labels"})  # what a YOLO-seg dataset holds


def clear_dataset_dir(root: Path) -> None:
    """Make way for a new dataset at `root`: an earlier one (its data.yaml, images/ and
    labels/, or a part of them) is removed; anything else there is the user's: ConfigError."""
    if root.is_file():
        raise ConfigError(f"{root} is a file; a dataset is written as a directory")
    if not root.is_dir():
        return
    foreign = sorted(p.name for p in root.iterdir() if p.name not in DATASET_ENTRIES)
    if foreign:
        raise ConfigError(
            f"{root} holds {foreign[:5]}, which are not a dataset's: not replacing it; "
            "choose a new or empty directory"
        )
    shutil.rmtree(root)


def generate_dataset(
    out_dir: str | Path, n_images: int, seed: int, imgsz: int, val_fraction: float = 0.2
) -> Path:
    """Render a YOLO-seg dataset (train and held-out val splits); returns its data YAML.

    `imgsz` is the width of the rendered frames (4:3). Any renderer that writes the same layout
    (the simulator's, later) can replace this function; training reads only the YAML.
    """
    root = Path(out_dir)
    clear_dataset_dir(root)
    n_val = max(1, round(n_images * val_fraction))
    _write_split(root, "train", n_images - n_val, seed + TRAIN_SEED_OFFSET, imgsz)
    _write_split(root, "val", n_val, seed + HELD_OUT_SEED_OFFSET, imgsz)
    data = {
        "path": str(root.resolve()),
        "train": "images/train",
        "val": "images/val",
        "names": dict(enumerate(SCENE_CLASSES)),
    }
    data_yaml = root / "data.yaml"
    data_yaml.write_text(yaml.safe_dump(data, sort_keys=False))
    return data_yaml


def train(
    data_yaml: Path,
    model_yaml: str,
    imgsz: int,
    *,
    epochs: int,
    batch: int,
    workers: int,
    project: Path,
    seed: int,
) -> Path:
    """Train from the model YAML (random init) on CPU; returns the final weights."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    model = YOLO(model_yaml, task="segment")
    model.train(
        data=str(data_yaml),
        imgsz=imgsz,
        epochs=epochs,
        batch=batch,
        workers=workers,
        device="cpu",
        project=str(project.resolve()),
        name="train",
        exist_ok=True,
        pretrained=False,
        seed=seed,
        deterministic=True,
        cache="ram",
        plots=False,
        val=False,  # held-out scoring happens once, after training
        amp=False,
        close_mosaic=max(1, epochs // 5),
        verbose=False,
    )
    return project / "train" / "weights" / "last.pt"


def evaluate(weights: Path, data_yaml: Path, imgsz: int, project: Path) -> dict[str, float]:
    """Box and mask mAP of `weights` on the held-out split (Ultralytics' own metric code)."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    from ultralytics import YOLO

    metrics: Any = YOLO(str(weights), task="segment").val(
        data=str(data_yaml),
        imgsz=imgsz,
        batch=8,
        device="cpu",
        plots=False,
        verbose=False,
        project=str(project.resolve()),  # not ./runs
        name="val",
        exist_ok=True,
    )
    return {
        "box_map50_95": float(metrics.box.map),
        "box_map50": float(metrics.box.map50),
        "mask_map50_95": float(metrics.seg.map),
        "mask_map50": float(metrics.seg.map50),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rl-deploy train-detector",
        description="Train the example YOLO-seg detector from scratch on synthetic scenes. "
        "The defaults are the recipe of models/detector/detector.onnx.",
    )
    parser.add_argument("--out", type=Path, default=Path("models/detector/detector.onnx"))
    parser.add_argument("--work-dir", type=Path, default=Path("out/detector_train"))
    parser.add_argument(
        "--model", default="models/detector/yolo11n-seg-narrow.yaml", help="Ultralytics YAML"
    )
    parser.add_argument("--images", type=int, default=480, help="rendered images (train + val)")
    parser.add_argument("--val-fraction", type=float, default=0.2, help="held-out share")
    parser.add_argument("--imgsz", type=int, default=320, help="training size and render width")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--export-imgsz",
        type=int,
        nargs="+",
        default=[256, 320],
        help="ONNX input: one size, or height width (default: the 4:3 camera at 320)",
    )
    return parser


def ship(weights: Path, data_yaml: Path, args: argparse.Namespace, argv: list[str]) -> None:
    """Copy the weights beside `args.out`, score them on the held-out split, export, verify.

    Writes `<out>.training.json`: the recipe, the held-out scores and the export's parity.
    """
    from rl_deploy.tools.detector_export import export_and_verify

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    shipped_weights = out.with_suffix(".pt")
    shutil.copy2(weights, shipped_weights)
    report: dict[str, Any] = {
        "recipe": ["rl-deploy", "train-detector", *argv],
        "args": {k: str(v) for k, v in vars(args).items()},
        "held_out": evaluate(shipped_weights, data_yaml, args.imgsz, Path(args.work_dir)),
    }
    report |= export_and_verify(shipped_weights, args.export_imgsz, out)
    out.with_suffix(".training.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


def check_train_args(args: argparse.Namespace) -> None:
    """ConfigError naming the argument at fault, before a dataset is rendered."""
    from rl_deploy.tools.detector_export import MIN_IMGSZ

    model = Path(args.model)
    # A bare name (yolo11n-seg.yaml) is one of Ultralytics' own configs; a path must exist.
    if model.parent != Path() and not model.is_file():
        raise ConfigError(f"--model: no such file, got '{model}'")
    if args.imgsz < MIN_IMGSZ:
        raise ConfigError(f"--imgsz must be >= {MIN_IMGSZ}, got {args.imgsz}")
    for name in ("images", "epochs", "batch"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if not 0.0 < args.val_fraction < 1.0:
        raise ConfigError(f"--val-fraction must be in (0, 1), got {args.val_fraction}")
    if len(args.export_imgsz) not in (1, 2) or min(args.export_imgsz) < MIN_IMGSZ:
        raise ConfigError(
            f"--export-imgsz takes one size, or height width, each >= {MIN_IMGSZ}: "
            f"{args.export_imgsz}"
        )
    if Path(args.out).suffix.lower() != ".onnx" or Path(args.out).is_dir():
        raise ConfigError(f"--out must name an .onnx file, got '{args.out}'")


def train_detector_main(argv: list[str]) -> int:
    """Entry point of `rl-deploy train-detector`: dataset, training, held-out score, export."""
    args = build_parser().parse_args(argv)
    check_train_args(args)
    work = Path(args.work_dir)
    data_yaml = generate_dataset(
        work / "dataset", args.images, args.seed, args.imgsz, args.val_fraction
    )
    weights = train(
        data_yaml,
        args.model,
        args.imgsz,
        epochs=args.epochs,
        batch=args.batch,
        workers=args.workers,
        project=work,
        seed=args.seed,
    )
    ship(weights, data_yaml, args, argv)
    return 0
