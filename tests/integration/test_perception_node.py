"""perception_node as its own process on real DDS, fed simulator renders in which the shipped
detector finds the episode's target: masks, what vision_msgs' absence leaves out, the overlay,
headers, and garbage frames."""

from __future__ import annotations

import statistics
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import ParameterType, ParameterValue
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from ros_harness import set_parameter, wait_for
from sensor_msgs.msg import CameraInfo, Image
from sim_camera import (
    EVERY_FRAME,
    CameraBag,
    advertised,
    first_message,
    headers,
    image_header,
    rclpy_class,
    statuses,
    values,
)

from rl_deploy import codec
from rl_deploy.codec.typestore import CAMERA_INFO, DETECTION2D_ARRAY, IMAGE, LABEL_INFO

pytestmark = pytest.mark.integration

PERCEPTION_ARGS = ["--params-file", "config/perception_node.yaml"]
MASK_CLASSES = ("cup", "bottle", "bowl")  # target_classes of config/perception_node.yaml
RGB, CAMERA_INFO_TOPIC = "/camera/color/image_raw", "/camera/color/camera_info"
MASKS = "/rl_deploy/masks"
STATUS = "rl_deploy: perception"


def play(start_node, camera_bag: CameraBag, *topics: str):
    """bag_play of the camera bag, looping with live stamps."""
    args = [str(camera_bag.path), "--loop", "--restamp", "--topics", *(topics or (RGB,))]
    return start_node("bag_play", [], args)


def test_masks_per_class_carry_the_rgb_header(start_node, probe, camera_bag):
    for name in MASK_CLASSES:
        probe.listen(f"{MASKS}/{name}", Image)
    probe.listen(RGB, Image, EVERY_FRAME)
    probe.listen("/diagnostics", DiagnosticArray)
    perception = start_node("perception_node", PERCEPTION_ARGS)
    play(start_node, camera_bag, RGB, CAMERA_INFO_TOPIC)
    target = f"{MASKS}/{camera_bag.target_class}"
    wait_for(lambda: probe.messages(target) and probe.messages(RGB), 30, "the target's mask")
    time.sleep(0.5)  # masks of frames sent before the probe's reader matched are through
    window_ns = time.monotonic_ns()
    time.sleep(2.0)
    # Masks are taken before the RGB frames, so every mask's frame is among those received.
    masks = {name: probe.messages(f"{MASKS}/{name}", window_ns) for name in MASK_CLASSES}
    rgb_arrivals = {image_header(m.data): m.monotonic_ns for m in probe.messages(RGB)}
    for name, received in masks.items():
        assert len(received) >= 10, f"{name}: {len(received)} masks in 2 s"
        images = [codec.decode(m.data, IMAGE) for m in received]
        assert {(i.encoding, i.width, i.height) for i in images} == {
            ("mono8", camera_bag.width, camera_bag.height)
        }
        assert {image_header(m.data) for m in received} <= set(rgb_arrivals), name
        assert {camera_bag.frame_id} == {str(i.header.frame_id) for i in images}
        assert all(set(np.unique(codec.image_to_array(i))) <= {0, 255} for i in images)
    target_px = [
        int(np.count_nonzero(codec.image_to_array(codec.decode(m.data, IMAGE))))
        for m in masks[camera_bag.target_class]
    ]
    assert min(target_px) > 0, "the detector finds the target in every frame"
    # Masks of one frame are published together: each frame has all three classes.
    stamps = [{image_header(m.data)[0] for m in received} for received in masks.values()]
    assert len(set.intersection(*stamps)) >= 10
    wait_for(lambda: statuses(probe, STATUS, window_ns), 5, "perception diagnostics")
    report = statuses(probe, STATUS, window_ns)[-1]
    assert report.level == 0, report.message
    assert int(values(report)["instances"]) > 0
    check_vision_outputs(probe, perception, camera_bag)
    assert perception.alive()
    running = [values(s) for s in statuses(probe, STATUS) if int(values(s)["frames"]) > 0]
    step_ms = [float(v["last_step_ms"]) for v in running]
    network_ms = [float(v["last_network_ms"]) for v in running]
    assert running and all(0 < n < s for n, s in zip(network_ms, step_ms, strict=True))
    frame_to_mask_ms = [
        (m.monotonic_ns - rgb_arrivals[image_header(m.data)]) / 1e6
        for m in masks[camera_bag.target_class]
    ]
    print(
        f"perception_node on {camera_bag.width}x{camera_bag.height}: step {step_ms} ms "
        f"(network {network_ms} ms); "
        f"RGB at the probe to mask at the probe, median "
        f"{statistics.median(frame_to_mask_ms):.1f} ms, max {max(frame_to_mask_ms):.1f} ms"
    )


