"""The training environment: the example policy's observation/action contract, determinism,
rewards, auto-reset, agreement with the stack's own preprocessing, and a solvable task."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from rl_deploy.policy import ActionDecoder, ObservationBuilder, RawObservation, parse_card
from rl_deploy.sim import SceneSpec
from rl_deploy.sim.expert import expert_action
from rl_deploy.sim.subproc_env import SubprocVecReachEnv
from rl_deploy.sim.train_env import (
    OBSERVATION_SHAPES,
    POLICY_JOINTS,
    ReachEnv,
    ReachEnvConfig,
    VecReachEnv,
    decode_action,
)

CARD = Path(__file__).resolve().parents[2] / "models" / "example_reach.yaml"


@pytest.fixture(scope="module")
def env(scene: SceneSpec) -> Iterator[ReachEnv]:
    environment = ReachEnv(scene)
    yield environment
    environment.close()


def test_observation_contract(env: ReachEnv) -> None:
    obs, info = env.reset(0)
    assert {key: value.shape for key, value in obs.items()} == OBSERVATION_SHAPES
    assert all(value.dtype == np.float32 for value in obs.values())
    assert obs["depth"].min() >= 0.0 and obs["depth"].max() <= 1.0
    assert set(np.unique(obs["target_mask"])) == {0.0, 1.0}  # the target starts in view
    np.testing.assert_allclose(obs["pose"], 0.0, atol=0.05)  # relative to the start (+ noise)
    np.testing.assert_allclose(obs["joints"], [0.6, 0.0, 0.0], atol=1e-4)
    assert not obs["prev_action"].any()
    assert info["target_class"] in ("cup", "bottle", "bowl") and not info["is_success"]
    assert env.max_steps == round(env.scene.task.max_episode_s * env.scene.task.control_rate_hz)


def test_action_contract_matches_the_policy_card() -> None:
    card = parse_card(CARD.read_text(encoding="utf-8"), CARD.parent)
    decoder = ActionDecoder(card)
    rng = np.random.default_rng(3)
    for action in [*rng.uniform(-1.5, 1.5, (20, 5)), np.ones(5), -np.ones(5)]:
        _, base, arm = decode_action(action)
        command, _ = decoder.decode({"action": action[np.newaxis].astype(np.float32)}, None)
        assert command.arm is not None and command.arm.names == POLICY_JOINTS
        np.testing.assert_allclose(base, [command.base.linear_x, command.base.angular_z], atol=1e-6)
        np.testing.assert_allclose(arm, command.arm.positions, atol=1e-6)


def test_observations_match_the_stack_preprocessing(scene: SceneSpec) -> None:
    # With the pose noise off, the stack's ObservationBuilder fed the same 160x120 render, joints
    # and pose must produce exactly what the training environment returns.
    card = parse_card(CARD.read_text(encoding="utf-8"), CARD.parent)
    builder = ObservationBuilder(card)
    environment = ReachEnv(scene, ReachEnvConfig(noisy_pose=False))
    try:
        obs, info = environment.reset(5)
        world = environment.world
        assert world.layout is not None
        builder.reset(world.layout.start_pose)
        action = np.array([0.5, 0.3, -0.2, 0.4, 0.1])
        for _ in range(3):
            obs, *_ = environment.step(action)
            builder.record_action(action.astype(np.float32))
        frame = environment.renderer.render(world.data, rgb=False)
        assert frame.depth_m is not None and frame.class_u8 is not None
        target = info["target_class"]
        raw = RawObservation(
            depth_m=frame.depth_m,
            masks={target: (frame.class_u8 == scene.class_id(target)).astype(np.uint8)},
            joints=world.joint_positions()[:3],
            pose=world.base_pose(),
            target_class=target,
        )
        feeds = builder.build(raw)
    finally:
        environment.close()
    for name, value in obs.items():
        np.testing.assert_allclose(feeds[name], value[np.newaxis], atol=1e-6, err_msg=name)


def test_same_seed_same_episode(scene: SceneSpec, env: ReachEnv) -> None:
    actions = np.random.default_rng(0).uniform(-1, 1, (8, 5))
    runs = []
    for environment in (env, ReachEnv(scene)):
        obs, _ = environment.reset(42)
        trace = [obs]
        rewards = []
        for action in actions:
            obs, reward, *_ = environment.step(action)
            trace.append(obs)
            rewards.append(reward)
        runs.append((trace, rewards))
        if environment is not env:
            environment.close()
    (trace_a, rewards_a), (trace_b, rewards_b) = runs
    assert rewards_a == rewards_b
    for obs_a, obs_b in zip(trace_a, trace_b, strict=True):
        for key in OBSERVATION_SHAPES:
            np.testing.assert_array_equal(obs_a[key], obs_b[key])


def test_actions_move_the_robot(env: ReachEnv) -> None:
    env.reset(1)
    action = np.array([1.0, 0.0, 1.0, 1.0, 0.0])
    for _ in range(20):  # 2 s at full forward speed with lift and arm going up / out
        obs, *_ = env.step(action)
    assert 0.35 < obs["pose"][0] < 0.6  # 0.3 m/s after the acceleration ramp
    assert abs(obs["pose"][1]) < 0.05
    np.testing.assert_array_equal(obs["prev_action"], action.astype(np.float32))
    assert obs["joints"][0] > 0.85 and obs["joints"][1] > 0.25  # 0.15 m/s towards 1.0 / 0.5
    obs, *_ = env.step(np.array([5.0, -5.0, 0.0, 0.0, np.nan]))
    np.testing.assert_array_equal(obs["prev_action"], [1.0, -1.0, 0.0, 0.0, 0.0])


def test_expert_solves_episodes_with_positive_return(env: ReachEnv) -> None:
    for seed in (0, 3, 5):
        env.reset(seed)
        total, progress_seen = 0.0, False
        while True:
            _, reward, terminated, truncated, info = env.step(expert_action(env.world))
            total += reward
            progress_seen |= reward > 0
            if terminated or truncated:
                break
        assert terminated and info["is_success"], seed
        assert info["ee_distance_m"] <= env.scene.task.success_distance_m
        assert progress_seen and total > env.config.reward.success_bonus


def test_idle_policy_times_out_with_slack_penalty(scene: SceneSpec, env: ReachEnv) -> None:
    env.reset(2)
    rewards = []
    truncated = terminated = False
    while not (terminated or truncated):
        _, reward, terminated, truncated, info = env.step(np.array([0.0, 0.0, 0.0, -1.0, 0.0]))
        rewards.append(reward)
    assert truncated and not terminated and not info["is_success"]
    assert len(rewards) == env.max_steps
    assert sum(rewards) < 0


def test_vectorised_env_batches_and_auto_resets(scene: SceneSpec) -> None:
    vec = VecReachEnv(scene, num_envs=2, seed=7)
    try:
        obs = vec.reset()
        assert {key: value.shape for key, value in obs.items()} == {
            key: (2, *shape) for key, shape in OBSERVATION_SHAPES.items()
        }
        for env in vec.envs:
            env.max_steps = 3  # short episodes to see the reset
        for _ in range(3):
            obs, rewards, dones, infos = vec.step(np.zeros((2, 5)))
        assert rewards.shape == (2,) and dones.all()
        assert all("terminal_observation" in info and info["TimeLimit.truncated"] for info in infos)
        assert not obs["prev_action"].any()  # fresh episodes
        assert {env.seed for env in vec.envs} == {8, 7 + 1_000_003 + 1}
    finally:
        vec.close()


def test_worker_processes_give_the_same_episodes(scene: SceneSpec) -> None:
    actions = np.random.default_rng(1).uniform(-1, 1, (4, 3, 5))
    results = []
    for make in (
        lambda: VecReachEnv(scene, num_envs=3, seed=11),
        lambda: SubprocVecReachEnv(scene, num_envs=3, seed=11, workers=2),
    ):
        vec = make()
        try:
            trace = [vec.reset()]
            for action in actions:
                obs, rewards, _, _ = vec.step(action)
                trace.append({**obs, "reward": rewards})
            results.append(trace)
        finally:
            vec.close()
    for single, spread in zip(*results, strict=True):
        for key, value in single.items():
            np.testing.assert_array_equal(value, spread[key], err_msg=key)
