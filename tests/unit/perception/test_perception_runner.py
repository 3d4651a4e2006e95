"""The runner on the shipped detector: parity with Ultralytics, bad frames, NMS-inside exports."""

from __future__ import annotations

import hashlib
import shutil

import cv2
import numpy as np
import onnx
import onnxruntime
import pytest
from perception_helpers import SHIPPED_ONNX, SHIPPED_PT, frames, image_cdr, shipped_runner

from rl_deploy.errors import ConfigError, DecodeError, ModelContractError
from rl_deploy.perception.letterbox import LetterboxBuffer
from rl_deploy.perception.masks import decode_masks
from rl_deploy.perception.runner import load_runner
from rl_deploy.perception.step import PerceptionConfig, PerceptionStep
from rl_deploy.perception.synthetic import render_scene
from rl_deploy.tools.detector_export import (
    Reference,
    compare,
    export_detector,
    sample_frames,
    ultralytics_model,
    ultralytics_reference,
    verify,
)


@pytest.fixture(scope="module")
def ultralytics_onnx():
    return ultralytics_model(SHIPPED_ONNX)


def test_parity_with_ultralytics_on_the_same_onnx(ultralytics_onnx):
    runner = shipped_runner()
    parity = verify(runner, ultralytics_onnx, list(frames()))
    assert parity.theirs > 0  # the frames hold objects the detector finds
    assert parity.ours == parity.theirs == parity.matched
    assert parity.box_iou > 0.999
    assert parity.mask_iou > 0.99


def test_parity_with_ultralytics_pytorch_weights():
    parity = verify(shipped_runner(), ultralytics_model(SHIPPED_PT), list(frames()))
    assert parity.theirs > 0
    assert parity.mask_iou >= 0.95
    assert parity.box_iou >= 0.95


@pytest.mark.parametrize("frame_hw", [(333, 517), (640, 480), (240, 320), (720, 1280)])
def test_parity_on_other_frame_sizes(ultralytics_onnx, frame_hw):
    runner = shipped_runner()
    resized = [cv2.resize(f, frame_hw[::-1], interpolation=cv2.INTER_AREA) for f in frames()[:3]]
    if frame_hw == (640, 480):  # a portrait camera: rotate rather than squash
        resized = [np.ascontiguousarray(np.rot90(f)) for f in frames()[:3]]
    ours = [runner.detect(f) for f in resized]
    theirs = [
        ultralytics_reference(ultralytics_onnx, f, runner.info.imgsz, 0.25, 0.7) for f in resized
    ]
    parity = compare(ours, theirs)
    assert parity.ours == parity.theirs == parity.matched
    assert parity.mask_iou > 0.99


def test_detector_finds_the_scene_objects():
    runner = shipped_runner()
    rng = np.random.default_rng(12345)
    found = total = 0
    for _ in range(12):
        scene = render_scene(rng, 640, 480)
        detections = runner.detect(scene.rgb)
        masks = [detections.class_ids == i.class_id for i in scene.instances]
        decoded = decode_masks(detections)
        for instance, same_class in zip(scene.instances, masks, strict=True):
            if instance.mask.sum() < 400:  # tiny objects are not what this test is about
                continue
            total += 1
            ious = [
                (decoded[k] & instance.mask).sum() / (decoded[k] | instance.mask).sum()
                for k in np.flatnonzero(same_class)
            ]
            found += bool(ious) and max(ious) > 0.5
    assert total > 10
    assert found / total > 0.45  # 0.59 measured when the detector was shipped


@pytest.mark.parametrize("value", [0, 128, 255])
def test_uniform_frames_give_empty_results_without_running_the_network(value):
    frame = np.full((480, 640, 3), value, np.uint8)
    runner = shipped_runner()
    assert not runner.has_contrast(frame)
    detections = runner.detect(frame)
    assert len(detections) == 0
    assert detections.boxes_xyxy.shape == (0, 4)
    assert decode_masks(detections).shape == (0, 480, 640)
    # With the check off the network runs on it and still returns well-formed results.
    unchecked = load_runner(SHIPPED_ONNX, min_contrast=0.0).detect(frame)
    assert np.isfinite(unchecked.boxes_xyxy).all()


