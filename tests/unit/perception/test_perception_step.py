"""The perception step: CDR frames in, masks and vision_msgs out, bad input dropped not raised."""

from __future__ import annotations

import numpy as np
import pytest
from perception_helpers import frames, image_cdr, shipped_runner

from rl_deploy import codec
from rl_deploy.codec.typestore import CAMERA_INFO, DETECTION2D_ARRAY, IMAGE, LABEL_INFO
from rl_deploy.errors import ConfigError
from rl_deploy.io import mask_topic
from rl_deploy.perception.masks import class_masks
from rl_deploy.perception.step import (
    STEP_STAGES,
    PerceptionConfig,
    PerceptionStep,
    PerceptionTopics,
)
from rl_deploy.perception.synthetic import SCENE_CLASSES

TOPICS = PerceptionTopics()
STAMP_NS = 1_700_000_000_123_456_789


def _step(**overrides) -> PerceptionStep:
    config = PerceptionConfig(**{"mask_size": (120, 160), **overrides})
    return PerceptionStep(config, runner=shipped_runner())


def _busy_frame() -> np.ndarray:
    """A held-out frame in which the detector finds several instances."""
    return max(frames(), key=lambda f: len(shipped_runner().detect(f)))


def _camera_info(
    width: int, height: int, binning: int = 0, roi_hw: tuple[int, int] = (0, 0)
) -> bytes:
    msg = codec.message_class(CAMERA_INFO)(
        header=codec.make_header(STAMP_NS, "camera"),
        height=height,
        width=width,
        distortion_model="plumb_bob",
        d=np.zeros(5),
        k=np.array([500.0, 0, width / 2, 0, 500.0, height / 2, 0, 0, 1]),
        r=np.eye(3).ravel(),
        p=np.array([500.0, 0, width / 2, 0, 0, 500.0, height / 2, 0, 0, 0, 1, 0]),
        binning_x=binning,
        binning_y=binning,
        roi=codec.message_class("sensor_msgs/msg/RegionOfInterest")(
            x_offset=0, y_offset=0, height=roi_hw[0], width=roi_hw[1], do_rectify=False
        ),
    )
    return codec.encode(msg, CAMERA_INFO)


def mask_images(outputs) -> dict[str, np.ndarray]:
    """Class name → published mask image, in the order published."""
    prefix = f"{TOPICS.masks}/"
    return {
        o.topic.removeprefix(prefix): codec.image_to_array(codec.decode(o.data, IMAGE))
        for o in outputs
        if o.topic.startswith(prefix)
    }


def test_frame_gives_detections_and_one_mask_per_class_with_the_frame_header():
    step = _step()
    frame = _busy_frame()
    outputs = step.feed(TOPICS.rgb, image_cdr(frame, "rgb8", STAMP_NS, "head_camera"), 0)
    by_topic = {o.topic: o for o in outputs}
    # The policy's input, the masks, leave first.
    assert [o.topic for o in outputs] == [f"{TOPICS.masks}/{n}" for n in SCENE_CLASSES] + [
        TOPICS.detections
    ]
    expected = shipped_runner().detect(frame)
    array = codec.decode(by_topic[TOPICS.detections].data, DETECTION2D_ARRAY)
    assert codec.stamp_to_ns(array.header.stamp) == STAMP_NS
    assert array.header.frame_id == "head_camera"
    assert len(array.detections) == len(expected) > 0
    for det, box, cls, score in zip(
        array.detections, expected.boxes_xyxy, expected.class_ids, expected.scores, strict=True
    ):
        assert det.results[0].hypothesis.class_id == SCENE_CLASSES[cls]
        assert det.results[0].hypothesis.score == pytest.approx(float(score))
        assert det.bbox.center.position.x == pytest.approx((box[0] + box[2]) / 2)
        assert det.bbox.size_y == pytest.approx(box[3] - box[1])
        assert codec.stamp_to_ns(det.header.stamp) == STAMP_NS
    wanted = class_masks(expected, SCENE_CLASSES, (120, 160))
    for name in SCENE_CLASSES:
        output = by_topic[f"{TOPICS.masks}/{name}"]
        assert output.msgtype == IMAGE
        image = codec.decode(output.data, IMAGE)
        assert (image.encoding, image.height, image.width) == ("mono8", 120, 160)
        assert codec.stamp_to_ns(image.header.stamp) == STAMP_NS
        np.testing.assert_array_equal(codec.image_to_array(image), wanted[name] * 255)
    assert any(wanted[name].any() for name in SCENE_CLASSES)


