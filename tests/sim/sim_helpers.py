"""Helpers of the simulation tests: hand-made episode layouts."""

from __future__ import annotations

import numpy as np

from rl_deploy.geometry import Pose2D
from rl_deploy.sim import SceneSpec
from rl_deploy.sim.layout import EpisodeLayout


def hand_layout(
    scene: SceneSpec, start: Pose2D, object_xy: dict[str, tuple[float, float]] | None = None
) -> EpisodeLayout:
    """A layout with objects at their nominal places (or `object_xy`) and a chosen start pose;
    the target is the first object."""
    placed = object_xy or {}
    xy = np.array([placed.get(obj.name, (obj.x_m, obj.y_m)) for obj in scene.objects], dtype=float)
    rgba = np.array([scene.object_classes[obj.class_name].rgba for obj in scene.objects])
    return EpisodeLayout(
        seed=-1,
        object_xy=xy,
        object_yaw=np.zeros(len(scene.objects)),
        object_rgba=rgba,
        target_index=0,
        target_class=scene.objects[0].class_name,
        start_pose=start,
    )
