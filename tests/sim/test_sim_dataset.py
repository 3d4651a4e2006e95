"""Detector training data from the simulator: the YOLO-seg layout, and labels that give back the
rendered instance masks when filled the way Ultralytics' loader fills them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from rl_deploy.cli import main
from rl_deploy.sim import SceneSpec
from rl_deploy.sim.dataset import _label_lines, generate_dataset, instance_labels, sample_view
from rl_deploy.sim.render import CameraRenderer
from rl_deploy.sim.world import SimWorld


def test_dataset_layout_sizes_and_class_table(tmp_path: Path, scene_path: Path, scene: SceneSpec):
    data_yaml = generate_dataset(tmp_path / "ds", 5, seed=3, imgsz=320, scene_path=scene_path)
    data = yaml.safe_load(data_yaml.read_text())
    assert data["names"] == dict(enumerate(scene.classes))
    root = Path(data["path"])
    splits = {split: sorted((root / "images" / split).glob("*.png")) for split in ("train", "val")}
    assert [len(files) for files in splits.values()] == [4, 1]
    labelled_classes = set()
    for split, images in splits.items():
        for image_path in images:
            image = cv2.imread(str(image_path))
            assert image.shape == (240, 320, 3)
            label = root / "labels" / split / f"{image_path.stem}.txt"
            for line in label.read_text().splitlines():
                values = line.split()
                coords = np.array(values[1:], float)
                assert len(coords) >= 6 and len(coords) % 2 == 0
                assert coords.min() >= 0.0 and coords.max() <= 1.0
                labelled_classes.add(int(values[0]))
    assert labelled_classes & {0, 1, 2}  # the views look at targets


def test_labels_fill_back_to_the_instance_masks(scene: SceneSpec):
    world = SimWorld(scene)
    camera = scene.robot.camera
    renderer = CameraRenderer(world.model, scene, camera.width, camera.height)
    rng = np.random.default_rng(0)
    checked = 0
    try:
        for seed in range(6):
            sample_view(scene, world, seed, rng)
            frame = renderer.render(world.data)
            labels = instance_labels(scene, frame)
            lines = _label_lines(labels, (camera.height, camera.width)).splitlines()
            assert len(lines) == len(labels)
            for (class_index, mask), line in zip(labels, lines, strict=True):
                values = line.split()
                assert int(values[0]) == class_index
                polygon = np.array(values[1:], float).reshape(-1, 2)
                pixels = np.round(polygon * [camera.width, camera.height]).astype(np.int32)
                filled = np.zeros(mask.shape, np.uint8)
                cv2.fillPoly(filled, [pixels], 1)
                iou = (filled.astype(bool) & mask).sum() / (filled.astype(bool) | mask).sum()
                assert iou > 0.8, (seed, class_index, iou)
                checked += 1
    finally:
        renderer.close()
    assert checked >= 6


def test_a_directory_that_is_not_a_dataset_is_never_replaced(tmp_path: Path, capsys) -> None:
    mine = tmp_path / "mine"
    (mine / "sub").mkdir(parents=True)
    (mine / "notes.txt").write_text("precious")
    assert main(["sim-dataset", str(mine), "--images", "2", "--imgsz", "32"]) == 2
    err = capsys.readouterr().err
    assert "not a dataset" in err and "notes.txt" in err
    assert (mine / "notes.txt").read_text() == "precious" and (mine / "sub").is_dir()


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--images", "1"), ("--imgsz", "0"), ("--imgsz", "100000"), ("--seed", "-1")],
)
def test_bad_sizes_are_refused_before_anything_is_removed(tmp_path: Path, capsys, flag, value):
    earlier = tmp_path / "ds"
    (earlier / "images").mkdir(parents=True)
    (earlier / "data.yaml").write_text("names: {}\n")
    assert main(["sim-dataset", str(earlier), flag, value]) == 2
    assert flag in capsys.readouterr().err
    assert (earlier / "data.yaml").is_file()  # an earlier dataset stays until the new one can start
