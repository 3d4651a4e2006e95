"""Observation builder: hand-computed OVMM preprocessing, history, pose, episode flags."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from policy_helpers import MODELS_DIR, card_dict

from rl_deploy.depth import DepthImage
from rl_deploy.errors import ConfigError, DecodeError, StaleInputError
from rl_deploy.geometry import Pose2D
from rl_deploy.policy import ObservationBuilder, PolicyCard, RawObservation, parse_card
from rl_deploy.policy.image import _halved_while_even, preprocess_depth, preprocess_mask

ZERO_JOINTS = np.zeros(10, np.float32)


def _ovmm_raw(**changes: Any) -> RawObservation:
    fields: dict[str, Any] = {
        "depth_m": np.full((480, 640), 2.0, np.float32),
        "masks": {},
        "joints": ZERO_JOINTS,
        "pose": Pose2D(0.0, 0.0, 0.0),
    }
    fields.update(changes)
    return RawObservation(**fields)


def test_ovmm_depth_640x480_matches_hand_computed(ovmm_card: PolicyCard):
    # 640x480 -> shortest edge 120 gives exactly 160x120: INTER_AREA averages 4x4 blocks.
    depth = np.full((480, 640), 2.0, np.float32)  # 2 m -> 0.2
    depth[0, 0] = np.nan  # block (0, 0): one invalid pixel -> 0
    depth[1, 5] = 0.0  # block (0, 1): zero is invalid
    depth[2, 10] = np.float32(65535) / np.float32(1000)  # block (0, 2): RealSense sentinel
    depth[3, 13] = 25.0  # block (0, 3): beyond 10 m, clipped to 10 m -> 1.0
    depth[0, 19] = np.inf  # block (0, 4): invalid
    depth[4:8, 0:4] = 12.0  # block (1, 0): all beyond range -> 1.0
    depth[4:8, 4:8] = 1.0 + 0.5 * np.arange(16, dtype=np.float32).reshape(4, 4)  # 1..8.5 m
    expected = np.full((120, 160), 0.2, np.float32)
    expected[0, 0:3] = 15 * 0.2 / 16  # = 0.1875
    expected[0, 3] = (15 * 0.2 + 1.0) / 16  # = 0.25
    expected[0, 4] = 15 * 0.2 / 16
    expected[1, 0] = 1.0
    expected[1, 1] = 0.475  # mean of 1..8.5 m = 4.75 m
    feeds = ObservationBuilder(ovmm_card).build(_ovmm_raw(depth_m=depth))
    head_depth = feeds["head_depth"]
    assert head_depth.shape == (1, 1, 120, 160) and head_depth.dtype == np.float32
    np.testing.assert_allclose(head_depth[0, 0], expected, atol=1e-6)


@pytest.mark.parametrize(
    "sentinel",
    [np.float32(65535) / np.float32(1000), np.float32(65535) * np.float32(0.001)],
)
def test_uint16_sentinel_is_invalid_however_it_was_scaled(ovmm_card: PolicyCard, sentinel):
    depth = np.full((480, 640), sentinel, np.float32)
    feeds = ObservationBuilder(ovmm_card).build(_ovmm_raw(depth_m=depth))
    assert not feeds["head_depth"].any()  # all filled with 0, not clipped to 10 m


def test_ovmm_depth_1280x720_is_cropped_at_the_centre(ovmm_card: PolicyCard):
    # 1280x720 -> 213x120 (1280 * 120 // 720), then columns 26..185 are kept ((213-160)//2 = 26).
    rows = np.arange(720)
    depth_of_row = 1.0 + 0.05 * (rows // 6)  # constant over each 6-row band: one output row
    depth = np.repeat(depth_of_row[:, None], 1280, axis=1).astype(np.float32)
    depth[:, :150] = np.nan  # only reaches resized columns < 25: outside the crop
    depth[:, 1130:] = 65.535  # only reaches resized columns >= 188: outside the crop
    expected = np.repeat((0.1 * (1.0 + 0.05 * np.arange(120)))[:, None], 160, axis=1)
    head_depth = ObservationBuilder(ovmm_card).build(_ovmm_raw(depth_m=depth))["head_depth"]
    np.testing.assert_allclose(head_depth[0, 0], expected, atol=1e-6)


def test_masks_share_the_depth_geometry(ovmm_card: PolicyCard):
    small = np.zeros((480, 640), np.uint8)
    small[8, 12] = 255  # sampled by nearest (4x scale): lands at output (2, 3)
    small[9, 13] = 1  # between samples: dropped
    wide = np.zeros((720, 1280), np.uint8)
    # Nearest source column of output x is floor(x * 1280 / 213); the crop starts at x = 26.
    wide[:, 156] = 1  # floor(26 * 6.0094) = 156 -> crop column 0
    wide[:, 162] = 1  # floor(27 * 6.0094) = 162 -> crop column 1
    wide[:, 155] = 1  # no output column samples 155
    builder = ObservationBuilder(ovmm_card)
    seg = builder.build(_ovmm_raw(masks={"object": small}))["ovmm_nav_goal_segmentation"]
    assert seg.shape == (1, 2, 120, 160) and seg.dtype == np.float32
    assert np.argwhere(seg[0, 0]).tolist() == [[2, 3]]
    assert not seg[0, 1].any()  # start_receptacle absent: empty channel
    wide_depth = np.full((720, 1280), 2.0, np.float32)
    seg = builder.build(_ovmm_raw(depth_m=wide_depth, masks={"start_receptacle": wide}))[
        "ovmm_nav_goal_segmentation"
    ]
    expected = np.zeros((120, 160), np.float32)
    expected[:, 0:2] = 1.0
    np.testing.assert_array_equal(seg[0, 1], expected)
    assert not seg[0, 0].any()


def test_target_mask_follows_the_target_class(reach_card: PolicyCard):
    builder = ObservationBuilder(reach_card)
    cup = np.zeros((480, 640), np.uint8)
    cup[100:104, 200:204] = 1
    raw = RawObservation(
        depth_m=np.ones((480, 640), np.float32),
        masks={"cup": cup, "bowl": np.ones((480, 640), np.uint8)},
        joints=np.zeros(3, np.float32),
        pose=Pose2D(0, 0, 0),
        target_class="cup",
    )
    mask = builder.build(raw)["target_mask"]
    assert np.argwhere(mask[0, 0]).tolist() == [[25, 50]]
    with pytest.raises(ConfigError, match="'plate'"):
        builder.build(replace(raw, target_class="plate"))


def test_missing_required_inputs_are_named(reach_card: PolicyCard):
    builder = ObservationBuilder(reach_card)
    with pytest.raises(StaleInputError) as caught:
        builder.build(RawObservation(depth_m=None, joints=np.zeros(3), target_class="cup"))
    message = str(caught.value)
    assert "depth_m (input 'depth')" in message
    assert "pose (input 'pose')" in message
    assert "joints" not in message


def test_bad_sizes_are_decode_errors(ovmm_card: PolicyCard):
    builder = ObservationBuilder(ovmm_card)
    with pytest.raises(DecodeError, match="joints: expected 10 values"):
        builder.build(_ovmm_raw(joints=np.zeros(7)))
    with pytest.raises(DecodeError, match="smaller than the 160x120 crop"):
        builder.build(_ovmm_raw(depth_m=np.ones((640, 480), np.float32)))  # portrait


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_pose_or_joint_is_refused_and_never_becomes_the_start(ovmm_card, bad):
    builder = ObservationBuilder(ovmm_card)
    with pytest.raises(DecodeError, match="pose: not finite"):
        builder.build(_ovmm_raw(pose=Pose2D(0.0, 0.0, bad)))
    assert builder.start_pose is None
    with pytest.raises(DecodeError, match="start pose: not finite"):
        builder.reset(Pose2D(bad, 0.0, 0.0))
    joints = np.zeros(10)
    joints[3] = 1e300  # finite as float64, inf as the policy's float32
    with pytest.raises(DecodeError, match=f"not finite as float32: {{'{ovmm_card.joint_names[3]}'"):
        builder.build(_ovmm_raw(joints=joints))
    feeds = builder.build(_ovmm_raw(pose=Pose2D(1.0, 2.0, 0.5)))  # the first good pose: start
    assert builder.start_pose == Pose2D(1.0, 2.0, 0.5)
    np.testing.assert_allclose(feeds["robot_start_gps"], [[0.0, 0.0]], atol=1e-6)
    with pytest.raises(DecodeError, match=r"from the start .* is not finite as float32"):
        builder.build(_ovmm_raw(pose=Pose2D(1e300, 2.0, 0.5)))  # finite, but 1e300 m away


def test_relative_pose_is_taken_from_the_episode_start(ovmm_card: PolicyCard):
    builder = ObservationBuilder(ovmm_card)
    builder.reset(Pose2D(1.0, 2.0, math.pi / 2))
    feeds = builder.build(_ovmm_raw(pose=Pose2D(1.0, 3.0, math.pi / 2 + 0.5)))
    # One metre along map +y is straight ahead of a start facing +y.
    np.testing.assert_allclose(feeds["robot_start_gps"], [[1.0, 0.0]], atol=1e-6)
    np.testing.assert_allclose(feeds["robot_start_compass"], [[0.5]], atol=1e-6)
    builder.reset(Pose2D(0.0, 0.0, 3.0))
    compass = builder.build(_ovmm_raw(pose=Pose2D(0.0, 0.0, -3.0)))["robot_start_compass"]
    np.testing.assert_allclose(compass, [[2 * math.pi - 6.0]], atol=1e-6)  # wrapped
    builder.reset(None)  # the first pose seen becomes the start
    first = builder.build(_ovmm_raw(pose=Pose2D(5.0, -1.0, 1.0)))
    second = builder.build(_ovmm_raw(pose=Pose2D(5.0, -1.0 + 2.0, 1.0)))
    np.testing.assert_allclose(first["robot_start_gps"], [[0.0, 0.0]], atol=1e-6)
    np.testing.assert_allclose(
        second["robot_start_gps"], [[2 * math.sin(1.0), 2 * math.cos(1.0)]], atol=1e-6
    )


def test_prev_action_and_not_done_across_steps(ovmm_card: PolicyCard):
    builder = ObservationBuilder(ovmm_card)
    first = builder.build(_ovmm_raw())
    assert first["not_done_masks"].tolist() == [[0.0]]
    assert first["prev_actions"].tolist() == [[0.0] * 10]
    builder.record_action(np.arange(10, dtype=np.float32))
    second = builder.build(_ovmm_raw())
    assert second["not_done_masks"].tolist() == [[1.0]]
    assert second["prev_actions"].tolist() == [list(map(float, range(10)))]
    builder.reset()
    third = builder.build(_ovmm_raw())
    assert third["not_done_masks"].tolist() == [[0.0]]
    assert not third["prev_actions"].any()
    with pytest.raises(Exception, match="expected 10 values"):
        builder.record_action(np.zeros(5))


def _vector_card(**joint_input: Any) -> PolicyCard:
    data = card_dict("example_reach")
    data["inputs"][3] = {"name": "joints", "source": "joints", "dtype": "float32", **joint_input}
    return parse_card(data, MODELS_DIR)


def _joint_raw(values: list[float]) -> RawObservation:
    return RawObservation(
        depth_m=np.ones((480, 640), np.float32),
        joints=np.array(values, np.float32),
        pose=Pose2D(0, 0, 0),
        target_class="cup",
    )


def test_history_is_stacked_oldest_first():
    builder = ObservationBuilder(_vector_card(shape=[1, 9], history=3))
    outputs = [
        builder.build(_joint_raw(values))["joints"].tolist()
        for values in ([1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12])
    ]
    assert outputs == [
        [[1, 2, 3, 1, 2, 3, 1, 2, 3]],  # the first frame repeated
        [[1, 2, 3, 1, 2, 3, 4, 5, 6]],
        [[1, 2, 3, 4, 5, 6, 7, 8, 9]],
        [[4, 5, 6, 7, 8, 9, 10, 11, 12]],
    ]
    builder.reset()
    assert builder.build(_joint_raw([0, 0, 1]))["joints"].tolist() == [[0, 0, 1] * 3]


def test_history_zero_fill_and_image_history():
    builder = ObservationBuilder(_vector_card(shape=[1, 6], history=2, history_fill="zeros"))
    assert builder.build(_joint_raw([1, 2, 3]))["joints"].tolist() == [[0, 0, 0, 1, 2, 3]]
    data = card_dict("example_reach")
    data["inputs"][0]["shape"] = [1, 2, 120, 160]
    data["inputs"][0]["history"] = 2
    builder = ObservationBuilder(parse_card(data, MODELS_DIR))
    near = replace(_joint_raw([0, 0, 0]), depth_m=np.full((480, 640), 1.0, np.float32))
    far = replace(near, depth_m=np.full((480, 640), 5.0, np.float32))
    builder.build(near)
    depth = builder.build(far)["depth"]
    assert depth.shape == (1, 2, 120, 160)
    np.testing.assert_allclose(depth[0, :, 0, 0], [0.1, 0.5], atol=1e-6)  # older channel first


def test_normalize_scale_clip_and_joint_subset():
    card = _vector_card(
        shape=[1, 2],
        joints=["joint_wrist_yaw", "joint_lift"],
        scale=[2.0, 1.0],
        normalize=True,
        clip=[-5.0, 5.0],
        statistics={"mean": [1.0, 0.5], "std": [0.5, 0.25], "min": -1.0, "max": 1.0},
    )
    feeds = ObservationBuilder(card).build(_joint_raw([0.7, 0.0, 3.0]))
    # wrist_yaw 3.0 * 2 = 6 -> (6 - 1) / 0.5 = 10 -> clipped to 5; lift (0.7 - 0.5) / 0.25 = 0.8
    np.testing.assert_allclose(feeds["joints"], [[5.0, 0.8]], atol=1e-6)


def test_constant_and_nhwc_layout():
    data = card_dict("example_reach")
    data["inputs"][3] = {
        "name": "joints",
        "source": "constant",
        "shape": [1, 3],
        "dtype": "float32",
        "value": [0.5, -1.0, 2.0],
    }
    data["inputs"][1]["shape"] = [1, 120, 160, 1]
    data["inputs"][1]["layout"] = "NHWC"
    builder = ObservationBuilder(parse_card(data, MODELS_DIR))
    mask = np.zeros((480, 640), np.uint8)
    mask[0, 4] = 1
    raw = replace(_joint_raw([0, 0, 0]), masks={"cup": mask})
    feeds = builder.build(raw)
    assert feeds["joints"].tolist() == [[0.5, -1.0, 2.0]]
    assert feeds["target_mask"].shape == (1, 120, 160, 1)
    assert np.argwhere(feeds["target_mask"][0, :, :, 0]).tolist() == [[0, 1]]


def test_a_failed_build_leaves_the_history_untouched():
    builder = ObservationBuilder(_vector_card(shape=[1, 6], history=2))
    builder.build(_joint_raw([1, 2, 3]))
    bad = replace(_joint_raw([4, 5, 6]), target_class="plate")
    with pytest.raises(ConfigError):
        builder.build(bad)
    assert builder.build(_joint_raw([7, 8, 9]))["joints"].tolist() == [[1, 2, 3, 7, 8, 9]]


def _reach_depth_spec(reach_card: PolicyCard) -> Any:
    (spec,) = [s for s in reach_card.inputs if s.source == "depth"]
    assert spec.depth.invalid_values == (0.0,) and spec.depth.fill_m == 0.0
    return spec


def test_clean_frame_shortcut_gives_the_values_of_fill_clip_scale(reach_card: PolicyCard):
    # example_reach: 0 is invalid and filled with 0, so a frame inside [0, 10] m skips fill and
    # clip; the result must be the full recipe's, bit for bit.
    spec = _reach_depth_spec(reach_card)
    rng = np.random.default_rng(3)
    depth = rng.uniform(0.3, 9.9, (480, 640)).astype(np.float32)
    depth[rng.random((480, 640)) < 0.1] = 0.0  # no reading
    full = np.clip(np.where(depth == 0.0, 0.0, depth), 0.0, 10.0).astype(np.float32)
    full *= np.float32(0.1)
    expected = cv2.resize(full, (160, 120), interpolation=cv2.INTER_AREA)
    assert np.array_equal(preprocess_depth(depth, spec.depth, spec.image), expected)


@pytest.mark.parametrize("bad", [np.nan, np.inf, 12.0, -1.0])
def test_one_pixel_outside_the_shortcut_gets_the_full_recipe(reach_card: PolicyCard, bad):
    spec = _reach_depth_spec(reach_card)
    depth = np.full((480, 640), 2.0, np.float32)
    depth[0, 0] = bad  # NaN and inf are filled with 0; 12 m is clipped to 10; -1 m to 0
    out = preprocess_depth(depth, spec.depth, spec.image)
    corner = {"nan": 0.0, "inf": 0.0, "12.0": 10.0, "-1.0": 0.0}[str(bad)]
    assert out[0, 0] == pytest.approx((15 * 0.2 + corner * 0.1) / 16, abs=1e-6)
    assert np.all(np.isfinite(out)) and out[1, 1] == pytest.approx(0.2)


def _millimetre_frame(seed: int) -> npt.NDArray[np.uint16]:
    rng = np.random.default_rng(seed)
    depth_mm = rng.integers(300, 9900, (480, 640)).astype(np.uint16)
    depth_mm[rng.random((480, 640)) < 0.1] = 0  # no reading
    return depth_mm


@pytest.mark.parametrize("interpolation", ["area", "linear", "nearest"])
def test_millimetres_resized_before_scaling_give_the_metres_recipe(reach_card, interpolation):
    # uint16 frames are resized first and scaled at the output's size: float rounding apart
    # (nearest picks pixels, so it is exact), the values of the recipe on metres.
    spec = _reach_depth_spec(reach_card)
    geometry = replace(spec.image, interpolation=interpolation)
    depth_mm = _millimetre_frame(4)
    from_metres = preprocess_depth(DepthImage(depth_mm).metres, spec.depth, geometry)
    from_mm = preprocess_depth(DepthImage(depth_mm), spec.depth, geometry)
    assert from_mm.dtype == np.float32 and from_mm.shape == (120, 160)
    if interpolation == "nearest":
        assert np.array_equal(from_mm, from_metres)
    np.testing.assert_allclose(from_mm, from_metres, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(
    ("source_hw", "out_hw", "halvings"),
    [((480, 640), (120, 160), 2), ((720, 960), (120, 160), 1), ((480, 640), (160, 160), 0)],
)
def test_area_resize_in_halvings_is_the_one_step_resize_on_whole_millimetres(
    source_hw, out_hw, halvings
):
    rng = np.random.default_rng(6)
    depth_mm = rng.integers(0, 65535, source_hw).astype(np.float32)
    halved = _halved_while_even(depth_mm, *out_hw)
    assert halved.shape == (source_hw[0] >> halvings, source_hw[1] >> halvings)
    resized = cv2.resize(halved, out_hw[::-1], interpolation=cv2.INTER_AREA)
    direct = cv2.resize(depth_mm, out_hw[::-1], interpolation=cv2.INTER_AREA)
    assert np.array_equal(resized, direct)


@pytest.mark.parametrize("change", ["far", "min_above_zero", "fill"])
def test_millimetres_that_fill_or_clip_changes_take_the_metres_recipe(reach_card, change):
    spec = _reach_depth_spec(reach_card)
    depth_mm, depth = _millimetre_frame(5), spec.depth
    if change == "far":
        depth_mm[0, :4] = 12_000  # beyond max_m = 10: clipped
    elif change == "min_above_zero":
        depth = replace(depth, min_m=0.5)  # the zeros are filled with 0, then clipped to 0.5
    else:
        depth = replace(depth, fill_m=3.0)
    expected = preprocess_depth(DepthImage(depth_mm).metres, depth, spec.image)
    assert np.array_equal(preprocess_depth(DepthImage(depth_mm), depth, spec.image), expected)


def test_depth_image_valid_fraction_and_metres():
    depth_mm = np.array([[0, 1, 1000], [1234, 65535, 0]], np.uint16)
    image = DepthImage(depth_mm)
    assert image.millimetres and image.shape == (2, 3)
    assert image.valid_fraction() == pytest.approx(4 / 6)
    assert image.metres is image.metres  # converted once
    np.testing.assert_array_equal(
        image.metres, np.array([[0, 0.001, 1.0], [1.234, 65.535, 0]], np.float32)
    )
    metres = np.array([[0.0, np.nan, 1.5], [np.inf, 2.25, -0.5]], np.float32)
    assert DepthImage(metres).valid_fraction() == pytest.approx(2 / 6)
    assert not DepthImage(metres).millimetres
    # A card's "no reading" value, in either unit: 65535 mm is 65.535 m.
    assert image.valid_fraction((0.0, 65.535)) == pytest.approx(3 / 6)
    assert image.valid_fraction((65.5,)) == pytest.approx(4 / 6)  # no whole millimetre
    saturated = np.array([[65.535, 1.5]], np.float32)
    assert DepthImage(saturated).valid_fraction((65.535,)) == pytest.approx(1 / 2)


class _CountingMask:
    """A SampledMask over an array that remembers which pixels it was asked for."""

    def __init__(self, whole: np.ndarray) -> None:
        self.whole, self.shape, self.asked = whole, whole.shape, 0

    def at(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        self.asked += len(rows) * len(cols)
        return self.whole[np.ix_(rows, cols)]


@pytest.mark.parametrize(
    ("src_hw", "resize"),
    [
        ((480, 640), {"mode": "shortest_edge", "size": 120}),
        ((720, 1280), {"mode": "shortest_edge", "size": 120}),
        ((333, 517), {"mode": "shortest_edge", "size": 120}),
        ((100, 150), {"mode": "shortest_edge", "size": 120}),  # upsampled
        ((480, 640), {"mode": "stretch", "width": 97, "height": 61}),
    ],
)
def test_a_mask_read_at_the_picked_pixels_is_the_resized_mask(reach_card, src_hw, resize):
    spec = next(s for s in reach_card.inputs if s.source == "target_mask")
    geometry = replace(spec.image, **resize)
    if resize["mode"] == "stretch":
        geometry = replace(geometry, size=0, crop="none")
    whole = (np.random.default_rng(6).random(src_hw) < 0.3).astype(np.uint8)
    sampled = _CountingMask(whole)
    expected = preprocess_mask(whole, geometry)
    assert np.array_equal(preprocess_mask(sampled, geometry), expected)
    assert sampled.asked == expected.size  # only the pixels the resize picks
