"""Train the example_reach policy in the MuJoCo example room and export it with its card.

    python models/recipes/train_example_reach.py              # full run: models/example_reach.*
    python models/recipes/train_example_reach.py --quick --out /tmp/reach   # smoke test, minutes

What it does, in order (all on ground-truth masks, the simulator's `ReachEnv`, CPU only):
1. DAgger warm start: rollouts that mix the scripted expert (`rl_deploy.sim.expert`) and the
   current network, every visited state labelled with the expert's action; the actor is fitted
   by regression on all labels so far (behaviour cloning on the learner's own state visits).
2. PPO fine-tuning from that actor: value warm-up iterations (critic only), then clipped PPO with
   GAE, a learned state-independent log-std and early stopping on the approximate KL. The reward
   is the environment's dense reward (progress, success bonus, slack and collision costs).
3. Selection: the PPO iteration with the best deterministic success on validation seeds
   (400000+), which are disjoint from training seeds (env i: i * 1000003 + episode) and from the
   held-out evaluation seeds of `rl-deploy sim` (500000+).
4. Export: the deterministic actor as ONNX (action clipped to [-1, 1] in the graph) with the
   card and its observation statistics from rollouts of the exported policy; parity check
   against PyTorch and a load through the runtime's `Policy`. Writes the training curve (PNG)
   and a summary (JSON, with the wall-clock training time) beside the model.

Needs requirements/train.txt (torch); the runtime never imports it.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from onnx import helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reach_net import VECTOR_INPUTS, ReachActorCritic, to_onnx

from rl_deploy.policy import CARD_METADATA_KEY, Policy, load_card, parse_card
from rl_deploy.sim import load_scene
from rl_deploy.sim.subproc_env import SubprocVecReachEnv

REPO = Path(__file__).resolve().parents[2]
MODELS_DIR = REPO / "models"
SCENE = REPO / "config" / "scenes" / "example_room.yaml"
TRAIN_SEED, VALIDATION_SEED, STATS_SEED = 0, 400_000, 300_000
Observation = dict[str, np.ndarray]


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    num_envs: int = 16
    workers: int = 2  # processes stepping the environments (the machine's cores)
    threads: int = 1  # torch intra-op threads (one: the workers need the other core)
    # DAgger warm start
    dagger_betas: tuple[float, ...] = (1.0, 0.5, 0.25, 0.0, 0.0, 0.0)  # P(expert acts) per round
    dagger_steps: int = 300  # per env and round
    expert_noise: float = 0.1  # Gaussian noise on the expert's executed actions (labels clean)
    bc_epochs: int = 8  # passes over the aggregated data after each round
    bc_lr: float = 3e-4
    bc_batch: int = 128
    # PPO
    ppo_iterations: int = 300
    max_ppo_minutes: float = 80.0  # stops earlier than ppo_iterations when reached
    rollout_steps: int = 128  # per env and iteration
    value_warmup: int = 4  # first iterations train the critic only
    epochs: int = 4
    minibatch: int = 256
    lr: float = 1.5e-4
    gamma: float = 0.99
    gae_lambda: float = 0.95
    clip: float = 0.2
    value_coef: float = 0.5
    entropy_coef: float = 0.0
    max_grad_norm: float = 0.5
    target_kl: float = 0.03
    reward_scale: float = 0.1  # returns of order 1 for the critic
    init_log_std: float = -1.6  # exploration std 0.2 around the warm-started actor
    # validation and statistics
    eval_every: int = 5  # PPO iterations
    eval_envs: int = 16
    eval_episodes_per_env: int = 3
    stats_episodes_per_env: int = 2


QUICK = TrainConfig(
    num_envs=4,
    dagger_betas=(1.0, 0.0),
    dagger_steps=40,
    bc_epochs=1,
    ppo_iterations=3,
    rollout_steps=16,
    value_warmup=1,
    minibatch=32,
    eval_every=2,
    eval_envs=4,
    eval_episodes_per_env=1,
    stats_episodes_per_env=1,
)


@dataclass
class History:
    path: Path | None = None  # rows are appended here as they come (JSON lines)
    rows: list[dict[str, Any]] = field(default_factory=list)
    env_steps: int = 0
    started: float = field(default_factory=time.time)

    def log(self, **row: Any) -> None:
        row = {"env_steps": self.env_steps, "wall_s": round(time.time() - self.started, 1), **row}
        self.rows.append(row)
        line = json.dumps(row)
        print(line, flush=True)
        if self.path is not None:
            with self.path.open("a") as stream:
                stream.write(line + "\n")


# --- tensors ------------------------------------------------------------------------------------


def to_torch(obs: Observation) -> dict[str, torch.Tensor]:
    return {key: torch.from_numpy(np.ascontiguousarray(value)) for key, value in obs.items()}


def vector_of(obs: Observation) -> np.ndarray:
    return np.concatenate([obs[name] for name, _ in VECTOR_INPUTS], axis=1)


class LabelledStates:
    """Aggregated DAgger data, compact: depth as float16, masks bit-packed."""

    def __init__(self) -> None:
        self.depth: list[np.ndarray] = []
        self.mask: list[np.ndarray] = []
        self.vector: list[np.ndarray] = []
        self.label: list[np.ndarray] = []

    def add(self, obs: Observation, labels: np.ndarray) -> None:
        count = len(labels)
        self.depth.append(obs["depth"].astype(np.float16))
        self.mask.append(np.packbits(obs["target_mask"].reshape(count, -1) > 0.5, axis=1))
        self.vector.append(vector_of(obs).astype(np.float32))
        self.label.append(labels.astype(np.float32))

    def __len__(self) -> int:
        return sum(len(chunk) for chunk in self.label)

    def arrays(self) -> tuple[np.ndarray, ...]:
        parts = (self.depth, self.mask, self.vector, self.label)
        return tuple(np.concatenate(part) for part in parts)


def batch_obs(depth: np.ndarray, packed: np.ndarray, vector: np.ndarray) -> dict[str, torch.Tensor]:
    count = len(depth)
    mask = np.unpackbits(packed, axis=1, count=120 * 160).reshape(count, 1, 120, 160)
    obs = {"depth": depth.astype(np.float32), "target_mask": mask.astype(np.float32)}
    first = 0
    for name, size in VECTOR_INPUTS:
        obs[name] = vector[:, first : first + size]
        first += size
    return to_torch(obs)


# --- evaluation and statistics ------------------------------------------------------------------


class RunningStats:
    """Per-input mean/std/min/max over frames: one value for images, one per element else."""

    def __init__(self) -> None:
        self.sums: dict[str, list[Any]] = {}

    def add(self, obs: Observation, rows: np.ndarray) -> None:
        for name, value in obs.items():
            data = value[rows].astype(np.float64)
            data = data.reshape(-1) if data.ndim > 2 else data
            axis = 0
            parts = [len(data), data.sum(axis), (data**2).sum(axis), data.min(axis), data.max(axis)]
            if name not in self.sums:
                self.sums[name] = parts
            else:
                old = self.sums[name]
                self.sums[name] = [
                    old[0] + parts[0],
                    old[1] + parts[1],
                    old[2] + parts[2],
                    np.minimum(old[3], parts[3]),
                    np.maximum(old[4], parts[4]),
                ]

    def card_statistics(self) -> dict[str, dict[str, Any]]:
        stats = {}
        for name, (count, total, squares, low, high) in self.sums.items():
            mean = total / count
            std = np.maximum(np.sqrt(np.maximum(squares / count - mean**2, 0.0)), 1e-3)
            stats[name] = {
                key: _rounded(value)
                for key, value in (("mean", mean), ("std", std), ("min", low), ("max", high))
            }
        return stats


def _rounded(value: Any) -> float | list[float]:
    values = [float(f"{item:.6g}") for item in np.atleast_1d(value)]
    return values[0] if np.ndim(value) == 0 else values


def evaluate(
    net: ReachActorCritic,
    config: TrainConfig,
    seed: int,
    episodes_per_env: int,
    stats: RunningStats | None = None,
) -> dict[str, float]:
    """Deterministic actor (clipped mean) on a fixed set of seeds; the same seeds every call."""
    vec = SubprocVecReachEnv(SCENE, config.eval_envs, seed=seed, workers=config.workers)
    finished = np.zeros(config.eval_envs, dtype=int)
    successes, lengths, collisions = [], [], []
    try:
        obs = vec.reset()
        while (finished < episodes_per_env).any():
            if stats is not None:
                stats.add(obs, np.flatnonzero(finished < episodes_per_env))
            with torch.no_grad():
                mean, _ = net(to_torch(obs))
            obs, _, dones, infos = vec.step(np.clip(mean.numpy(), -1.0, 1.0))
            for index in np.flatnonzero(dones):
                if finished[index] < episodes_per_env:
                    info = infos[index]
                    successes.append(info["is_success"])
                    lengths.append(info["steps"])
                    collisions.append(info["collisions"])
                    finished[index] += 1
    finally:
        vec.close()
    return {
        "success_rate": float(np.mean(successes)),
        "episodes": len(successes),
        "mean_steps": float(np.mean(lengths)),
        "collisions_per_episode": float(np.mean(collisions)),
    }


# --- DAgger warm start --------------------------------------------------------------------------


def dagger(net: ReachActorCritic, config: TrainConfig, history: History) -> None:
    rng = np.random.default_rng(config.seed)
    data = LabelledStates()
    optimiser = torch.optim.Adam(net.parameters(), lr=config.bc_lr)
    vec = SubprocVecReachEnv(SCENE, config.num_envs, seed=TRAIN_SEED, workers=config.workers)
    try:
        obs = vec.reset()
        for round_index, beta in enumerate(config.dagger_betas):
            outcomes = []
            for _ in range(config.dagger_steps):
                labels = vec.expert_actions()
                data.add(obs, labels)
                with torch.no_grad():
                    mean, _ = net(to_torch(obs))
                noisy = labels + rng.normal(0.0, config.expert_noise, labels.shape)
                use_expert = rng.random(config.num_envs) < beta
                actions = np.where(use_expert[:, None], noisy, mean.numpy())
                obs, _, dones, infos = vec.step(actions)
                history.env_steps += config.num_envs
                outcomes += [infos[i]["is_success"] for i in np.flatnonzero(dones)]
            loss = fit_actor(net, optimiser, data, config, rng)
            history.log(
                phase="dagger",
                iteration=round_index,
                beta=beta,
                samples=len(data),
                bc_loss=round(loss, 5),
                rollout_success=round(float(np.mean(outcomes)), 3) if outcomes else None,
                validation=evaluate(net, config, VALIDATION_SEED, config.eval_episodes_per_env),
            )
    finally:
        vec.close()


def fit_actor(
    net: ReachActorCritic,
    optimiser: torch.optim.Optimizer,
    data: LabelledStates,
    config: TrainConfig,
    rng: np.random.Generator,
) -> float:
    depth, mask, vector, label = data.arrays()
    losses = []
    for _ in range(config.bc_epochs):
        order = rng.permutation(len(label))
        for first in range(0, len(order), config.bc_batch):
            rows = np.sort(order[first : first + config.bc_batch])
            mean, _ = net(batch_obs(depth[rows], mask[rows], vector[rows]))
            loss = torch.nn.functional.mse_loss(mean, torch.from_numpy(label[rows]))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
    return float(np.mean(losses[-max(1, len(losses) // config.bc_epochs) :]))


# --- PPO ----------------------------------------------------------------------------------------


@dataclass
class Rollout:
    obs: dict[str, np.ndarray]  # (T, N, ...)
    actions: np.ndarray  # (T, N, 5) sampled, before the environment's clip
    log_probs: np.ndarray  # (T, N)
    values: np.ndarray  # (T, N)
    rewards: np.ndarray  # (T, N) scaled; truncations bootstrapped
    dones: np.ndarray  # (T, N) the episode ended at this step


def collect(
    net: ReachActorCritic,
    vec: SubprocVecReachEnv,
    obs: Observation,
    config: TrainConfig,
    *,
    episode_returns: np.ndarray,
    finished: list[dict[str, Any]],
) -> tuple[Rollout, Observation]:
    steps, count = config.rollout_steps, config.num_envs
    buffers = {k: np.zeros((steps, *v.shape), dtype=np.float32) for k, v in obs.items()}
    actions = np.zeros((steps, count, 5), dtype=np.float32)
    log_probs, values, rewards, dones = (np.zeros((steps, count), np.float32) for _ in range(4))
    std = net.log_std.detach().exp()
    for t in range(steps):
        for key, value in obs.items():
            buffers[key][t] = value
        with torch.no_grad():
            mean, value = net(to_torch(obs))
            dist = torch.distributions.Normal(mean, std)
            action = dist.sample()
            log_probs[t] = dist.log_prob(action).sum(-1).numpy()
        actions[t], values[t] = action.numpy(), value.numpy()
        obs, reward, done, infos = vec.step(actions[t])
        episode_returns += reward
        rewards[t] = reward * config.reward_scale
        dones[t] = done
        for index in np.flatnonzero(done):
            info = infos[index]
            if info.get("TimeLimit.truncated"):
                terminal = {k: v[np.newaxis] for k, v in info["terminal_observation"].items()}
                with torch.no_grad():
                    rewards[t, index] += config.gamma * float(net.value(to_torch(terminal))[0])
            outcome = {"success": info["is_success"], "steps": info["steps"]}
            finished.append({**outcome, "return": float(episode_returns[index])})
            episode_returns[index] = 0.0
    rollout = Rollout(buffers, actions, log_probs, values, rewards, dones)
    return rollout, obs


def advantages(
    rollout: Rollout, last_value: np.ndarray, config: TrainConfig
) -> tuple[np.ndarray, np.ndarray]:
    steps = len(rollout.rewards)
    adv = np.zeros_like(rollout.rewards)
    running = np.zeros_like(last_value)
    for t in reversed(range(steps)):
        next_value = last_value if t == steps - 1 else rollout.values[t + 1]
        alive = 1.0 - rollout.dones[t]
        delta = rollout.rewards[t] + config.gamma * next_value * alive - rollout.values[t]
        running = delta + config.gamma * config.gae_lambda * alive * running
        adv[t] = running
    return adv, adv + rollout.values


def update(
    net: ReachActorCritic,
    optimiser: torch.optim.Optimizer,
    rollout: Rollout,
    config: TrainConfig,
    *,
    adv: np.ndarray,
    returns: np.ndarray,
    critic_only: bool,
    rng: np.random.Generator,
) -> dict[str, float]:
    flat = {k: v.reshape(-1, *v.shape[2:]) for k, v in rollout.obs.items()}
    actions = torch.from_numpy(rollout.actions.reshape(-1, 5))
    old_log_probs = torch.from_numpy(rollout.log_probs.reshape(-1))
    adv_t = torch.from_numpy(adv.reshape(-1))
    adv_t = (adv_t - adv_t.mean()) / (adv_t.std() + 1e-8)
    returns_t = torch.from_numpy(returns.reshape(-1))
    metrics: dict[str, list[float]] = {"policy_loss": [], "value_loss": [], "approx_kl": []}
    epochs = config.epochs * (2 if critic_only else 1)
    for _ in range(epochs):
        order = rng.permutation(len(adv_t))
        kls = []
        for first in range(0, len(order), config.minibatch):
            rows = torch.from_numpy(order[first : first + config.minibatch])
            mean, value = net(to_torch({k: v[rows.numpy()] for k, v in flat.items()}))
            value_loss = 0.5 * (value - returns_t[rows]).pow(2).mean()
            if critic_only:
                loss = config.value_coef * value_loss
                policy_loss = kl = torch.zeros(())
            else:
                dist = torch.distributions.Normal(mean, net.log_std.exp())
                log_probs = dist.log_prob(actions[rows]).sum(-1)
                log_ratio = log_probs - old_log_probs[rows]
                ratio = log_ratio.exp()
                surrogate = torch.min(
                    ratio * adv_t[rows],
                    ratio.clamp(1 - config.clip, 1 + config.clip) * adv_t[rows],
                )
                policy_loss = -surrogate.mean()
                entropy = dist.entropy().sum(-1).mean()
                loss = policy_loss + config.value_coef * value_loss - config.entropy_coef * entropy
                kl = ((ratio - 1) - log_ratio).mean()
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), config.max_grad_norm)
            optimiser.step()
            metrics["policy_loss"].append(float(policy_loss))
            metrics["value_loss"].append(float(value_loss))
            metrics["approx_kl"].append(float(kl))
            kls.append(float(kl))
        if not critic_only and np.mean(kls) > config.target_kl:
            break
    return {key: round(float(np.mean(values)), 5) for key, values in metrics.items()}


def ppo(
    net: ReachActorCritic, config: TrainConfig, history: History, checkpoint: Path
) -> ReachActorCritic:
    """PPO from the warm-started actor; returns the best validated iteration's network."""
    rng = np.random.default_rng(config.seed + 1)
    torch.manual_seed(config.seed + 1)
    with torch.no_grad():
        net.log_std.fill_(config.init_log_std)
    optimiser = torch.optim.Adam(net.parameters(), lr=config.lr)
    best, best_score = copy.deepcopy(net), -1.0
    # Training episodes continue where DAgger's stopped: fresh seeds per env (SEED_STRIDE apart).
    vec = SubprocVecReachEnv(
        SCENE, config.num_envs, seed=TRAIN_SEED + 100_000, workers=config.workers
    )
    started = time.time()
    try:
        obs = vec.reset()
        episode_returns = np.zeros(config.num_envs)
        for iteration in range(config.ppo_iterations):
            finished: list[dict[str, Any]] = []
            rollout, obs = collect(
                net, vec, obs, config, episode_returns=episode_returns, finished=finished
            )
            history.env_steps += config.rollout_steps * config.num_envs
            with torch.no_grad():
                last_value = net.value(to_torch(obs)).numpy()
            adv, returns = advantages(rollout, last_value, config)
            critic_only = iteration < config.value_warmup
            metrics = update(
                net,
                optimiser,
                rollout,
                config,
                adv=adv,
                returns=returns,
                critic_only=critic_only,
                rng=rng,
            )
            row: dict[str, Any] = {
                "phase": "ppo",
                "iteration": iteration,
                "critic_only": critic_only,
                "episodes": len(finished),
                "rollout_success": round(float(np.mean([f["success"] for f in finished])), 3)
                if finished
                else None,
                "mean_return": round(float(np.mean([f["return"] for f in finished])), 3)
                if finished
                else None,
                "action_std": [round(float(s), 3) for s in net.log_std.detach().exp()],
                **metrics,
            }
            last = iteration == config.ppo_iterations - 1
            out_of_time = (time.time() - started) / 60 > config.max_ppo_minutes
            due = (iteration + 1) % config.eval_every == 0 or last or out_of_time
            if not critic_only and due:
                validation = evaluate(net, config, VALIDATION_SEED, config.eval_episodes_per_env)
                row["validation"] = validation
                if validation["success_rate"] >= best_score:
                    best, best_score = copy.deepcopy(net), validation["success_rate"]
                    row["best"] = True
                    torch.save(best.state_dict(), checkpoint)
            history.log(**row)
            if out_of_time:
                break
    finally:
        vec.close()
    return best


