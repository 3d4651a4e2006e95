"""Mask sources give the policy its masks at the pixels it reads, and whole masks on request."""

from __future__ import annotations

import numpy as np
import pytest
from perception_helpers import frames, shipped_runner

from rl_deploy.depth import DepthImage
from rl_deploy.errors import DecodeError
from rl_deploy.mask_sources import DetectorMasks, SegmentationMasks, TopicMasks
from rl_deploy.perception.masks import class_masks
from rl_deploy.sync import Stamped

DEPTH = DepthImage(np.full((480, 640), 1500, np.uint16))
ROWS, COLS = np.arange(0, 480, 4), np.arange(0, 640, 4)  # example_reach's nearest picks


def test_detector_masks_are_read_at_the_policy_s_pixels_without_a_whole_mask():
    runner = shipped_runner()
    classes = ("cup", "bottle", "bowl")
    source = DetectorMasks("/rgb", runner, classes, tolerance_m=0.0)
    found = 0
    for rgb in frames():
        masks = source.masks({"/rgb": Stamped(rgb, 0, 0)}, DEPTH)
        expected = class_masks(runner.detect(rgb, None, classes), classes)
        for name in classes:
            sampled = masks[name].at(ROWS, COLS)
            assert "whole" not in masks[name].__dict__  # nothing made at camera size
            assert np.array_equal(sampled, expected[name][np.ix_(ROWS, COLS)]), name
            assert np.array_equal(masks[name].whole, expected[name])
            assert np.array_equal(masks[name].at(ROWS, COLS), sampled)  # now from the whole
            found += int(sampled.any())
    assert found > 0, "the frames show some of the target classes"


def test_segmentation_and_topic_masks_read_at_pixels_equal_the_whole_ones():
    class_ids = np.random.default_rng(0).integers(0, 4, (480, 640)).astype(np.uint8)
    segmentation = SegmentationMasks("/seg", {"cup": 1, "bowl": 3})
    masks = segmentation.masks({"/seg": Stamped(class_ids, 0, 0)}, DEPTH)
    for name, class_id in (("cup", 1), ("bowl", 3)):
        whole = (class_ids == class_id).astype(np.uint8)
        assert np.array_equal(masks[name].at(ROWS, COLS), whole[np.ix_(ROWS, COLS)])
        assert np.array_equal(masks[name].whole, whole)
    topics = TopicMasks("/masks", ("cup",))
    mono = (class_ids == 2).astype(np.uint8) * 255
    masks = topics.masks({"/masks/cup": Stamped(mono, 0, 0)}, DEPTH)
    assert np.array_equal(masks["cup"].at(ROWS, COLS), (mono > 0)[np.ix_(ROWS, COLS)])
    assert set(np.unique(masks["cup"].whole)) == {0, 1}


def test_a_topic_mask_of_another_size_is_refused_when_the_set_is_matched():
    topics = TopicMasks("/masks", ("cup",))
    with pytest.raises(DecodeError, match=r"mask cup \(240, 320\) is not aligned"):
        topics.masks({"/masks/cup": Stamped(np.zeros((240, 320), np.uint8), 0, 0)}, DEPTH)
