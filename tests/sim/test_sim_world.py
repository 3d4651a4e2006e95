"""MuJoCo physics of the scene: a diff-drive base, servoed arm joints, counted collisions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sim_helpers import hand_layout

from rl_deploy.geometry import Pose2D
from rl_deploy.sim import SceneSpec
from rl_deploy.sim.world import SimWorld

ARM = ("joint_lift", "joint_arm", "joint_wrist_yaw")


@pytest.fixture(scope="module")
def world(scene: SceneSpec) -> SimWorld:
    return SimWorld(scene)


def _steps(world: SimWorld, seconds: float) -> int:
    return round(seconds / world.timestep_s)


def _open_floor(scene: SceneSpec) -> dict[str, tuple[float, float]]:
    """Floor objects pushed into the south-west corner, out of the way."""
    return {
        obj.name: (-2.2 + 0.3 * index, -1.7)
        for index, obj in enumerate(scene.objects)
        if obj.support == "floor"
    }


def test_drive_forward_one_second_at_0_2_mps(world: SimWorld, scene: SceneSpec) -> None:
    start = Pose2D(-1.0, 0.0, 0.3)
    world.reset(hand_layout(scene, start, _open_floor(scene)))
    world.set_base_command(0.2, 0.0)
    world.step(_steps(world, 1.0))
    world.set_base_command(0.0, 0.0)  # the acceleration ramp down mirrors the ramp up
    world.step(_steps(world, 1.0))
    moved = world.base_pose().relative_to(start)
    assert moved.x == pytest.approx(0.2, abs=0.01)
    assert moved.y == pytest.approx(0.0, abs=1e-3)  # no sideways slip
    assert moved.yaw == pytest.approx(0.0, abs=1e-3)


def test_turn_in_place(world: SimWorld, scene: SceneSpec) -> None:
    start = Pose2D(-1.0, 0.0, 0.0)
    world.reset(hand_layout(scene, start, _open_floor(scene)))
    world.set_base_command(0.0, 0.5)
    world.step(_steps(world, 1.0))
    world.set_base_command(0.0, 0.0)
    world.step(_steps(world, 1.0))
    moved = world.base_pose().relative_to(start)
    assert moved.yaw == pytest.approx(0.5, abs=0.01)
    assert math.hypot(moved.x, moved.y) < 1e-3


def test_commands_are_limited_like_the_robot(world: SimWorld, scene: SceneSpec) -> None:
    world.reset(hand_layout(scene, Pose2D(-1.0, 0.0, 0.0), _open_floor(scene)))
    world.set_base_command(5.0, 0.0)  # far over the limit
    world.step(_steps(world, 0.2))
    base = scene.robot.base
    # Still accelerating at the limit after 0.2 s, and never past the top speed later.
    # (the velocity servo trails its ramped setpoint by a few hundredths)
    assert world.base_twist()[0] == pytest.approx(0.2 * base.max_linear_accel_mps2, abs=0.025)
    world.step(_steps(world, 1.5))
    assert world.base_twist()[0] == pytest.approx(base.max_linear_mps, abs=0.01)
    world.set_base_command(math.nan, 0.0)
    world.step(_steps(world, 1.0))
    assert world.base_twist()[0] == pytest.approx(0.0, abs=0.01)


def test_arm_reaches_targets_at_its_speed_limits(world: SimWorld, scene: SceneSpec) -> None:
    world.reset(hand_layout(scene, Pose2D(-1.0, 0.0, 0.0), _open_floor(scene)))
    start = world.joint_positions()[:3].copy()
    target = np.array([0.9, 0.4, 1.0])
    world.set_arm_targets(ARM, target)
    world.step(_steps(world, 0.5))
    arm = scene.robot.arm
    speeds = np.array(
        [arm.lift.max_velocity, arm.extension.max_velocity, arm.wrist_yaw.max_velocity]
    )
    progress = np.abs(world.joint_positions()[:3] - start)
    assert (progress <= speeds * 0.5 + 0.01).all()
    world.step(_steps(world, 3.5))
    np.testing.assert_allclose(world.joint_positions()[:3], target, atol=0.01)
    world.set_arm_targets(("joint_lift",), [5.0])  # clamped to the joint range
    world.step(_steps(world, 2.0))
    assert world.joint_positions()[0] == pytest.approx(arm.lift.upper, abs=0.01)


def test_end_effector_follows_the_arm(world: SimWorld, scene: SceneSpec) -> None:
    start = Pose2D(0.0, 0.0, 0.0)
    world.reset(hand_layout(scene, start, _open_floor(scene)))
    world.set_arm_targets(ARM, [0.5, 0.3, 0.0])
    world.step(_steps(world, 4.0))
    lift, extension, _ = world.joint_positions()[:3]
    arm = scene.robot.arm
    expected = (arm.ee_reach_m + extension, 0.0, lift - arm.ee_drop_m)
    np.testing.assert_allclose(world.ee_position(), expected, atol=0.005)


def test_driving_into_a_wall_counts_one_collision_and_stops(
    world: SimWorld, scene: SceneSpec
) -> None:
    wall_x = scene.room.size_x_m / 2
    world.reset(hand_layout(scene, Pose2D(wall_x - 0.6, -0.8, 0.0), _open_floor(scene)))
    world.set_base_command(0.3, 0.0)
    world.step(_steps(world, 4.0))
    assert world.collisions == 1  # one onset, however long it pushes
    assert world.base_pose().x < wall_x - scene.robot.base.radius_m + 0.02
    world.set_base_command(-0.3, 0.0)  # back off, drive in again: a second collision
    world.step(_steps(world, 2.0))
    world.set_base_command(0.3, 0.0)
    world.step(_steps(world, 3.0))
    assert world.collisions == 2


def _arm_over_floor_object(world: SimWorld, scene: SceneSpec, name: str, extension: float) -> None:
    """Robot 0.5 m behind `name`; the arm goes down to the floor and out by `extension`."""
    placed = {**_open_floor(scene), name: (-0.5, -0.5)}
    if name != "cup_floor":
        placed["cup_floor"] = (1.0, -1.5)
    world.reset(hand_layout(scene, Pose2D(-1.0, -0.5, 0.0), placed))
    world.set_arm_targets(ARM, [0.2, extension, 0.0])
    world.step(_steps(world, 4.0))


def test_reaching_over_the_target_succeeds(world: SimWorld, scene: SceneSpec) -> None:
    _arm_over_floor_object(world, scene, "cup_floor", extension=0.15)
    assert world.target_distance() <= scene.task.success_distance_m


def test_touching_the_target_is_not_a_collision(world: SimWorld, scene: SceneSpec) -> None:
    _arm_over_floor_object(world, scene, "cup_floor", extension=0.3)  # lands on the cup
    assert world.data.ncon > 0
    assert world.collisions == 0


def test_touching_another_object_is_a_collision(world: SimWorld, scene: SceneSpec) -> None:
    _arm_over_floor_object(world, scene, "bottle_floor", extension=0.3)
    assert world.collisions == 1