# --- export -------------------------------------------------------------------------------------

CARD_HEADER = """\
# Policy card of example_reach: go to the target object and reach it with the arm.
# Trained in the MuJoCo example room (config/scenes/example_room.yaml) on ground-truth masks by
# models/recipes/train_example_reach.py (DAgger warm start from a scripted expert, then PPO).
# Units: metres, radians, seconds. Statistics: {frames} observations of the trained policy's
# rollouts in the training environment.
"""


def reach_card() -> dict[str, Any]:
    depth_resize = {"mode": "shortest_edge", "size": 120, "crop": "center", "interpolation": "area"}
    mask_resize = {**depth_resize, "interpolation": "nearest"}
    return {
        "name": "example_reach",
        "version": "1.0.0",
        "onnx": "example_reach.onnx",
        "control_rate_hz": 10.0,
        "joint_names": ["joint_lift", "joint_arm", "joint_wrist_yaw"],
        "target_classes": ["cup", "bottle", "bowl"],
        "inputs": [
            {
                "name": "depth",
                "source": "depth",
                "shape": [1, 1, 120, 160],
                "dtype": "float32",
                "resize": depth_resize,
                "depth": {
                    "invalid_values": [0.0],
                    "fill_m": 0.0,
                    "min_m": 0.0,
                    "max_m": 10.0,
                    "scale": 0.1,
                },
            },
            {
                "name": "target_mask",
                "source": "target_mask",
                "shape": [1, 1, 120, 160],
                "dtype": "float32",
                "resize": mask_resize,
            },
            {
                "name": "pose",
                "source": "relative_pose",
                "shape": [1, 3],
                "dtype": "float32",
                "components": ["x", "y", "yaw"],
            },
            {"name": "joints", "source": "joints", "shape": [1, 3], "dtype": "float32"},
            {"name": "prev_action", "source": "prev_action", "shape": [1, 5], "dtype": "float32"},
        ],
        "outputs": [{"name": "action", "shape": [1, 5], "dtype": "float32"}],
        "decoding": {
            "base": {
                "type": "continuous",
                "output": "action",
                "fields": ["linear_x", "angular_z"],
                "indices": [0, 1],
                "scale": [0.3, 0.8],
                "clip": [[-0.3, 0.3], [-0.8, 0.8]],
            },
            "arm": {
                "type": "continuous",
                "output": "action",
                "mode": "absolute",
                "joints": ["joint_lift", "joint_arm", "joint_wrist_yaw"],
                "indices": [2, 3, 4],
                "scale": [0.4, 0.25, 1.5],
                "offset": [0.6, 0.25, 0.0],
                "clip": [[0.2, 1.0], [0.0, 0.5], [-1.5, 1.5]],
            },
        },
    }


