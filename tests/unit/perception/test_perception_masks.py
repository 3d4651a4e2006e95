"""Mask decoding against Ultralytics' process_mask_native, class-mask unions and depth filtering."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ultralytics.utils.ops import process_mask_native

from rl_deploy.perception.detections import Detections
from rl_deploy.perception.masks import class_masks, decode_masks, depth_filter, proto_content

NAMES = ("cup", "bottle", "bowl", "table", "shelf")


def _detections(frame_hw, proto_hw=(80, 80), n=6, seed=0, depth_m=None) -> Detections:
    rng = np.random.default_rng(seed)
    height, width = frame_hw
    xy = rng.uniform(0, 0.7, size=(n, 2)) * (width, height)
    wh = rng.uniform(0.05, 0.6, size=(n, 2)) * (width, height)
    boxes = np.concatenate([xy, xy + wh], axis=1)
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
    return Detections(
        boxes_xyxy=boxes.astype(np.float32),
        scores=np.sort(rng.uniform(0.3, 1, n))[::-1].astype(np.float32),
        class_ids=rng.integers(0, len(NAMES), n).astype(np.intp),
        mask_coeffs=rng.normal(0, 1, (n, 32)).astype(np.float32),
        protos=rng.normal(0, 1, (32, *proto_hw)).astype(np.float32),
        frame_hw=frame_hw,
        names=NAMES,
        depth_m=depth_m,
    )


def _reference(det: Detections, shape: tuple[int, int]) -> np.ndarray:
    scale = np.array([shape[1] / det.frame_hw[1], shape[0] / det.frame_hw[0]] * 2, np.float32)
    masks = process_mask_native(
        torch.from_numpy(det.protos),
        torch.from_numpy(det.mask_coeffs),
        torch.from_numpy(det.boxes_xyxy * scale),
        shape,
    )
    return masks.numpy() > 0


@pytest.mark.parametrize(
    ("frame_hw", "proto_hw"),
    [
        ((480, 640), (80, 80)),
        ((480, 640), (64, 80)),
        ((333, 517), (80, 80)),
        ((640, 480), (80, 80)),
        ((250, 640), (80, 80)),
        ((720, 1280), (160, 160)),
    ],
)
def test_masks_match_ultralytics_native(frame_hw, proto_hw):
    det = _detections(frame_hw, proto_hw, seed=frame_hw[0])
    ours = decode_masks(det)
    expected = _reference(det, frame_hw)
    assert ours.shape == expected.shape
    assert ours.any()
    # Bilinear weights are computed in float64 here, float32 in torch: only pixels whose logit
    # is within rounding of zero may differ.
    assert np.count_nonzero(ours != expected) <= 1e-5 * ours.size


def test_upsampling_path_is_taken_for_uneven_padding():
    assert proto_content((80, 80), (333, 517)).upsample == 4
    assert proto_content((80, 80), (480, 640)).upsample == 1


def test_subset_and_size_selection():
    det = _detections((480, 640), seed=3)
    full = decode_masks(det)
    np.testing.assert_array_equal(decode_masks(det, [4, 1]), full[[4, 1]])
    small = decode_masks(det, size_hw=(120, 160))
    assert small.shape == (len(det), 120, 160)
    assert np.count_nonzero(small != _reference(det, (120, 160))) <= 1e-5 * small.size


def test_class_masks_are_unions_of_their_instances_only():
    det = _detections((480, 640), seed=11, n=10)
    instance = decode_masks(det)
    masks = class_masks(det, ["cup", "table", "bowl"])
    assert set(masks) == {"cup", "table", "bowl"}
    for name, mask in masks.items():
        assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
        members = det.class_ids == NAMES.index(name)
        expected = instance[members].any(axis=0) if members.any() else np.zeros((480, 640), bool)
        np.testing.assert_array_equal(mask.astype(bool), expected)


def test_class_mask_for_an_absent_class_is_empty():
    det = _detections((480, 640), seed=2, n=1)
    absent = next(name for i, name in enumerate(NAMES) if i != det.class_ids[0])
    assert not class_masks(det, [absent], (120, 160))[absent].any()


def test_depth_filter_keeps_the_median_surface():
    mask = np.zeros((10, 10), bool)
    mask[2:8, 2:8] = True
    depth = np.full((10, 10), 1.0, np.float32)
    depth[2:8, 6:8] = 3.0  # background seen through the mask's right edge
    depth[2, 2] = 0.0  # no reading
    kept = depth_filter(mask, depth, tolerance_m=0.3)
    expected = mask & (depth == 1.0)
    np.testing.assert_array_equal(kept, expected)


def test_depth_filter_without_valid_depth_keeps_the_mask():
    mask = np.ones((4, 4), bool)
    depth = np.full((4, 4), np.nan, np.float32)
    np.testing.assert_array_equal(depth_filter(mask, depth, 0.2), mask)


def test_class_masks_apply_depth_filter_per_instance():
    frame_hw = (480, 640)
    depth = np.full(frame_hw, 2.0, np.float32)
    depth[:, 320:] = 6.0
    det = _detections(frame_hw, seed=4, n=8, depth_m=depth)
    unfiltered = class_masks(det, list(NAMES))
    filtered = class_masks(det, list(NAMES), depth_tolerance_m=0.5)
    instance = decode_masks(det)
    for name in NAMES:
        assert not (filtered[name] & ~unfiltered[name]).any()
    # An instance spanning both depths loses the side that holds fewer of its pixels.
    spanning = [
        i for i in range(len(det)) if instance[i, :, :320].any() and instance[i, :, 320:].any()
    ]
    assert spanning
    assert sum(int(f.sum()) for f in filtered.values()) < sum(
        int(u.sum()) for u in unfiltered.values()
    )


@pytest.mark.parametrize(
    ("frame_hw", "size"), [((480, 640), (480, 640)), ((333, 517), (333, 517)), ((480, 640), None)]
)
def test_masks_read_at_some_pixels_are_the_whole_masks_indexed(frame_hw, size):
    det = _detections(frame_hw, seed=7)
    rng = np.random.default_rng(1)
    height, width = frame_hw
    for _ in range(5):  # grids of the policy's kind (every k-th pixel) and irregular ones
        step = int(rng.integers(1, 6))
        rows = np.arange(int(rng.integers(0, step)), height, step)
        cols = np.unique(rng.integers(0, width, int(rng.integers(1, 200))))
        whole = class_masks(det, list(NAMES), size)
        sampled = class_masks(det, list(NAMES), size, at=(rows, cols))
        for name in NAMES:
            assert sampled[name].shape == (len(rows), len(cols))
            assert np.array_equal(sampled[name], whole[name][np.ix_(rows, cols)]), name


def test_depth_filtered_masks_at_some_pixels_are_filtered_on_the_whole_instance():
    depth = np.random.default_rng(2).uniform(0.5, 4.0, (240, 320)).astype(np.float32)
    det = _detections((240, 320), seed=3, depth_m=depth)
    rows, cols = np.arange(0, 240, 4), np.arange(0, 320, 4)
    whole = class_masks(det, list(NAMES), depth_tolerance_m=0.3)
    sampled = class_masks(det, list(NAMES), depth_tolerance_m=0.3, at=(rows, cols))
    for name in NAMES:
        assert np.array_equal(sampled[name], whole[name][np.ix_(rows, cols)])