def test_dark_but_real_frames_are_still_detected_on():
    dark = (frames()[0] // 12).astype(np.uint8)  # a dim room, not a covered lens
    assert shipped_runner().has_contrast(dark)


def test_noise_frame_gives_well_formed_detections():
    frame = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    detections = shipped_runner().detect(frame)
    assert np.isfinite(detections.boxes_xyxy).all()
    assert (detections.boxes_xyxy[:, 2:] <= (640, 480)).all()


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((480, 640), np.uint8),
        np.zeros((480, 640, 4), np.uint8),
        np.zeros((480, 640, 3), np.float32),
        np.zeros((0, 640, 3), np.uint8),
    ],
)
def test_unusable_arrays_raise_decode_errors(frame):
    with pytest.raises(DecodeError):
        shipped_runner().detect(frame)


def test_depth_must_be_aligned_with_the_frame():
    with pytest.raises(DecodeError, match="aligned"):
        shipped_runner().detect(frames()[0], depth_m=np.ones((240, 320), np.float32))


def test_class_filter_keeps_exactly_that_class():
    runner = shipped_runner()
    for frame in frames():
        everything = runner.detect(frame)
        cups = runner.detect(frame, classes=["cup", "bowl"])
        wanted = np.isin(everything.class_ids, [0, 2])
        np.testing.assert_array_equal(cups.boxes_xyxy, everything.boxes_xyxy[wanted])
    with pytest.raises(ConfigError, match="sofa"):
        runner.detect(frames()[0], classes=["sofa"])


def test_io_binding_path_gives_the_same_result():
    bound = load_runner(SHIPPED_ONNX, io_binding="on")
    plain = shipped_runner()
    for frame in frames()[:2]:
        a, b = bound.detect(frame), plain.detect(frame)
        np.testing.assert_array_equal(a.boxes_xyxy, b.boxes_xyxy)
        np.testing.assert_array_equal(a.protos, b.protos)


def test_workers_that_sleep_between_runs_give_the_same_result():
    sleeping = load_runner(SHIPPED_ONNX, spin_wait=False)
    plain = shipped_runner()
    for runner, expected in ((sleeping, "0"), (plain, "1")):
        options = runner.session.get_session_options()
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == expected
    for frame in frames()[:2]:
        a, b = sleeping.detect(frame), plain.detect(frame)
        np.testing.assert_array_equal(a.boxes_xyxy, b.boxes_xyxy)
        np.testing.assert_array_equal(a.protos, b.protos)


@pytest.mark.slow
def test_export_with_nms_inside_detects_the_same_objects(tmp_path):
    weights = tmp_path / "e2e.pt"
    shutil.copy2(SHIPPED_PT, weights)  # Ultralytics exports beside the weights
    ultralytics_model(weights).export(
        format="onnx", imgsz=[256, 320], nms=True, simplify=True, device="cpu"
    )
    e2e = load_runner(weights.with_suffix(".onnx"))
    assert e2e.info.end2end
    raw = shipped_runner()
    as_reference = []
    for frame in frames():
        d = raw.detect(frame)
        as_reference.append(Reference(d.boxes_xyxy, d.scores, d.class_ids, decode_masks(d)))
    parity = compare([e2e.detect(f) for f in frames()], as_reference)
    assert parity.theirs > 0
    assert parity.mask_iou > 0.95


@pytest.mark.slow
def test_export_command_writes_card_and_verifies(tmp_path):
    before = SHIPPED_ONNX.read_bytes()
    out = export_detector(SHIPPED_PT, [256, 320], tmp_path / "again.onnx")
    assert SHIPPED_ONNX.read_bytes() == before  # the shipped file beside the weights is untouched
    assert out.with_suffix(".yaml").is_file()
    runner = load_runner(out)
    assert runner.info.names == shipped_runner().info.names
    parity = verify(runner, ultralytics_model(out), sample_frames(2))
    assert parity.mask_iou > 0.99