def export(net: ReachActorCritic, config: TrainConfig, out_dir: Path) -> dict[str, Any]:
    """Write example_reach.onnx + .yaml; returns the statistics run's evaluation."""
    import onnxruntime as ort

    stats = RunningStats()
    run = evaluate(net, config, STATS_SEED, config.stats_episodes_per_env, stats)
    card = reach_card()
    statistics = stats.card_statistics()
    for spec in card["inputs"]:
        spec["statistics"] = statistics[spec["name"]]
    frames = stats.sums["depth"][0] // (120 * 160)
    text = CARD_HEADER.format(frames=frames) + yaml.safe_dump(
        card, sort_keys=False, default_flow_style=None, width=100
    )
    parse_card(text, out_dir)
    model = to_onnx(net, "example_reach: depth + target mask + pose + joints -> action (5).")
    helper.set_model_props(model, {CARD_METADATA_KEY: text})
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path, card_path = out_dir / "example_reach.onnx", out_dir / "example_reach.yaml"
    onnx_path.write_bytes(model.SerializeToString())
    card_path.write_text(text, encoding="utf-8")
    # Parity: the graph computes what the trained actor computes.
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for _ in range(4):
        feeds = {
            "depth": rng.uniform(0, 0.5, (1, 1, 120, 160)).astype(np.float32),
            "target_mask": (rng.random((1, 1, 120, 160)) < 0.05).astype(np.float32),
            **{n: rng.uniform(-1, 1, (1, s)).astype(np.float32) for n, s in VECTOR_INPUTS},
        }
        with torch.no_grad():
            expected = np.clip(net(to_torch(feeds))[0].numpy(), -1, 1)
        got = session.run(["action"], feeds)[0]
        if not np.allclose(got, expected, atol=1e-4):
            raise SystemExit(f"ONNX and PyTorch disagree: {got} vs {expected}")
    load_card(card_path)
    Policy.load(card_path, providers=["CPUExecutionProvider"])
    return {**run, "frames": int(frames)}


