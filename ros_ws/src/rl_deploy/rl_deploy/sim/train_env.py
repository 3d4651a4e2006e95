"""Fast training environment for the reach task: gymnasium-style API on the simulator's physics.

Renders 160x120 depth and the target mask directly (no RGB, no CDR) and returns the example
policy's observation contract; the stack rebuilds the same tensors from 640x480 camera topics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rl_deploy.geometry import Pose2D
from rl_deploy.sim.layout import sample_layout
from rl_deploy.sim.pose_source import SlamPoseModel
from rl_deploy.sim.render import CameraRenderer
from rl_deploy.sim.scene import load_scene
from rl_deploy.sim.spec import SceneSpec
from rl_deploy.sim.world import SimWorld

FloatArray = npt.NDArray[np.float32]
Observation = dict[str, FloatArray]

# The observation contract of models/example_reach.yaml, without the batch dimension.
OBS_WIDTH, OBS_HEIGHT = 160, 120
OBSERVATION_SHAPES: dict[str, tuple[int, ...]] = {
    "depth": (1, OBS_HEIGHT, OBS_WIDTH),  # metres clipped to [0, 10] / 10, invalid = 0
    "target_mask": (1, OBS_HEIGHT, OBS_WIDTH),  # {0, 1}: pixels of the target class
    "pose": (3,),  # [x m, y m, yaw rad] of base_link relative to the episode start
    "joints": (3,),  # [joint_lift m, joint_arm m, joint_wrist_yaw rad]
    "prev_action": (5,),  # the previous action after clipping to [-1, 1]
}
POLICY_JOINTS = ("joint_lift", "joint_arm", "joint_wrist_yaw")
DEPTH_MAX_M = 10.0
# action in [-1, 1]^5 -> [linear_x m/s, angular_z rad/s, lift m, arm m, wrist yaw rad]
ACTION_SCALE = np.array([0.3, 0.8, 0.4, 0.25, 1.5])
ACTION_OFFSET = np.array([0.0, 0.0, 0.6, 0.25, 0.0])
_POSE_SEED_OFFSET = 7_919
SEED_STRIDE = 1_000_003  # env i of a vector starts at seed + i * SEED_STRIDE: no shared episodes


@dataclass(frozen=True)
class RewardConfig:
    """Dense reward in the spirit of OVMM: progress, a success bonus, a per-step slack cost."""

    progress: float = 2.0  # per metre the end effector gets closer to the target
    success_bonus: float = 10.0
    slack: float = 0.01  # per control step
    collision: float = 0.2  # per new contact with anything but a target object


@dataclass(frozen=True)
class ReachEnvConfig:
    reward: RewardConfig = field(default_factory=RewardConfig)
    noisy_pose: bool = True  # pose observation through the scene's SLAM-like pose model
    terminate_on_success: bool = True


def decode_action(action: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], ...]:
    """(5,) raw action -> (clipped action, [linear_x, angular_z], [lift, arm, wrist_yaw])."""
    raw = np.asarray(action, dtype=np.float64).reshape(5)
    clipped = np.clip(np.nan_to_num(raw, nan=0.0), -1.0, 1.0)
    command = ACTION_OFFSET + ACTION_SCALE * clipped
    return clipped, command[:2], command[2:]


class ReachEnv:
    """One environment. `reset(seed)` then `step(action)` at the task's control rate."""

    observation_shapes = OBSERVATION_SHAPES
    action_shape = (5,)
    action_low, action_high = -1.0, 1.0

    def __init__(
        self, scene: SceneSpec | str | Path, config: ReachEnvConfig | None = None, seed: int = 0
    ) -> None:
        self.scene = scene if isinstance(scene, SceneSpec) else load_scene(scene)
        self.config = config or ReachEnvConfig()
        self.world = SimWorld(self.scene)
        self.renderer = CameraRenderer(self.world.model, self.scene, OBS_WIDTH, OBS_HEIGHT)
        self._pose_model = SlamPoseModel(self.scene.pose_source, seed=0)
        task = self.scene.task
        self._substeps = max(1, round(1.0 / (task.control_rate_hz * self.world.timestep_s)))
        self.control_period_s = self._substeps * self.world.timestep_s
        self.max_steps = round(task.max_episode_s / self.control_period_s)
        self._joint_index = [self.world.arm_joint_names.index(name) for name in POLICY_JOINTS]
        self._next_seed = seed
        self._steps = 0
        self._start = Pose2D(0.0, 0.0, 0.0)
        self._prev_action = np.zeros(5, dtype=np.float32)
        self._distance_m = 0.0
        self._target_id = 0
        self.seed = seed

    def reset(self, seed: int | None = None) -> tuple[Observation, dict[str, Any]]:
        if seed is None:
            seed = self._next_seed
        self._next_seed = seed + 1
        self.seed = seed
        layout = sample_layout(self.scene, seed)
        self.world.reset(layout)
        self._pose_model.reset(seed + _POSE_SEED_OFFSET)
        self._pose_model.record(0, layout.start_pose)
        self._start = layout.start_pose
        self._steps = 0
        self._prev_action = np.zeros(5, dtype=np.float32)
        self._distance_m = self.world.target_distance()
        self._target_id = self.scene.class_id(layout.target_class)
        return self._observe(), self._info(success=False)

    def step(self, action: npt.ArrayLike) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        clipped, base, arm = decode_action(action)
        self.world.set_base_command(float(base[0]), float(base[1]))
        self.world.set_arm_targets(POLICY_JOINTS, arm)
        collisions_before = self.world.collisions
        self.world.step(self._substeps)
        self._steps += 1
        now_ns = round(self._steps * self.control_period_s * 1e9)
        self._pose_model.record(now_ns, self.world.base_pose())
        self._prev_action = clipped.astype(np.float32)
        distance = self.world.target_distance()
        success = distance <= self.scene.task.success_distance_m
        reward_config = self.config.reward
        reward = (
            reward_config.progress * (self._distance_m - distance)
            - reward_config.slack
            - reward_config.collision * (self.world.collisions - collisions_before)
            + (reward_config.success_bonus if success else 0.0)
        )
        self._distance_m = distance
        terminated = success and self.config.terminate_on_success
        truncated = not terminated and self._steps >= self.max_steps
        return self._observe(now_ns), float(reward), terminated, truncated, self._info(success)

    def _observe(self, now_ns: int = 0) -> Observation:
        frame = self.renderer.render(self.world.data, rgb=False)
        assert frame.depth_m is not None and frame.class_u8 is not None
        depth = np.clip(frame.depth_m, 0.0, DEPTH_MAX_M) / np.float32(DEPTH_MAX_M)
        mask = (frame.class_u8 == self._target_id).astype(np.float32)
        if self.config.noisy_pose:
            pose = self._pose_model.estimate(now_ns)[1]
        else:
            pose = self.world.base_pose()
        relative = pose.relative_to(self._start)
        return {
            "depth": depth.astype(np.float32)[np.newaxis],
            "target_mask": mask[np.newaxis],
            "pose": np.array([relative.x, relative.y, relative.yaw], dtype=np.float32),
            "joints": self.world.joint_positions()[self._joint_index].astype(np.float32),
            "prev_action": self._prev_action.copy(),
        }

    def _info(self, success: bool) -> dict[str, Any]:
        layout = self.world.layout
        assert layout is not None
        return {
            "seed": self.seed,
            "target_class": layout.target_class,
            "is_success": bool(success),
            "ee_distance_m": self._distance_m,
            "collisions": self.world.collisions,
            "steps": self._steps,
        }

    def expert_action(self) -> npt.NDArray[np.float64]:
        """The scripted expert's (5,) action for the current state: labels for imitation."""
        from rl_deploy.sim.expert import expert_action  # expert imports this module's scales

        return expert_action(self.world)

    def close(self) -> None:
        self.renderer.close()


