"""Synthetic scenes and the YOLO-seg dataset written from them (labels must match the pixels)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import yaml

from rl_deploy.perception.synthetic import SCENE_CLASSES, render_scene
from rl_deploy.tools.detector_train import generate_dataset, mask_to_polygon


def _fill(polygon: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    canvas = np.zeros(shape, np.uint8)
    cv2.fillPoly(canvas, [np.round(polygon).astype(np.int32)], 1)
    return canvas.astype(bool)


def test_scenes_are_deterministic_and_masks_disjoint():
    a = render_scene(np.random.default_rng(42), 320, 240)
    b = render_scene(np.random.default_rng(42), 320, 240)
    np.testing.assert_array_equal(a.rgb, b.rgb)
    assert a.rgb.shape == (240, 320, 3) and a.rgb.dtype == np.uint8
    assert len(a.instances) == len(b.instances)
    covered = np.zeros((240, 320), int)
    for instance in a.instances:
        covered += instance.mask
    assert covered.max() <= 1  # a pixel belongs to at most one (visible) instance


def test_every_class_appears_across_scenes():
    rng = np.random.default_rng(0)
    seen = {i.class_id for _ in range(40) for i in render_scene(rng, 320, 240).instances}
    assert seen == set(range(len(SCENE_CLASSES)))


def test_polygon_of_fragmented_mask_covers_all_fragments():
    mask = np.zeros((60, 80), bool)
    mask[5:20, 5:25] = True
    mask[30:50, 40:70] = True
    mask[52:58, 2:10] = True
    filled = _fill(mask_to_polygon(mask), mask.shape)
    union, inter = (filled | mask).sum(), (filled & mask).sum()
    assert inter / union > 0.9  # the bridges themselves rasterise as thin lines
    assert filled[10, 10] and filled[40, 55] and filled[55, 5]


def test_polygon_keeps_holes_under_even_odd_fill():
    mask = np.zeros((60, 60), bool)
    mask[5:55, 5:55] = True
    mask[20:40, 20:40] = False  # e.g. a cup standing in front of a shelf's back panel
    filled = _fill(mask_to_polygon(mask), mask.shape)
    np.testing.assert_array_equal(filled, mask)


def test_empty_mask_gives_no_polygon():
    assert mask_to_polygon(np.zeros((10, 10), bool)).shape == (0, 2)


@pytest.mark.parametrize("imgsz", [160, 320])
def test_dataset_labels_reproduce_instance_masks(tmp_path, imgsz):
    data_yaml = generate_dataset(tmp_path / "ds", n_images=6, seed=3, imgsz=imgsz)
    data = yaml.safe_load(data_yaml.read_text())
    assert data["names"] == dict(enumerate(SCENE_CLASSES))
    images = sorted((tmp_path / "ds" / "images" / "train").glob("*.png"))
    assert len(images) == 5
    assert len(list((tmp_path / "ds" / "images" / "val").glob("*.png"))) == 1
    # The first training image is scene 0 of the training seed: re-render it and compare.
    scene = render_scene(np.random.default_rng(3), imgsz, round(imgsz * 3 / 4))
    stored = cv2.cvtColor(cv2.imread(str(images[0])), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(stored, scene.rgb)
    label = (tmp_path / "ds" / "labels" / "train" / f"{images[0].stem}.txt").read_text()
    lines = [line.split() for line in label.splitlines() if line]
    assert len(lines) == len(scene.instances)
    height, width = scene.rgb.shape[:2]
    for fields, instance in zip(lines, scene.instances, strict=True):
        assert int(fields[0]) == instance.class_id
        points = np.array(fields[1:], float).reshape(-1, 2) * (width, height)
        filled = _fill(points, (height, width))
        iou = (filled & instance.mask).sum() / (filled | instance.mask).sum()
        assert iou > 0.9, iou


@pytest.mark.slow
def test_training_recipe_runs_end_to_end_on_a_tiny_dataset(tmp_path, repo):
    from rl_deploy.tools.detector_train import evaluate, train

    data_yaml = generate_dataset(tmp_path / "ds", n_images=10, seed=1, imgsz=96)
    model_yaml = repo / "models" / "detector" / "yolo11n-seg-narrow.yaml"
    weights = train(
        data_yaml, str(model_yaml), 96, epochs=1, batch=4, workers=0, project=tmp_path, seed=0
    )
    assert weights.is_file()
    scores = evaluate(weights, data_yaml, 96, tmp_path)
    assert set(scores) == {"box_map50_95", "box_map50", "mask_map50_95", "mask_map50"}
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    assert (tmp_path / "val").is_dir()  # Ultralytics' outputs stay in the work directory
