"""Detector training data rendered by the simulator: RGB frames of the head camera with exact
instance masks, written in Ultralytics' YOLO segmentation layout.

Views follow the task's own distribution: an episode layout per image, the robot somewhere
between its start pose and the target, looking roughly at it, the arm in a random pose. Same
interface and layout as `rl_deploy.tools.detector_train.generate_dataset`, so either can feed
`rl-deploy train-detector`.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import yaml
from tqdm import tqdm

from rl_deploy.errors import ConfigError
from rl_deploy.geometry import Pose2D
from rl_deploy.sim.layout import Circle, robot_clear, sample_layout
from rl_deploy.sim.render import CameraFrame, CameraRenderer
from rl_deploy.sim.scene import load_scene
from rl_deploy.sim.spec import SceneSpec
from rl_deploy.sim.world import SimWorld
from rl_deploy.tools.detector_train import (
    HELD_OUT_SEED_OFFSET,
    clear_dataset_dir,
    mask_to_polygon,
)

DEFAULT_SCENE = Path("config/scenes/example_room.yaml")
MIN_VISIBLE_PX = 30  # at 640x480: smaller slivers are not labelled (nor reliably detectable)
_TRIES = 20
_MAX_YAW_JITTER_RAD = math.radians(15.0)
# Arm poses as the task visits them: lift low to mid, telescope anywhere, wrist near straight.
_ARM_RANGES = ((0.2, 0.9), (0.0, 0.52), (-0.5, 0.5), (0.0, 0.05))


Labels = list[tuple[int, npt.NDArray[np.bool_]]]  # (class index, visible mask)


def instance_labels(scene: SceneSpec, frame: CameraFrame) -> Labels:
    """(class index, visible mask) of every labelled instance in a frame: each object, and each
    furniture class as one instance (the example room has one table and one shelf)."""
    assert frame.instance_u8 is not None and frame.class_u8 is not None
    labels = []
    for index, obj in enumerate(scene.objects):
        mask = frame.instance_u8 == index + 1
        if int(mask.sum()) >= MIN_VISIBLE_PX:
            labels.append((scene.class_id(obj.class_name) - 1, mask))
    object_pixels = frame.instance_u8 > 0
    for kind in sorted({item.kind for item in scene.furniture}):
        mask = (frame.class_u8 == scene.class_id(kind)) & ~object_pixels
        if int(mask.sum()) >= MIN_VISIBLE_PX:
            labels.append((scene.class_id(kind) - 1, mask))
    return labels


def _label_lines(labels: Labels, size: tuple[int, int]) -> str:
    height, width = size
    lines = []
    for class_index, mask in labels:
        polygon = mask_to_polygon(mask)
        if len(polygon) < 3:
            continue
        normalised = np.clip(polygon / np.array([width, height], np.float64), 0.0, 1.0)
        lines.append(f"{class_index} " + " ".join(f"{v:.5f}" for v in normalised.ravel()))
    return "".join(line + "\n" for line in lines)  # no instances: an empty file (background)


def sample_view(scene: SceneSpec, world: SimWorld, seed: int, rng: np.random.Generator) -> None:
    """Lay out episode `seed` and put the robot part-way to the target, arm anywhere."""
    layout = sample_layout(scene, seed)
    world.reset(layout)
    start = layout.start_pose
    target_x, target_y = (float(v) for v in layout.object_xy[layout.target_index])
    pose = start
    for _ in range(_TRIES):
        travelled = float(rng.uniform(0.0, 0.85))
        x = start.x + travelled * (target_x - start.x)
        y = start.y + travelled * (target_y - start.y)
        facing = math.atan2(target_y - y, target_x - x)
        candidate = Pose2D(x, y, facing + float(rng.uniform(-1, 1)) * _MAX_YAW_JITTER_RAD)
        if robot_clear(scene, layout.object_xy, Circle(x, y, scene.robot.base.radius_m)):
            pose = candidate
            break
    arm = [rng.uniform(low, high) for low, high in _ARM_RANGES]
    world.place_robot(pose, arm)


def _write_split(
    scene: SceneSpec,
    root: Path,
    split: str,
    *,
    n_images: int,
    seed: int,
    imgsz: int,
    prefix: str = "",
) -> None:
    images, labels = root / "images" / split, root / "labels" / split
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    camera = scene.robot.camera
    world = SimWorld(scene)
    renderer = CameraRenderer(world.model, scene, camera.width, camera.height)
    rng = np.random.default_rng(seed)
    width = imgsz
    height = round(imgsz * camera.height / camera.width)
    try:
        for index in tqdm(range(n_images), desc=f"{prefix}{split}", unit="img", disable=None):
            sample_view(scene, world, seed + index, rng)
            frame = renderer.render(world.data)
            assert frame.rgb_u8 is not None
            name = f"{prefix}{split}_{index:05d}"
            rgb = cv2.resize(frame.rgb_u8, (width, height), interpolation=cv2.INTER_AREA)
            cv2.imwrite(str(images / f"{name}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
            text = _label_lines(instance_labels(scene, frame), (camera.height, camera.width))
            (labels / f"{name}.txt").write_text(text)
    finally:
        renderer.close()


def generate_dataset(
    out_dir: str | Path,
    n_images: int,
    seed: int,
    imgsz: int,
    val_fraction: float = 0.2,
    *,
    scene_path: str | Path = DEFAULT_SCENE,
) -> Path:
    """Render a YOLO-seg dataset (train and held-out val splits) in the simulator; returns its
    data YAML. `imgsz` is the width of the written frames (the camera's aspect is kept)."""
    scene = load_scene(scene_path)
    root = Path(out_dir)
    clear_dataset_dir(root)
    n_val = max(1, round(n_images * val_fraction))
    _write_split(scene, root, "train", n_images=n_images - n_val, seed=seed, imgsz=imgsz)
    val_seed = seed + HELD_OUT_SEED_OFFSET
    _write_split(scene, root, "val", n_images=n_val, seed=val_seed, imgsz=imgsz)
    data = {
        "path": str(root.resolve()),
        "train": "images/train",
        "val": "images/val",
        "names": dict(enumerate(scene.classes)),
    }
    data_yaml = root / "data.yaml"
    data_yaml.write_text(yaml.safe_dump(data, sort_keys=False))
    return data_yaml


def add_sim_images(
    data_yaml: str | Path,
    n_images: int,
    seed: int,
    imgsz: int,
    val_fraction: float = 0.2,
    *,
    scene_path: str | Path = DEFAULT_SCENE,
) -> Path:
    """Add simulator renders (named sim_*) to an existing YOLO-seg dataset with the same class
    table, e.g. the synthetic one: a detector trained on both works in both worlds."""
    scene = load_scene(scene_path)
    data_yaml = Path(data_yaml)
    data = yaml.safe_load(data_yaml.read_text())
    names = [data["names"][k] for k in sorted(data["names"])]
    if names != list(scene.classes):
        raise ConfigError(f"dataset classes {names} differ from the scene's {list(scene.classes)}")
    root = Path(data["path"])
    n_val = max(1, round(n_images * val_fraction))
    for split, count, split_seed in (
        ("train", n_images - n_val, seed),
        ("val", n_val, seed + HELD_OUT_SEED_OFFSET),
    ):
        _write_split(
            scene, root, split, n_images=count, seed=split_seed, imgsz=imgsz, prefix="sim_"
        )
    return data_yaml


MIN_WIDTH, MAX_WIDTH = 32, 4096  # px of the written frames


def dataset_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="rl-deploy sim-dataset", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "out", type=Path, help="dataset directory: new, empty, or an earlier dataset (replaced)"
    )
    parser.add_argument("--images", type=int, default=400, help="train + val, at least 2")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--imgsz",
        type=int,
        default=320,
        help=f"width of the written frames, {MIN_WIDTH}-{MAX_WIDTH}",
    )
    parser.add_argument("--scene", type=Path, default=DEFAULT_SCENE)
    args = parser.parse_args(argv)
    if args.images < 2:  # one for each split
        raise ConfigError(f"--images must be at least 2, got {args.images}")
    if not MIN_WIDTH <= args.imgsz <= MAX_WIDTH:
        raise ConfigError(f"--imgsz must be in [{MIN_WIDTH}, {MAX_WIDTH}], got {args.imgsz}")
    if args.seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {args.seed}")
    print(generate_dataset(args.out, args.images, args.seed, args.imgsz, scene_path=args.scene))
    return 0