def check_vision_outputs(probe, perception, camera_bag: CameraBag) -> None:
    """Detections and the transient-local label map need vision_msgs, which is not on PyPI:
    without it the node leaves exactly those two outputs off, says so, and runs on."""
    vision = {"/rl_deploy/detections": DETECTION2D_ARRAY, "/rl_deploy/label_info": LABEL_INFO}
    installed = {topic for topic, msgtype in vision.items() if rclpy_class(msgtype)}
    expected = {f"{MASKS}/{name}" for name in MASK_CLASSES} | {"/diagnostics"} | installed
    expected |= {"/rosout", "/parameter_events", "/perception_node/transition_event"}
    assert advertised(probe, "perception_node") == expected, "the overlay is off by default"
    if installed != set(vision):
        assert "these outputs are off" in perception.log()
        assert all(topic in perception.log() for topic in set(vision) - installed)
        return
    # With vision_msgs: a subscriber that joins late still gets the class map (transient
    # local), and the detections of a frame carry its header.
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    probe.listen("/rl_deploy/label_info", rclpy_class(LABEL_INFO), latched)
    label_info = wait_for(lambda: probe.messages("/rl_deploy/label_info"), 10, "the label map")
    labels = codec.decode(label_info[0].data, LABEL_INFO).class_map
    assert camera_bag.target_class in {str(label.class_name) for label in labels}
    probe.listen("/rl_deploy/detections", rclpy_class(DETECTION2D_ARRAY))
    arrays = wait_for(lambda: probe.messages("/rl_deploy/detections"), 10, "detections")
    array = codec.decode(arrays[-1].data, DETECTION2D_ARRAY)
    assert len(array.detections) > 0
    stamp = (codec.stamp_to_ns(array.header.stamp), str(array.header.frame_id))
    assert stamp in headers(probe, RGB)


def test_overlay_only_when_enabled(start_node, probe, camera_bag):
    overlay = "/overlay_run/overlay"
    probe.listen(overlay, Image)
    probe.listen(RGB, Image, EVERY_FRAME)
    overrides = ["-p", "overlay:=true", "-p", f"topics.overlay:={overlay}"]
    start_node("perception_node", [*PERCEPTION_ARGS, *overrides])
    play(start_node, camera_bag, RGB)
    wait_for(lambda: probe.messages(overlay) and probe.messages(RGB), 30, "overlay images")
    time.sleep(0.5)  # overlays of frames sent before the probe's reader matched are through
    since_ns = time.monotonic_ns()
    received = wait_for(lambda: probe.messages(overlay, since_ns)[2:], 10, "more overlays")
    images = [codec.decode(m.data, IMAGE) for m in received]
    assert {(i.encoding, i.width, i.height) for i in images} == {
        ("rgb8", camera_bag.width, camera_bag.height)
    }
    assert {image_header(m.data) for m in received} <= set(headers(probe, RGB))
    # Boxes and masks are drawn on the frame: the overlay differs from the camera's image.
    frame = {image_header(m.data): m.data for m in probe.messages(RGB)}[
        image_header(received[-1].data)
    ]
    camera = codec.image_to_array(codec.decode(frame, IMAGE))
    assert np.any(codec.image_to_array(images[-1]) != camera)


GARBAGE_RGB = ("wrong_encoding", "camera_info_mismatch", "truncated")