@pytest.mark.parametrize("encoding", ["bgr8", "rgba8", "bgra8"])
def test_colour_encodings_give_the_same_outputs_as_rgb8(encoding):
    step = _step()
    frame = _busy_frame()
    reference = step.feed(TOPICS.rgb, image_cdr(frame, "rgb8", STAMP_NS), 0)
    other = step.feed(TOPICS.rgb, image_cdr(frame, encoding, STAMP_NS), 0)
    assert [o.data for o in other] == [o.data for o in reference]


def test_mono_frames_are_detected_on_without_error():
    step = _step()
    outputs = step.feed(TOPICS.rgb, image_cdr(_busy_frame(), "mono8", STAMP_NS), 0)
    assert len(outputs) == 1 + len(SCENE_CLASSES)
    assert step.stats.frames == 1 and not step.stats.dropped


def test_stats_split_the_step_time_into_its_stages():
    step = _step()
    step.feed(TOPICS.rgb, image_cdr(_busy_frame(), "rgb8", STAMP_NS), 0)
    stages = step.stats.last_stage_ms
    assert tuple(stages) == STEP_STAGES
    assert all(ms > 0 for ms in stages.values())
    assert sum(stages.values()) <= step.stats.last_step_ms
    step.feed(TOPICS.rgb, image_cdr(np.zeros((480, 640, 3), np.uint8), "rgb8", STAMP_NS), 0)
    stages = step.stats.last_stage_ms  # no scene: no network run, nothing to postprocess
    assert stages["network"] == stages["postprocess"] == 0 < stages["preprocess"]


def test_default_masks_are_at_camera_resolution():
    step = PerceptionStep(PerceptionConfig(target_classes=("cup",)), runner=shipped_runner())
    outputs = step.feed(TOPICS.rgb, image_cdr(_busy_frame(), "rgb8", STAMP_NS), 0)
    mask = codec.decode(outputs[0].data, IMAGE)
    assert outputs[0].topic == f"{TOPICS.masks}/cup"
    assert (mask.height, mask.width) == (480, 640)


def test_unusable_messages_are_dropped_and_counted():
    step = _step()
    depth_like = codec.encode(
        codec.array_to_image(np.zeros((480, 640), np.uint16), "16UC1", STAMP_NS, "c"), IMAGE
    )
    assert step.feed(TOPICS.rgb, depth_like, 0) == []
    assert step.feed(TOPICS.rgb, b"\x00\x01\x00\x00garbage", 0) == []
    assert step.feed(TOPICS.depth, b"\x00\x01", 0) == []
    assert step.stats.dropped == {TOPICS.rgb: 2, TOPICS.depth: 1}
    assert step.stats.frames == 0


def test_frame_size_must_match_camera_info():
    step = _step()
    step.feed(TOPICS.camera_info, _camera_info(1280, 720), 0)
    assert step.feed(TOPICS.rgb, image_cdr(_busy_frame(), "rgb8", STAMP_NS), 0) == []
    assert step.stats.dropped == {TOPICS.rgb: 1}
    step.feed(TOPICS.camera_info, _camera_info(640, 480), 0)
    assert len(step.feed(TOPICS.rgb, image_cdr(_busy_frame(), "rgb8", STAMP_NS), 0)) == 6


@pytest.mark.parametrize(
    "info",
    [
        {"width": 1280, "height": 960, "binning": 2},  # calibrated at full size, sent binned
        {"width": 1920, "height": 1080, "roi_hw": (480, 640)},  # a region of interest
        {"width": 0, "height": 0},  # no size given: nothing to check against
    ],
)
def test_camera_info_gives_the_image_size_with_binning_and_roi(info):
    step = _step()
    step.feed(TOPICS.camera_info, _camera_info(**info), 0)
    assert len(step.feed(TOPICS.rgb, image_cdr(_busy_frame(), "rgb8", STAMP_NS), 0)) == 6
    assert step.stats.dropped == {}


def test_black_frame_publishes_empty_results():
    step = _step()
    black = np.zeros((480, 640, 3), np.uint8)
    outputs = step.feed(TOPICS.rgb, image_cdr(black, "rgb8", STAMP_NS), 0)
    array = codec.decode(outputs[-1].data, DETECTION2D_ARRAY)
    assert len(array.detections) == 0
    assert all(not codec.image_to_array(codec.decode(o.data, IMAGE)).any() for o in outputs[:-1])


def test_label_info_carries_the_class_map():
    step = _step()
    output = step.label_info(STAMP_NS, "camera")
    assert output.topic == TOPICS.label_info and output.msgtype == LABEL_INFO
    info = codec.decode(output.data, LABEL_INFO)
    assert [(c.class_id, c.class_name) for c in info.class_map] == list(enumerate(SCENE_CLASSES))
    assert info.threshold == pytest.approx(0.25)