class VecReachEnv:
    """N environments in this process with batched arrays and auto-reset (SB3 conventions:
    a finished env returns its next first observation; the last one is in
    info["terminal_observation"])."""

    def __init__(
        self,
        scene: SceneSpec | str | Path,
        num_envs: int,
        config: ReachEnvConfig | None = None,
        seed: int = 0,
    ) -> None:
        spec = scene if isinstance(scene, SceneSpec) else load_scene(scene)
        self.envs = [ReachEnv(spec, config, seed=seed + i * SEED_STRIDE) for i in range(num_envs)]
        self.num_envs = num_envs

    def reset(self) -> Observation:
        return _stack([env.reset()[0] for env in self.envs])

    def step(
        self, actions: npt.ArrayLike
    ) -> tuple[Observation, FloatArray, npt.NDArray[np.bool_], list[dict[str, Any]]]:
        actions = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, 5)
        observations, rewards, dones, infos = [], [], [], []
        for env, action in zip(self.envs, actions, strict=True):
            obs, reward, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                info["terminal_observation"] = obs
                info["TimeLimit.truncated"] = truncated
                obs, _ = env.reset()
            observations.append(obs)
            rewards.append(reward)
            dones.append(terminated or truncated)
            infos.append(info)
        return (
            _stack(observations),
            np.array(rewards, dtype=np.float32),
            np.array(dones, dtype=bool),
            infos,
        )

    def expert_actions(self) -> FloatArray:
        """(num_envs, 5) the scripted expert's actions for the observations `step` returned."""
        return np.stack([env.expert_action() for env in self.envs]).astype(np.float32)

    def close(self) -> None:
        for env in self.envs:
            env.close()


def _stack(observations: list[Observation]) -> Observation:
    return {key: np.stack([obs[key] for obs in observations]) for key in OBSERVATION_SHAPES}