def rgb_frame(kind: str, rgb: np.ndarray, stamp_ns: int, frame_id: str) -> bytes:
    """The camera's frame as it should be ("valid"), or broken in one of three ways."""
    height, width = rgb.shape[:2]
    if kind == "wrong_encoding":  # a depth image on the colour topic
        image = codec.array_to_image(
            np.ones((height, width), np.float32), "32FC1", stamp_ns, frame_id
        )
    elif kind == "camera_info_mismatch":  # a consistent image, but not the size camera_info says
        image = codec.array_to_image(rgb[::2, ::2].copy(), "rgb8", stamp_ns, frame_id)
    else:
        image = codec.array_to_image(rgb, "rgb8", stamp_ns, frame_id)
    if kind == "truncated":  # the data is half of what height * step promise
        image.data = image.data[: image.data.size // 2]
    return codec.encode(image, IMAGE)


def test_garbage_frames_give_warn_and_no_masks_and_the_node_lives(start_node, probe, camera_bag):
    target = f"{MASKS}/{camera_bag.target_class}"
    probe.listen(target, Image)
    probe.listen("/diagnostics", DiagnosticArray)
    perception = start_node("perception_node", PERCEPTION_ARGS)
    info = first_message(camera_bag, CAMERA_INFO_TOPIC)
    rgb = codec.image_to_array(first_message(camera_bag, RGB))
    frame_id = camera_bag.frame_id

    def feed(kind: str, seconds: float, until=lambda: False) -> set[int]:
        """Camera info and RGB frames at 15 Hz; the stamps sent."""
        stamps, end = set(), time.monotonic() + seconds
        while time.monotonic() < end and not until():
            stamp_ns = time.time_ns()
            info.header.stamp = codec.ns_to_stamp(stamp_ns)
            camera_info = codec.encode(info, CAMERA_INFO)
            probe.publish(CAMERA_INFO_TOPIC, CameraInfo, camera_info, qos_profile_sensor_data)
            frame = rgb_frame(kind, rgb, stamp_ns, frame_id)
            probe.publish(RGB, Image, frame, qos_profile_sensor_data)
            stamps.add(stamp_ns)
            time.sleep(1 / 15)
        return stamps

    for kind in GARBAGE_RGB:
        valid_ns = time.monotonic_ns()
        feed(
            "valid",
            30,
            until=lambda t0=valid_ns: (
                any(s.level == 0 for s in statuses(probe, STATUS, t0))
                and probe.messages(target, t0)
            ),
        )
        assert probe.messages(target, valid_ns), f"masks before {kind}"
        broken_ns = time.monotonic_ns()
        sent = feed(kind, 1.5)
        # The valid frames before ended on an OK report, so drops counted since are garbage.
        warned = wait_for(
            lambda t0=broken_ns: [s for s in statuses(probe, STATUS, t0) if s.level == 1],
            2,
            f"diagnostics WARN during {kind}",
        )
        assert int(values(warned[-1])[f"dropped {RGB}"]) > 0, values(warned[-1])
        masked = {image_header(m.data)[0] for m in probe.messages(target, broken_ns)}
        assert not masked & sent, f"no masks from {kind} frames"
        assert perception.alive()


def test_unquoted_off_for_a_string_stops_startup_and_says_to_quote_it(start_node, tmp_path):
    # rcl's YAML reads a bare `off` as a boolean; the parameter is the string "auto|on|off".
    params = tmp_path / "perception.yaml"
    params.write_text(
        "perception_node:\n  ros__parameters:\n    detector:\n      io_binding: off\n"
    )
    perception = start_node("perception_node", [*PERCEPTION_ARGS, "--params-file", str(params)])
    perception.process.wait(timeout=30)
    assert perception.process.returncode == 1
    log = perception.log()
    assert "detector.io_binding is a string: quote the value" in log, log
    assert "Traceback" not in log, log


def test_ros_own_parameters_can_be_set_and_ours_are_still_checked(start_node, probe):
    start_node("perception_node", [*PERCEPTION_ARGS, "-p", "ros.autostart:=false"])
    sim_time = ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=True)
    result = set_parameter(probe, "perception_node", "use_sim_time", sim_time)
    assert result.successful, result.reason
    qos = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value="fast:3")
    result = set_parameter(probe, "perception_node", "ros.qos.camera", qos)
    assert not result.successful
    assert "camera" in result.reason
