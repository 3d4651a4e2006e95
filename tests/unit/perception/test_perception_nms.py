"""Class-aware NMS against torchvision's (what Ultralytics runs) on random and crafted boxes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision

from rl_deploy.perception.nms import class_aware_nms, nms_xyxy


def _random_boxes(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    xy = rng.uniform(0, 300, size=(n, 2)).astype(np.float32)
    wh = rng.uniform(2, 120, size=(n, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + wh], axis=1)
    return boxes, rng.uniform(0, 1, size=n).astype(np.float32)


@pytest.mark.parametrize("n", [0, 1, 2, 17, 64, 65, 300, 2000])  # all IoUs at once up to 64
@pytest.mark.parametrize("iou", [0.3, 0.45, 0.7])
def test_same_kept_boxes_as_torchvision(n, iou):
    boxes, scores = _random_boxes(np.random.default_rng(n), n)
    expected = torchvision.ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), iou).numpy()
    np.testing.assert_array_equal(nms_xyxy(boxes, scores, iou), expected)


def test_class_aware_matches_torchvision_batched_and_truncates():
    rng = np.random.default_rng(5)
    boxes, scores = _random_boxes(rng, 800)
    class_ids = rng.integers(0, 5, size=800).astype(np.intp)
    expected = torchvision.ops.batched_nms(
        torch.from_numpy(boxes), torch.from_numpy(scores), torch.from_numpy(class_ids), 0.5
    ).numpy()
    np.testing.assert_array_equal(class_aware_nms(boxes, scores, class_ids, 0.5, 1000), expected)
    np.testing.assert_array_equal(class_aware_nms(boxes, scores, class_ids, 0.5, 7), expected[:7])


def test_overlapping_boxes_of_different_classes_both_survive():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [1, 1, 10, 10]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    class_ids = np.array([0, 1, 0], np.intp)
    assert class_aware_nms(boxes, scores, class_ids, 0.5, 10).tolist() == [0, 1]


def test_iou_exactly_at_threshold_is_kept():
    # IoU of these two is exactly 0.5: only strictly greater overlaps suppress.
    boxes = np.array([[0, 0, 2, 1], [0, 0, 1, 1]], np.float32)
    scores = np.array([0.9, 0.8], np.float32)
    assert nms_xyxy(boxes, scores, 0.5).tolist() == [0, 1]
    assert nms_xyxy(boxes, scores, 0.49).tolist() == [0]


@pytest.mark.parametrize("n", [12, 64, 200])
def test_crowded_boxes_and_a_keep_limit_as_torchvision(n):
    # Boxes jittered around a few centres: most candidates suppress each other, as on a frame.
    rng = np.random.default_rng(n)
    centres = rng.uniform(50, 250, size=(4, 2))[rng.integers(0, 4, n)]
    half = rng.uniform(10, 40, size=(n, 2))
    boxes = np.concatenate([centres - half, centres + half], axis=1).astype(np.float32)
    scores = rng.uniform(0.25, 1, n).astype(np.float32)
    expected = torchvision.ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.7).numpy()
    np.testing.assert_array_equal(nms_xyxy(boxes, scores, 0.7), expected)
    np.testing.assert_array_equal(nms_xyxy(boxes, scores, 0.7, max_keep=2), expected[:2])


def test_ious_within_float32_rounding_of_the_threshold_decide_as_torchvision():
    # Nested box pairs whose IoU lies within a few float32 ulps of 0.7: float64 arithmetic on
    # the same coordinates decides some of them the other way; ours must decide as float32.
    rng = np.random.default_rng(11)
    n = 3000
    x0, y0 = rng.uniform(-20, 600, n), rng.uniform(-20, 400, n)
    width, height = rng.uniform(4, 300, n), rng.uniform(4, 300, n)
    inner = width * 0.7 * (1 + rng.integers(-12, 13, n) * 2.0**-24)
    outer_boxes = np.stack([x0, y0, x0 + width, y0 + height], 1).astype(np.float32)
    inner_boxes = np.stack([x0, y0, x0 + inner, y0 + height], 1).astype(np.float32)
    scores = np.array([0.9, 0.8], np.float32)
    float64_differs = 0
    for outer, nested in zip(outer_boxes, inner_boxes, strict=True):
        boxes = np.stack([outer, nested])
        expected = torchvision.ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.7)
        kept = nms_xyxy(boxes, scores, 0.7)
        np.testing.assert_array_equal(kept, expected.numpy())
        a, b = boxes.astype(np.float64)
        inter = (min(a[2], b[2]) - max(a[0], b[0])) * (min(a[3], b[3]) - max(a[1], b[1]))
        areas = [(box[2] - box[0]) * (box[3] - box[1]) for box in (a, b)]
        suppressed64 = inter / (areas[0] + areas[1] - inter) > np.float32(0.7)
        float64_differs += suppressed64 != (len(kept) == 1)
    assert float64_differs > 0


def test_infinite_and_inverted_boxes_are_decided_as_torchvision_decides_them():
    boxes = np.array(
        [[0, 0, 10, 10], [1, 1, 10, 10], [5, 5, 2, 2], [0, 0, np.inf, 10], [0, 0, 9, 9]],
        np.float32,
    )
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5], np.float32)
    expected = torchvision.ops.nms(torch.from_numpy(boxes), torch.from_numpy(scores), 0.5)
    with np.errstate(invalid="ignore"):  # inf - inf: a NaN IoU, which suppresses nothing
        kept = nms_xyxy(boxes, scores, 0.5)
    np.testing.assert_array_equal(kept, expected.numpy())
