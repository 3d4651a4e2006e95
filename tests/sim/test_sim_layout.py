"""Seeded episode layouts: reproducible, varied, collision-free, target in view at the start."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rl_deploy.errors import ConfigError
from rl_deploy.geometry import Pose2D
from rl_deploy.sim import SceneSpec, parse_scene
from rl_deploy.sim.layout import (
    Circle,
    circle_hits_rect,
    circle_inside_rect,
    furniture_rect,
    in_view,
    object_circle,
    project,
    room_rect,
    sample_layout,
    support_rect,
)
from rl_deploy.sim.spec import FLOOR


def test_same_seed_same_layout(scene: SceneSpec) -> None:
    first, second = sample_layout(scene, 11), sample_layout(scene, 11)
    np.testing.assert_array_equal(first.object_xy, second.object_xy)
    np.testing.assert_array_equal(first.object_rgba, second.object_rgba)
    assert (first.start_pose, first.target_class) == (second.start_pose, second.target_class)


def test_seeds_vary_objects_targets_and_starts(scene: SceneSpec) -> None:
    layouts = [sample_layout(scene, seed) for seed in range(30)]
    assert len({layout.target_class for layout in layouts}) == 3
    assert len({round(layout.start_pose.x, 6) for layout in layouts}) == 30
    spread = np.std([layout.object_xy for layout in layouts], axis=0)
    assert (spread > 0.05).all()


@pytest.mark.parametrize("seed", range(0, 40, 3))
def test_layout_is_valid(scene: SceneSpec, seed: int) -> None:
    layout = sample_layout(scene, seed)
    room = room_rect(scene)
    for index, obj in enumerate(scene.objects):
        circle = object_circle(scene, obj, *layout.object_xy[index])
        if obj.support == FLOOR:
            assert circle_inside_rect(circle, room)
            assert not any(circle_hits_rect(circle, furniture_rect(f)) for f in scene.furniture)
        else:
            assert circle_inside_rect(circle, support_rect(scene.furniture_named(obj.support)))
    start = layout.start_pose
    base = Circle(start.x, start.y, scene.robot.base.radius_m)
    assert circle_inside_rect(base, room)
    assert not any(circle_hits_rect(base, furniture_rect(f)) for f in scene.furniture)
    target = scene.objects[layout.target_index]
    assert target.support in scene.task.target_supports
    assert target.class_name == layout.target_class
    tx, ty = layout.object_xy[layout.target_index]
    tz = scene.support_height_m(target) + scene.object_classes[target.class_name].height_m / 2
    distance = math.hypot(tx - start.x, ty - start.y)
    assert scene.task.start.min_distance_m <= distance <= scene.task.start.max_distance_m
    assert in_view(scene.robot.camera, start, (tx, ty, tz), margin_px=0.0)


def test_projection_of_a_point_straight_ahead(scene: SceneSpec) -> None:
    camera = scene.robot.camera
    base = Pose2D(1.0, -0.5, math.pi / 2)
    # A point on the optical axis projects onto the principal point at its range.
    distance = 2.0
    forward = (math.cos(camera.pitch_rad), -math.sin(camera.pitch_rad))
    x_b = camera.x_m + distance * forward[0]
    z = camera.z_m + distance * forward[1]
    world = base.compose(Pose2D(x_b, 0.0, 0.0))
    u, v, depth = project(camera, base, (world.x, world.y, z))
    _, _, cx, cy = camera.intrinsics(camera.width, camera.height)
    assert (u, v, depth) == pytest.approx((cx, cy, distance))


def test_impossible_start_is_a_config_error(scene_document: dict[str, object]) -> None:
    scene_document["task"]["start"]["distance_m"] = [9.0, 9.5]  # type: ignore[index]
    with pytest.raises(ConfigError, match=r"no start pose found for seed 3"):
        sample_layout(parse_scene(scene_document), 3)
