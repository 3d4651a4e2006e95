"""Simulation: one scene description, its MuJoCo and Gazebo renderings, and the MuJoCo host.

Importing this package does not import mujoco; only `world`, `render`, `host` and `train_env` do.
"""

import os

# MuJoCo picks its GL backend when first imported: headless EGL unless the user chose (osmesa).
os.environ.setdefault("MUJOCO_GL", "egl")

from rl_deploy.sim.scene import load_scene, parse_scene
from rl_deploy.sim.spec import SceneSpec

__all__ = ["SceneSpec", "load_scene", "parse_scene"]
