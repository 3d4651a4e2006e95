"""A scripted reach controller on ground truth, speaking the example policy's action contract.

It shows the task is solvable through the fixed action scaling, gives a reference success rate
and episode length, and can seed imitation or debug a training run.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from rl_deploy.sim.train_env import ACTION_OFFSET, ACTION_SCALE
from rl_deploy.sim.world import SimWorld

_TURN_GAIN = 2.0  # rad/s per rad of bearing error
_DRIVE_GAIN = 1.0  # m/s per m of distance still to cover
_ALIGNED_RAD = 0.12  # drive only when roughly facing the target


def expert_action(world: SimWorld) -> npt.NDArray[np.float64]:
    """The (5,) action in [-1, 1] that steers the end effector towards the nearest target."""
    layout = world.layout
    if layout is None:
        raise RuntimeError("reset the world before asking the expert")
    scene = world.scene
    arm = scene.robot.arm
    centres = world.object_centres()
    candidates = [k for k, obj in enumerate(scene.objects) if obj.class_name == layout.target_class]
    base = world.base_pose()
    nearest = min(candidates, key=lambda k: math.dist(centres[k][:2], (base.x, base.y)))
    target = centres[nearest]
    dx_w, dy_w = target[0] - base.x, target[1] - base.y
    ahead = math.cos(base.yaw) * dx_w + math.sin(base.yaw) * dy_w
    left = -math.sin(base.yaw) * dx_w + math.cos(base.yaw) * dy_w
    bearing = math.atan2(left, ahead)
    extension_needed = ahead - arm.ee_reach_m
    max_extension = ACTION_OFFSET[3] + ACTION_SCALE[3]
    linear = 0.0
    if abs(bearing) < _ALIGNED_RAD and extension_needed > max_extension - 0.05:
        linear = _DRIVE_GAIN * (extension_needed - (max_extension - 0.1))
    command = np.array(
        [
            linear,
            _TURN_GAIN * bearing,
            target[2] + arm.ee_drop_m,  # lift: end effector at the object's mid-height
            min(max(extension_needed, 0.0), max_extension) if abs(bearing) < _ALIGNED_RAD else 0.0,
            0.0,
        ]
    )
    action: npt.NDArray[np.float64] = np.clip((command - ACTION_OFFSET) / ACTION_SCALE, -1.0, 1.0)
    return action
