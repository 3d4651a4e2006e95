"""Fine-tune the shipped example detector on simulator renders (plus synthetic scenes).

    YOLO_OFFLINE=1 python models/recipes/finetune_detector_sim.py   # models/detector/detector_sim.*

The shipped detector (models/detector/detector.pt) learned from programmatic scenes and finds
almost nothing in the MuJoCo room's renders. This starts from its weights and trains on both:
the synthetic generator's images (so it keeps working there) and head-camera renders of the
simulator with exact instance labels (`rl_deploy.sim.dataset`). The result is exported with the
same tooling as the shipped detector and scored on held-out simulator views by the share of
target objects whose mask it finds (what the policy needs), next to the shipped detector's.
Needs the export extra (requirements/export.txt).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue as queue_module
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from rl_deploy.perception.masks import class_masks
from rl_deploy.perception.runner import load_runner
from rl_deploy.sim.dataset import add_sim_images, instance_labels, sample_view
from rl_deploy.sim.render import CameraRenderer
from rl_deploy.sim.scene import load_scene
from rl_deploy.sim.world import SimWorld
from rl_deploy.tools.detector_export import export_and_verify
from rl_deploy.tools.detector_train import generate_dataset

REPO = Path(__file__).resolve().parents[2]
SCENE = REPO / "config" / "scenes" / "example_room.yaml"
TARGETS = ("cup", "bottle", "bowl")
RECALL_SEED = 900_000  # held-out views: neither training split uses these layouts


def sim_recall(onnx_path: Path, views: int) -> dict[str, float]:
    """Per target class: share of visible instances whose pixels the detector's class mask
    covers by more than half, over `views` held-out simulator views (640x480)."""
    scene = load_scene(SCENE)
    runner = load_runner(onnx_path)
    world = SimWorld(scene)
    camera = scene.robot.camera
    renderer = CameraRenderer(world.model, scene, camera.width, camera.height)
    rng = np.random.default_rng(RECALL_SEED)
    found = dict.fromkeys(TARGETS, 0)
    seen = dict.fromkeys(TARGETS, 0)
    try:
        for seed in range(RECALL_SEED, RECALL_SEED + views):
            sample_view(scene, world, seed, rng)
            frame = renderer.render(world.data)
            detections = runner.detect(frame.rgb_u8, frame.depth_m, TARGETS)
            masks = class_masks(detections, TARGETS, (camera.height, camera.width), None)
            for class_index, mask in instance_labels(scene, frame):
                name = scene.classes[class_index]
                if name in seen:
                    seen[name] += 1
                    found[name] += int((masks[name].astype(bool) & mask).sum() > mask.sum() / 2)
    finally:
        renderer.close()
    return {name: round(found[name] / max(seen[name], 1), 3) for name in TARGETS} | {
        "instances": sum(seen.values())
    }


def finetune(data_yaml: Path, args: argparse.Namespace) -> Path:
    """Ultralytics training from the shipped weights, gently: a fine-tune, not a restart."""
    from ultralytics import YOLO

    model = YOLO(str(args.init), task="segment")
    model.train(
        data=str(data_yaml),
        imgsz=args.imgsz,
        epochs=args.epochs,
        batch=args.batch,
        workers=1,
        device="cpu",
        project=str(args.work.resolve()),
        name="train",
        exist_ok=True,
        seed=args.seed,
        deterministic=True,
        cache="ram",
        plots=False,
        val=False,
        amp=False,
        optimizer="AdamW",
        lr0=0.001,  # the weights are trained already: small steps
        warmup_epochs=1.0,
        warmup_bias_lr=0.0,
        close_mosaic=max(1, args.epochs // 3),
        verbose=False,
    )
    return Path(args.work) / "train" / "weights" / "last.pt"


def _relative(value: Any) -> str:
    """A path inside the repository as a relative one, so the report reads the same anywhere."""
    if isinstance(value, Path) and value.resolve().is_relative_to(REPO):
        return str(value.resolve().relative_to(REPO))
    return str(value)


def _call(queue: Any, function: Callable[..., Any], args: tuple[Any, ...], kwargs: Any) -> None:
    queue.put(function(*args, **kwargs))


def _in_process(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """function(*args, **kwargs) in a fresh (spawned) process; its return value."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_call, args=(queue, function, args, kwargs))
    process.start()
    while True:
        try:
            result = queue.get(timeout=1.0)
            break
        except queue_module.Empty:
            if not process.is_alive():
                raise SystemExit(f"{function.__name__} failed in its process") from None
    process.join()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init", type=Path, default=REPO / "models/detector/detector.pt")
    parser.add_argument("--out", type=Path, default=REPO / "models/detector/detector_sim.onnx")
    parser.add_argument("--work", type=Path, default=REPO / "out/detector_sim")
    parser.add_argument("--synthetic-images", type=int, default=240)
    parser.add_argument("--sim-images", type=int, default=480)
    parser.add_argument("--imgsz", type=int, default=320)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--recall-views", type=int, default=60)
    args = parser.parse_args(argv)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    started = time.time()
    data_yaml = generate_dataset(
        args.work / "dataset", args.synthetic_images, args.seed, args.imgsz
    )
    # MuJoCo's GL context and Ultralytics' torch do not share a process well (it crashes):
    # every render happens in a process of its own.
    _in_process(add_sim_images, data_yaml, args.sim_images, args.seed, args.imgsz, scene_path=SCENE)
    weights = finetune(data_yaml, args)
    shipped = args.out.with_suffix(".pt")
    shipped.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(weights, shipped)
    report = {
        "recipe": ["python", "models/recipes/finetune_detector_sim.py", *(argv or [])],
        "args": {key: _relative(value) for key, value in vars(args).items()},
        "training_time_s": round(time.time() - started, 1),
    }
    report |= export_and_verify(shipped, [256, 320], args.out)
    report["onnx"] = _relative(args.out)
    report["sim_recall"] = _in_process(sim_recall, args.out, args.recall_views)
    init_onnx = args.init.with_suffix(".onnx")
    report["sim_recall_of_init"] = _in_process(sim_recall, init_onnx, args.recall_views)
    args.out.with_suffix(".training.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