def plot(history: History, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6.5), sharex=True)
    for phase, colour in (("dagger", "tab:orange"), ("ppo", "tab:blue")):
        rows = [r for r in history.rows if r["phase"] == phase]
        steps = [r["env_steps"] / 1000 for r in rows if r.get("rollout_success") is not None]
        success = [r["rollout_success"] for r in rows if r.get("rollout_success") is not None]
        top.plot(steps, success, color=colour, alpha=0.5, label=f"{phase}: training rollouts")
        valid = [r for r in rows if "validation" in r]
        top.plot(
            [r["env_steps"] / 1000 for r in valid],
            [r["validation"]["success_rate"] for r in valid],
            "o-",
            color=colour,
            label=f"{phase}: validation (deterministic)",
        )
        returns = [(r["env_steps"] / 1000, r["mean_return"]) for r in rows if r.get("mean_return")]
        if returns:
            bottom.plot(*zip(*returns, strict=True), color=colour, label=f"{phase}: mean return")
    top.set_ylabel("success rate")
    top.set_ylim(0, 1)
    top.grid(alpha=0.3)
    top.legend(fontsize=8, loc="lower right")
    bottom.set_xlabel("environment steps (thousands, 10 Hz)")
    bottom.set_ylabel("episode return")
    bottom.grid(alpha=0.3)
    bottom.legend(fontsize=8)
    fig.suptitle("example_reach: DAgger warm start, then PPO (ReachEnv, ground-truth masks)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=MODELS_DIR, help="where the model goes")
    parser.add_argument("--work", type=Path, default=REPO / "out" / "train_example_reach")
    parser.add_argument("--quick", action="store_true", help="tiny run to test the recipe")
    parser.add_argument("--ppo-minutes", type=float, help="wall-clock cap of the PPO phase")
    parser.add_argument(
        "--export-only",
        action="store_true",
        help="export WORK/best.pt with WORK/history.jsonl (an interrupted run's best so far)",
    )
    args = parser.parse_args(argv)
    config = QUICK if args.quick else TrainConfig()
    if args.ppo_minutes is not None:
        config = replace(config, max_ppo_minutes=args.ppo_minutes)
    os.environ.setdefault("LP_NUM_THREADS", "1")
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    args.work.mkdir(parents=True, exist_ok=True)
    load_scene(SCENE)  # fail early on a bad scene
    history = History(path=args.work / "history.jsonl")
    normaliser = {
        # Fixed input scaling: depth as a fraction of 10 m sits near 0.1-0.3 indoors; pose and
        # joints in metres/radians; previous actions already in [-1, 1].
        "depth_mean": np.float32(0.2),
        "depth_std": np.float32(0.1),
        "vector_mean": np.array([0.5, 0, 0, 0.6, 0.25, 0, 0, 0, 0, 0, 0], np.float32),
        "vector_std": np.array([0.5, 0.3, 0.5, 0.3, 0.2, 1, 1, 1, 1, 1, 1], np.float32),
    }
    net = ReachActorCritic(normaliser)
    if args.export_only:
        history.rows = [json.loads(line) for line in history.path.read_text().splitlines()]
        history.env_steps = history.rows[-1]["env_steps"]
        net.load_state_dict(torch.load(args.work / "best.pt"))
        best = net
    else:
        history.path.write_text("")
        dagger(net, config, history)
        torch.save(net.state_dict(), args.work / "dagger.pt")
        best = ppo(net, config, history, args.work / "best.pt")
    dagger_s = max(r["wall_s"] for r in history.rows if r["phase"] == "dagger")
    train_s = history.rows[-1]["wall_s"]
    stats_run = export(best, config, args.out)
    validation = [r for r in history.rows if r.get("best")][-1]["validation"]
    summary = {
        "config": asdict(config),
        "training_time_s": round(train_s, 1),
        "dagger_time_s": round(dagger_s, 1),
        "ppo_time_s": round(train_s - dagger_s, 1),
        "env_steps": history.env_steps,
        "selected_ppo_iteration": [r for r in history.rows if r.get("best")][-1]["iteration"],
        "validation": validation,
        "statistics_run": stats_run,
        "machine": f"{os.cpu_count()} CPU cores, torch {torch.__version__}",
        "history": history.rows,
    }
    (args.out / "example_reach.training.json").write_text(json.dumps(summary, indent=1) + "\n")
    plot(history, args.out / "example_reach.training.png")
    print(f"trained in {train_s / 60:.1f} min; validation {validation}; wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
