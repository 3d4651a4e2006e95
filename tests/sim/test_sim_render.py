"""Real headless MuJoCo rendering: the model, image sizes, masks where objects are, metric depth."""

from __future__ import annotations

import math
from collections.abc import Iterator

import mujoco
import numpy as np
import pytest
from sim_helpers import hand_layout

from rl_deploy.geometry import Pose2D
from rl_deploy.sim import SceneSpec
from rl_deploy.sim.layout import project, sample_layout
from rl_deploy.sim.mjcf import OBJECT_PREFIX, scene_to_mjcf
from rl_deploy.sim.render import CameraRenderer
from rl_deploy.sim.world import SimWorld


@pytest.fixture(scope="module")
def world(scene: SceneSpec) -> SimWorld:
    return SimWorld(scene)


@pytest.fixture(scope="module")
def full_res(world: SimWorld, scene: SceneSpec) -> Iterator[CameraRenderer]:
    renderer = CameraRenderer(world.model, scene, 640, 480)
    yield renderer
    renderer.close()


def test_mjcf_loads_with_the_scene_contents(scene: SceneSpec) -> None:
    model = mujoco.MjModel.from_xml_string(scene_to_mjcf(scene))
    for obj in scene.objects:
        assert model.body(OBJECT_PREFIX + obj.name).mocapid[0] >= 0
    for joint in scene.robot.arm.joints:
        assert model.joint(joint.name).range.tolist() == [joint.lower, joint.upper]
    camera = model.camera(scene.robot.camera.name)
    assert camera.fovy[0] == pytest.approx(math.degrees(scene.robot.camera.vfov_rad))
    assert model.vis.quality.shadowsize == 0


def test_renders_expected_sizes_and_types(world: SimWorld, scene: SceneSpec) -> None:
    world.reset(sample_layout(scene, 0))
    for width, height in ((640, 480), (160, 120)):
        renderer = CameraRenderer(world.model, scene, width, height)
        try:
            frame = renderer.render(world.data)
        finally:
            renderer.close()
        assert frame.rgb_u8 is not None and frame.depth_m is not None
        assert frame.class_u8 is not None and frame.instance_u8 is not None
        assert frame.rgb_u8.shape == (height, width, 3) and frame.rgb_u8.dtype == np.uint8
        assert frame.depth_m.shape == (height, width) and frame.depth_m.dtype == np.float32
        assert frame.class_u8.shape == frame.instance_u8.shape == (height, width)
        assert frame.rgb_u8.std() > 5  # a lit scene, not a blank buffer


@pytest.mark.parametrize("seed", [0, 1, 2, 5])
def test_masks_match_object_placement(
    world: SimWorld, scene: SceneSpec, full_res: CameraRenderer, seed: int
) -> None:
    layout = sample_layout(scene, seed)
    world.reset(layout)
    frame = full_res.render(world.data, rgb=False)
    assert frame.class_u8 is not None and frame.instance_u8 is not None
    camera = scene.robot.camera
    fx = camera.intrinsics(camera.width, camera.height)[0]
    centres = world.object_centres()
    visible = 0
    for index, obj in enumerate(scene.objects):
        u, v, depth = project(camera, layout.start_pose, tuple(centres[index]))
        pixels = frame.instance_u8 == index + 1
        shape = scene.object_classes[obj.class_name]
        reach_px = fx * max(shape.radius_m * 1.6, shape.height_m) / max(depth, 0.1) + 2
        far_out = depth <= 0 or not (
            -reach_px < u < camera.width + reach_px and -reach_px < v < camera.height + reach_px
        )
        if far_out:
            assert not pixels.any(), f"{obj.name} is out of view but labelled"
            continue
        if index == layout.target_index:  # the start pose guarantees it is seen
            assert frame.instance_u8[round(v), round(u)] == index + 1
        if pixels.any():
            visible += 1
            rows, cols = np.nonzero(pixels)
            if 0 <= u < camera.width and 0 <= v < camera.height:
                # The labelled blob surrounds the projected centre.
                assert rows.min() - 2 <= v <= rows.max() + 2
                assert cols.min() - 2 <= u <= cols.max() + 2
            assert set(np.unique(frame.class_u8[pixels])) == {scene.class_id(obj.class_name)}
    assert visible >= 1
    labelled = set(np.unique(frame.class_u8)) - {0}
    assert scene.class_id(layout.target_class) in labelled


def test_depth_is_metric_on_known_geometry(
    world: SimWorld, scene: SceneSpec, full_res: CameraRenderer
) -> None:
    # Robot at the origin facing +x; every object moved behind it: the camera sees only the
    # floor and the east wall, whose depth follows from the camera pose alone.
    behind = {
        obj.name: (-0.6 - 0.3 * i, 0.0)
        for i, obj in enumerate(scene.objects)
        if obj.support == "floor"
    }
    world.reset(hand_layout(scene, Pose2D(0.0, 0.0, 0.0), behind))
    frame = full_res.render(world.data, rgb=False)
    assert frame.depth_m is not None and frame.class_u8 is not None
    camera = scene.robot.camera
    _, fy, cx, cy = camera.intrinsics(camera.width, camera.height)
    wall_x = scene.room.size_x_m / 2 - camera.x_m  # horizontal distance camera -> wall face
    checked = 0
    for row in range(0, camera.height, 20):
        column = round(cx)
        below_axis = math.atan2(row - cy, fy)  # ray angle below the optical axis
        down = camera.pitch_rad + below_axis  # ray angle below the horizon
        floor_range = camera.z_m / math.tan(down) if down > 0 else math.inf
        hits_floor = floor_range < wall_x
        along_ray = camera.z_m / math.sin(down) if hits_floor else wall_x / math.cos(down)
        expected = along_ray * math.cos(below_axis)  # z-depth, as depth images hold it
        assert frame.depth_m[row, column] == pytest.approx(expected, rel=0.01), row
        checked += 1
    assert checked == camera.height // 20
    assert (frame.class_u8 == 0).all()