def test_overlay_only_when_enabled():
    frame = _busy_frame()
    plain = _step().feed(TOPICS.rgb, image_cdr(frame, "rgb8", STAMP_NS), 0)
    assert TOPICS.overlay not in {o.topic for o in plain}
    step = _step(overlay=True)
    assert step.output_types()[TOPICS.overlay] == IMAGE
    outputs = {o.topic: o for o in step.feed(TOPICS.rgb, image_cdr(frame, "rgb8", STAMP_NS), 0)}
    overlay = codec.decode(outputs[TOPICS.overlay].data, IMAGE)
    assert (overlay.encoding, overlay.height, overlay.width) == ("rgb8", 480, 640)
    pixels = codec.image_to_array(overlay)
    assert (pixels != frame).any(axis=2).mean() > 0.001


def test_depth_filtering_uses_the_paired_depth_frame():
    frame = _busy_frame()
    detections = shipped_runner().detect(frame)
    # Two surfaces: every instance that spans the middle column loses the far side.
    depth = np.full((480, 640), 1000, np.uint16)
    depth[:, 320:] = 4000
    depth_cdr = codec.encode(codec.array_to_image(depth, "16UC1", STAMP_NS, "camera"), IMAGE)
    step = _step(depth_tolerance_m=0.3, mask_size=(0, 0))
    step.feed(TOPICS.depth, depth_cdr, 0)
    filtered = step.feed(TOPICS.rgb, image_cdr(frame, "rgb8", STAMP_NS), 0)
    unfiltered = class_masks(detections, SCENE_CLASSES)
    total_filtered = total_unfiltered = 0
    published = mask_images(filtered)
    assert list(published) == list(SCENE_CLASSES)
    for name, image in published.items():
        mask = image > 0
        assert not (mask & ~unfiltered[name].astype(bool)).any()
        total_filtered += int(mask.sum())
        total_unfiltered += int(unfiltered[name].sum())
    assert total_filtered < total_unfiltered
    # A depth frame from another moment is not used.
    late = _step(depth_tolerance_m=0.3, mask_size=(0, 0))
    late.feed(TOPICS.depth, depth_cdr, 0)
    outputs = late.feed(TOPICS.rgb, image_cdr(frame, "rgb8", STAMP_NS + 10**9), 0)
    total_late = sum(int((image > 0).sum()) for image in mask_images(outputs).values())
    assert total_late == total_unfiltered


def test_direct_calls_match_the_published_masks():
    step = _step()
    frame = _busy_frame()
    outputs = step.feed(TOPICS.rgb, image_cdr(frame, "rgb8", STAMP_NS), 0)
    masks = step.class_masks(step.detect(frame, None), SCENE_CLASSES, (120, 160))
    published = mask_images(outputs)
    assert list(published) == list(SCENE_CLASSES)
    for name, image in published.items():
        np.testing.assert_array_equal(image, masks[name] * 255)


def test_configuration_errors_name_the_bad_value():
    with pytest.raises(ConfigError, match="sofa"):
        PerceptionStep(PerceptionConfig(target_classes=("sofa",)), runner=shipped_runner())
    with pytest.raises(ConfigError, match="mask_size"):
        PerceptionStep(PerceptionConfig(mask_size=(120, 0)), runner=shipped_runner())
    for tolerance in (-0.1, float("nan")):  # either would blank every mask without a word
        with pytest.raises(ConfigError, match="depth_tolerance_m"):
            PerceptionStep(PerceptionConfig(depth_tolerance_m=tolerance), runner=shipped_runner())


def test_class_names_become_valid_topic_names():
    from rclpy.validate_full_topic_name import validate_full_topic_name

    for name, segment in [
        ("cup", "cup"),
        ("dining table", "dining_table"),
        ("3d-print", "_3d_print"),
    ]:
        topic = mask_topic("/rl_deploy/masks", name)
        assert topic == f"/rl_deploy/masks/{segment}"
        validate_full_topic_name(topic)  # raises on a name rclpy refuses


@pytest.mark.parametrize(
    ("size", "shown"),
    [
        ((480,), r"\(480,\)"),
        ([480], r"\[480\]"),
        ((), r"\(\)"),
        ((1, 2, 3), r"\(1, 2, 3\)"),
        ((120.5, 160), r"\(120.5, 160\)"),
        ((True, 160), r"\(True, 160\)"),
        (480, "480"),
    ],
)
def test_mask_size_must_be_two_ints(size, shown):
    with pytest.raises(ConfigError, match=rf"mask_size must be .*, got {shown}"):
        PerceptionStep(PerceptionConfig(mask_size=size), runner=shipped_runner())