def test_sha256_pin_is_checked_before_loading():
    digest = hashlib.sha256(SHIPPED_ONNX.read_bytes()).hexdigest()
    runner = load_runner(SHIPPED_ONNX, sha256=digest.upper())
    assert runner.names
    with pytest.raises(ModelContractError, match=f"sha256 {digest} does not match .* {'0' * 64}"):
        load_runner(SHIPPED_ONNX, sha256="0" * 64)


def _with_nan_scores(tmp_path, where: np.ndarray) -> str:
    """The shipped network with NaN added to its raw predictions where `where` is true."""
    model = onnx.load(str(SHIPPED_ONNX))
    graph = model.graph
    producer = next(node for node in graph.node if "output0" in node.output)
    producer.output[:] = ["raw0" if name == "output0" else name for name in producer.output]
    broken = np.where(where, np.nan, 0.0).astype(np.float32)[None]
    graph.initializer.append(onnx.numpy_helper.from_array(broken, "broken"))
    graph.node.append(onnx.helper.make_node("Add", ["raw0", "broken"], ["output0"]))
    path = tmp_path / "nan_scores.onnx"
    onnx.save(model, str(path))
    return str(path)


def test_nan_scores_leave_the_other_anchors_detected(tmp_path):
    runner, rng = shipped_runner(), np.random.default_rng(12345)
    for _ in range(12):  # a scene the detector finds something in
        frame = render_scene(rng, 640, 480).rgb
        reference = runner.detect(frame)
        if len(reference):
            break
    assert len(reference) > 0
    plain = onnxruntime.InferenceSession(str(SHIPPED_ONNX), providers=["CPUExecutionProvider"])
    letterbox = LetterboxBuffer()
    letterbox.fill(frame, runner.geometry(frame.shape[:2]))
    predictions = plain.run(["output0"], {"images": letterbox.tensor})[0][0]
    n_classes = len(runner.names)
    quiet = predictions[4 : 4 + n_classes].max(axis=0) < 0.01  # far from every detection
    where = np.zeros(predictions.shape, bool)
    where[4, quiet] = True  # the first class score of each quiet anchor is broken
    broken = load_runner(_with_nan_scores(tmp_path, where)).detect(frame)
    np.testing.assert_array_equal(broken.boxes_xyxy, reference.boxes_xyxy)
    np.testing.assert_array_equal(broken.class_ids, reference.class_ids)
    where[4 : 4 + n_classes] = True  # every score of every anchor: nothing, and no error
    assert len(load_runner(_with_nan_scores(tmp_path, where)).detect(frame)) == 0


def _fails_at_run_time(tmp_path) -> str:
    """The shipped network with its predictions reshaped, at run time, to one anchor more."""
    model = onnx.load(str(SHIPPED_ONNX))
    graph = model.graph
    producer = next(node for node in graph.node if "output0" in node.output)
    producer.output[:] = ["raw0" if name == "output0" else name for name in producer.output]
    graph.initializer.append(onnx.numpy_helper.from_array(np.array([0, 0, 1]), "one_more"))
    graph.node.extend(  # a computed shape: ONNX Runtime cannot refuse it when loading
        [
            onnx.helper.make_node("Shape", ["raw0"], ["raw0_shape"]),
            onnx.helper.make_node("Add", ["raw0_shape", "one_more"], ["bad_shape"]),
            onnx.helper.make_node("Reshape", ["raw0", "bad_shape"], ["output0"]),
        ]
    )
    path = tmp_path / "fails_at_run_time.onnx"
    onnx.save(model, str(path))
    return str(path)


@pytest.mark.parametrize("io_binding", ["off", "on"])
def test_a_failing_session_run_is_a_contract_error(tmp_path, io_binding):
    runner = load_runner(_fails_at_run_time(tmp_path), io_binding=io_binding)
    with pytest.raises(
        ModelContractError, match=r"fails_at_run_time\.onnx: inference failed: .*Reshape"
    ):
        runner.detect(frames()[0])
    step = PerceptionStep(PerceptionConfig(), runner=runner)  # the node drops the frame
    rgb_topic = step.config.topics.rgb
    assert step.feed(rgb_topic, image_cdr(frames()[0], "rgb8", 1), 0) == []
    assert step.stats.dropped == {rgb_topic: 1}
