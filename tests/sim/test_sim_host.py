"""The MuJoCo simulator host: CDR sensor outputs at their rates, CDR commands in, determinism."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterator

import numpy as np
import pytest
from transforms3d.quaternions import quat2mat

from rl_deploy.codec import (
    decode,
    depth_to_metres,
    encode,
    float64_multi_array,
    image_to_array,
    intrinsics_from_camera_info,
    joint_positions,
    joint_trajectory,
    pose_from_message,
    stamp_to_ns,
    twist,
)
from rl_deploy.codec.typestore import (
    FLOAT64_MULTI_ARRAY,
    JOINT_TRAJECTORY,
    TWIST,
)
from rl_deploy.command import ArmTarget, BaseVelocity
from rl_deploy.errors import DecodeError
from rl_deploy.io import Output
from rl_deploy.sim import SceneSpec
from rl_deploy.sim.host import HostOptions, MujocoSimHost


@pytest.fixture(scope="module")
def host(scene: SceneSpec) -> Iterator[MujocoSimHost]:
    simulator = MujocoSimHost(scene)
    yield simulator
    simulator.close()


@pytest.fixture(scope="module")
def blind_host(scene: SceneSpec) -> Iterator[MujocoSimHost]:
    """No camera topics: for tests about commands and poses, several times faster."""
    simulator = MujocoSimHost(scene, HostOptions(camera=False))
    yield simulator
    simulator.close()


def _run(host: MujocoSimHost, seconds: float, dt_s: float = 0.02) -> list[Output]:
    outputs: list[Output] = []
    for _ in range(round(seconds / dt_s)):
        outputs.extend(host.step(dt_s))
    return outputs


def _by_topic(outputs: list[Output]) -> dict[str, list[Output]]:
    grouped: dict[str, list[Output]] = defaultdict(list)
    for output in outputs:
        grouped[output.topic].append(output)
    return grouped


def test_sensor_topics_rates_and_contents(host: MujocoSimHost, scene: SceneSpec) -> None:
    host.reset(4)
    outputs = _by_topic(_run(host, 1.0))
    topics, camera = scene.topics, scene.robot.camera
    counts = Counter({topic: len(items) for topic, items in outputs.items()})
    declared = host.output_topics()
    assert set(outputs) | {topics.tf_static} == set(declared)
    assert all(items[0].msgtype == declared[topic] for topic, items in outputs.items())
    # One second holds k*period for k = 0..rate (both ends included).
    assert counts[topics.rgb] == counts[topics.depth] == counts[topics.segmentation] == 16
    assert counts[topics.camera_info] == counts[topics.depth_camera_info] == 16
    assert counts[topics.joint_states] == counts[topics.odom] == 31
    assert counts[topics.pose] == 11
    assert counts[topics.tf] == 31 + 11  # odom->base_link, map->odom
    assert counts[topics.clock] == 50
    rgb = image_to_array(decode(outputs[topics.rgb][-1].data, outputs[topics.rgb][-1].msgtype))
    assert rgb.shape == (480, 640, 3)
    depth_msg = decode(outputs[topics.depth][-1].data, outputs[topics.depth][-1].msgtype)
    assert depth_msg.encoding == camera.depth_encoding == "16UC1"
    depth = depth_to_metres(depth_msg)
    assert depth.shape == (480, 640) and 0.5 < float(np.median(depth[depth > 0])) < 5.0
    seg_msg = decode(
        outputs[topics.segmentation][-1].data, outputs[topics.segmentation][-1].msgtype
    )
    assert seg_msg.encoding == "mono8"
    assert scene.class_id(host.status().target_class) in np.unique(image_to_array(seg_msg))
    info = intrinsics_from_camera_info(
        decode(outputs[topics.camera_info][-1].data, outputs[topics.camera_info][-1].msgtype)
    )
    assert info.frame_id == camera.frame_id == depth_msg.header.frame_id
    assert math.degrees(info.horizontal_fov_rad()) == pytest.approx(42.0, abs=0.1)
    joints = decode(outputs[topics.joint_states][-1].data, outputs[topics.joint_states][-1].msgtype)
    np.testing.assert_allclose(
        joint_positions(joints, ["joint_lift", "joint_arm", "joint_wrist_yaw"]),
        [0.6, 0.0, 0.0],
        atol=1e-3,
    )


def test_stamps_are_sim_time_and_monotonic(blind_host: MujocoSimHost) -> None:
    blind_host.reset(5)
    first_ns = blind_host.now_ns
    outputs = _run(blind_host, 0.5)
    stamps = [stamp_to_ns(decode(o.data, o.msgtype).clock) for o in outputs if o.topic == "/clock"]
    assert stamps == sorted(stamps) and stamps[-1] == first_ns + 500_000_000
    blind_host.reset(6)  # a new episode never moves the clock back
    assert blind_host.now_ns > stamps[-1]


def test_slam_pose_is_late_and_close_to_truth(blind_host: MujocoSimHost, scene: SceneSpec) -> None:
    blind_host.reset(8)
    blind_host.apply_base(BaseVelocity(0.2, 0.0, 0.3))
    outputs = _run(blind_host, 1.0)
    clock_at_publish, pose_msgs = 0, []
    for output in outputs:
        if output.topic == "/clock":
            clock_at_publish = stamp_to_ns(decode(output.data, output.msgtype).clock)
        if output.topic == scene.topics.pose:
            pose_msgs.append((clock_at_publish, decode(output.data, output.msgtype)))
    latency_ns = round(scene.pose_source.latency_s * 1e9)
    for published_before_ns, msg in pose_msgs[3:]:
        stamp = stamp_to_ns(msg.header.stamp)
        # Stamped a latency before the step that published it.
        assert (
            published_before_ns - latency_ns
            <= stamp
            <= published_before_ns + 20_000_000 - latency_ns
        )
        assert msg.header.frame_id == "map"
    estimate = pose_from_message(
        pose_msgs[-1][1], scene.topics.pose and "geometry_msgs/msg/PoseWithCovarianceStamped"
    )
    truth = blind_host.world.base_pose()
    # Within noise + drift + the distance driven during the latency.
    assert math.hypot(estimate.x - truth.x, estimate.y - truth.y) < 0.1


def test_twist_bytes_drive_the_base(blind_host: MujocoSimHost, scene: SceneSpec) -> None:
    blind_host.reset(9)
    start = blind_host.world.base_pose()
    data = encode(twist(BaseVelocity(0.2, 0.0, 0.0)), TWIST)
    for _ in range(50):  # a 50 Hz command stream for 1 s, then a stop
        blind_host.handle(scene.topics.cmd_vel, data)
        blind_host.step(0.02)
    blind_host.handle(scene.topics.cmd_vel, encode(twist(BaseVelocity()), TWIST))
    _run(blind_host, 1.0)
    moved = blind_host.world.base_pose().relative_to(start)
    assert moved.x == pytest.approx(0.2, abs=0.02)
    assert abs(moved.y) < 0.01
    assert blind_host.world.base_twist()[0] == pytest.approx(0.0, abs=1e-3)


def test_silent_command_stream_stops_the_base(blind_host: MujocoSimHost, scene: SceneSpec) -> None:
    blind_host.reset(10)
    start = blind_host.world.base_pose()
    blind_host.apply_base(BaseVelocity(0.3, 0.0, 0.0))  # once, then nothing
    _run(blind_host, 3.0)
    travelled = blind_host.world.base_pose().relative_to(start).x
    timeout = scene.robot.base.cmd_timeout_s
    assert 0.0 < travelled < 0.3 * (timeout + 0.1)


def test_arm_commands_as_trajectory_and_multiarray(
    blind_host: MujocoSimHost, scene: SceneSpec
) -> None:
    blind_host.reset(11)
    target = ArmTarget(("joint_lift", "joint_arm"), np.array([0.7, 0.1]))
    blind_host.handle(
        scene.topics.arm_command,
        encode(joint_trajectory(target, blind_host.now_ns, "", 0), JOINT_TRAJECTORY),
    )
    _run(blind_host, 1.5)
    np.testing.assert_allclose(blind_host.world.joint_positions()[:2], [0.7, 0.1], atol=0.01)
    values = encode(float64_multi_array([0.5, 0.0, 0.4]), FLOAT64_MULTI_ARRAY)
    blind_host.handle(scene.topics.arm_command, values, FLOAT64_MULTI_ARRAY)
    _run(blind_host, 1.5)
    np.testing.assert_allclose(blind_host.world.joint_positions()[:3], [0.5, 0.0, 0.4], atol=0.01)


def test_bad_commands_raise_decode_errors(blind_host: MujocoSimHost, scene: SceneSpec) -> None:
    blind_host.reset(12)
    assert blind_host.command_topics() == {
        scene.topics.cmd_vel: TWIST,
        scene.topics.arm_command: JOINT_TRAJECTORY,
    }
    with pytest.raises(DecodeError, match=r"no commands on '/chatter'"):
        blind_host.handle("/chatter", b"")
    with pytest.raises(DecodeError):
        blind_host.handle(scene.topics.cmd_vel, b"\x00\x01garbage")
    bad = ArmTarget(("joint_elbow",), np.array([0.1]))
    with pytest.raises(DecodeError, match=r"unknown joint.*joint_elbow"):
        blind_host.handle(
            scene.topics.arm_command, encode(joint_trajectory(bad, 0, "", 0), JOINT_TRAJECTORY)
        )


def test_non_finite_commands_are_named_and_stop_the_base(
    blind_host: MujocoSimHost, scene: SceneSpec
) -> None:
    blind_host.reset(13)
    blind_host.handle(scene.topics.cmd_vel, encode(twist(BaseVelocity(0.2)), TWIST))
    _run(blind_host, 0.5)
    with pytest.raises(DecodeError, match=r"base command is not finite.*stopped"):
        blind_host.handle(scene.topics.cmd_vel, encode(twist(BaseVelocity(math.nan)), TWIST))
    _run(blind_host, 0.5)
    assert blind_host.world.base_twist()[0] == pytest.approx(0.0, abs=1e-3)
    held = blind_host.world.joint_positions()[:1].copy()
    nan_lift = ArmTarget(("joint_lift",), np.array([math.nan]))
    with pytest.raises(DecodeError, match=r"arm command is not finite.*joint_lift"):
        blind_host.handle(
            scene.topics.arm_command,
            encode(joint_trajectory(nan_lift, 0, "", 0), JOINT_TRAJECTORY),
        )
    _run(blind_host, 0.5)
    np.testing.assert_allclose(blind_host.world.joint_positions()[:1], held, atol=0.01)


def test_same_seed_same_bytes(scene: SceneSpec) -> None:
    runs = []
    for _ in range(2):
        simulator = MujocoSimHost(scene, HostOptions(rgb=True))
        try:
            simulator.reset(21)
            simulator.apply_base(BaseVelocity(0.25, 0.0, -0.4))
            simulator.apply_arm(ArmTarget(("joint_arm",), np.array([0.3])))
            runs.append([(o.topic, o.data) for o in _run(simulator, 0.4)])
        finally:
            simulator.close()
    assert runs[0] == runs[1]


def test_episode_status_reports_timeout(scene: SceneSpec, blind_host: MujocoSimHost) -> None:
    blind_host.reset(13)
    status = blind_host.status()
    assert not status.done and status.collisions == 0
    assert status.start_distance_m == pytest.approx(
        math.dist(
            blind_host.layout.object_xy[blind_host.layout.target_index],  # type: ignore[union-attr]
            (blind_host.layout.start_pose.x, blind_host.layout.start_pose.y),  # type: ignore[union-attr]
        )
    )
    blind_host._origin_ns -= round(scene.task.max_episode_s * 1e9)  # fast-forward the episode
    assert (
        blind_host.status().timed_out
        and blind_host.status().done
        and not blind_host.status().success
    )


def test_static_camera_transform(blind_host: MujocoSimHost, scene: SceneSpec) -> None:
    (output,) = blind_host.static_outputs()
    transform = decode(output.data, output.msgtype).transforms[0]
    assert transform.header.frame_id == "base_link"
    assert transform.child_frame_id == scene.robot.camera.frame_id
    quaternion = transform.transform.rotation
    # The optical z axis (forward) points ahead and down by the camera pitch.
    optical_z = quat2mat([quaternion.w, quaternion.x, quaternion.y, quaternion.z])[:, 2]
    pitch = scene.robot.camera.pitch_rad
    np.testing.assert_allclose(optical_z, [math.cos(pitch), 0.0, -math.sin(pitch)], atol=1e-9)


def test_depth_noise_and_camera_tilt_faults(scene: SceneSpec, host: MujocoSimHost) -> None:
    host.reset(14)
    host.step(0.01)
    clean = host.last_frame
    assert clean is not None and clean.depth_m is not None
    for options in (
        HostOptions(rgb=False, depth_noise_std_m=0.05),
        HostOptions(rgb=False, camera_pitch_offset_rad=0.1),
    ):
        faulty = MujocoSimHost(scene, options)
        try:
            faulty.reset(14)
            outputs = faulty.step(0.01)
            frame = faulty.last_frame
        finally:
            faulty.close()
        assert frame is not None and frame.depth_m is not None
        both = (frame.depth_m > 0) & (clean.depth_m > 0)
        difference = frame.depth_m[both] - clean.depth_m[both]
        if options.depth_noise_std_m:
            assert np.std(difference) == pytest.approx(0.05, rel=0.1)
        else:
            # Tilted further down, the camera sees the floor nearer: depth shrinks.
            assert np.median(difference) < -0.05
        info = next(o for o in outputs if o.topic == scene.topics.camera_info)
        assert intrinsics_from_camera_info(decode(info.data, info.msgtype)).fx == pytest.approx(
            scene.robot.camera.intrinsics(640, 480)[0]
        )
