"""Gazebo assets: the SDF passes libsdformat (a C++ checker built by `make build/sdf_check`),
holds what the scene says, and the bridge maps Gazebo's topics onto the stack's names."""

from __future__ import annotations

import math
import subprocess
from pathlib import Path

import pytest
import yaml

from rl_deploy.sim import SceneSpec
from rl_deploy.sim.bridge import GZ_TO_ROS, ROS_TO_GZ, bridge_yaml
from rl_deploy.sim.generate import render_assets, write_assets
from rl_deploy.sim.sdf import GZ_TOPICS, scene_to_robot_sdf, scene_to_world_sdf

REPO = Path(__file__).resolve().parents[2]
GENERATED = REPO / "config" / "scenes" / "generated" / "example_room"


@pytest.fixture(scope="module")
def sdf_check() -> Path:
    # make rebuilds only when the checker's source changed; a missing libsdformat fails here.
    subprocess.run(["make", "-s", "build/sdf_check"], cwd=REPO, check=True)
    return REPO / "build" / "sdf_check"


def _check(checker: Path, path: Path) -> tuple[int, list[list[str]], str]:
    result = subprocess.run([str(checker), str(path)], capture_output=True, text=True, check=False)
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    return result.returncode, rows, result.stderr


def test_world_sdf_is_valid_and_complete(sdf_check: Path, scene: SceneSpec, tmp_path: Path) -> None:
    path = tmp_path / "world.sdf"
    path.write_text(scene_to_world_sdf(scene, seed=3), encoding="utf-8")
    code, rows, errors = _check(sdf_check, path)
    assert code == 0, errors
    assert errors == ""  # not even warnings
    models = {row[1]: row for row in rows if row[0] == "model"}
    assert {obj.name for obj in scene.objects} <= set(models)
    assert {item.name for item in scene.furniture} <= set(models)
    assert models[scene.robot.name][2] == "0"  # the robot moves; everything else is static
    labels = {row[1]: row[3] for row in rows if row[0] == "plugin" and "label" in row[2]}
    for obj in scene.objects:
        assert labels[obj.name] == str(scene.class_id(obj.class_name))
    assert labels["table"] == str(scene.class_id("table"))
    world_plugins = {row[2] for row in rows if row[0] == "plugin" and row[1] == scene.name}
    assert {"gz-sim-physics-system", "gz-sim-sensors-system"} <= world_plugins


def test_robot_sdf_has_the_arm_camera_and_systems(
    sdf_check: Path, scene: SceneSpec, tmp_path: Path
) -> None:
    path = tmp_path / "model.sdf"
    path.write_text(scene_to_robot_sdf(scene), encoding="utf-8")
    code, rows, errors = _check(sdf_check, path)
    assert code == 0, errors
    joints = {row[2]: row for row in rows if row[0] == "joint"}
    arm = scene.robot.arm
    for joint, kind in (
        (arm.lift, "prismatic"),
        (arm.extension, "prismatic"),
        (arm.wrist_yaw, "revolute"),
    ):
        assert joints[joint.name][3] == kind
        assert float(joints[joint.name][4]) == pytest.approx(joint.lower)
        assert float(joints[joint.name][5]) == pytest.approx(joint.upper)
    assert {"left_wheel_joint", "right_wheel_joint"} <= set(joints)
    sensors = {row[4]: row for row in rows if row[0] == "sensor"}
    camera = scene.robot.camera
    for kind in ("rgbd_camera", "segmentation_camera"):
        _, _, _, _, _, width, height, hfov, rate = sensors[kind]
        assert (int(width), int(height)) == (camera.width, camera.height)
        assert float(hfov) == pytest.approx(camera.hfov_rad, abs=1e-5)
        assert float(rate) == pytest.approx(camera.rate_hz)
    plugins = {row[2] for row in rows if row[0] == "plugin"}
    assert {
        "gz-sim-diff-drive-system",
        "gz-sim-joint-state-publisher-system",
        "gz-sim-joint-trajectory-controller-system",
    } <= plugins
    assert math.isfinite(float(joints[arm.lift.name][5]))


def test_checker_rejects_a_broken_sdf(sdf_check: Path, scene: SceneSpec, tmp_path: Path) -> None:
    path = tmp_path / "broken.sdf"
    text = scene_to_robot_sdf(scene).replace(
        "<parent>lift_link</parent>", "<parent>nowhere</parent>"
    )
    path.write_text(text, encoding="utf-8")
    code, _, errors = _check(sdf_check, path)
    assert code == 1
    assert "nowhere" in errors


def test_bridge_maps_gazebo_onto_the_stack_topics(scene: SceneSpec) -> None:
    entries = yaml.safe_load(bridge_yaml(scene))
    by_ros = {entry["ros_topic_name"]: entry for entry in entries}
    topics = scene.topics
    for name in (
        "rgb",
        "depth",
        "camera_info",
        "segmentation",
        "joint_states",
        "odom",
        "tf",
        "clock",
    ):
        assert by_ros[getattr(topics, name)]["direction"] == GZ_TO_ROS
    for name in ("cmd_vel", "arm_command"):
        assert by_ros[getattr(topics, name)]["direction"] == ROS_TO_GZ
    assert by_ros[topics.arm_command]["ros_type_name"] == "trajectory_msgs/msg/JointTrajectory"
    assert by_ros[topics.cmd_vel]["gz_type_name"] == "gz.msgs.Twist"
    # Every gz topic is one the generated robot publishes or subscribes to.
    robot_sdf = scene_to_robot_sdf(scene)
    for entry in entries:
        gz_topic = entry["gz_topic_name"].lstrip("/")
        if gz_topic == "clock":
            continue
        base = (
            gz_topic.split("/")[0]
            if gz_topic.split("/")[0] in ("camera", "segmentation")
            else gz_topic
        )
        assert base in GZ_TOPICS.values()
        assert f">{base}<" in robot_sdf, gz_topic


def test_committed_assets_are_up_to_date(scene: SceneSpec) -> None:
    for relative, text in render_assets(scene).items():
        committed = GENERATED / relative
        assert committed.read_text(encoding="utf-8") == text, (
            f"{committed} is stale: python -m rl_deploy.sim.generate "
            "config/scenes/example_room.yaml --out config/scenes/generated/example_room"
        )


def test_generate_writes_every_asset(scene_path: Path, tmp_path: Path) -> None:
    assets = write_assets(scene_path, tmp_path)
    for path in (assets.mjcf, assets.world_sdf, assets.robot_sdf, assets.bridge):
        assert path.stat().st_size > 0
    assert (assets.robot_sdf.parent / "model.config").exists()
