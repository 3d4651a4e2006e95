"""Closed-loop episodes through the real pipeline in MuJoCo (`rl-deploy sim --mode gt`): the
metrics, the report, the recorded bag that `rl-deploy replay` reproduces command for command,
and a diverged (NaN) policy that the stack zeroes without crashing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sim_helpers import ROOT, nan_policy, short_scene

from rl_deploy import codec
from rl_deploy.codec.typestore import TWIST
from rl_deploy.config import PipelineConfig
from rl_deploy.policy import Policy
from rl_deploy.replay import Bag, replay
from rl_deploy.safety import load_robot_limits
from rl_deploy.sim import SceneSpec
from rl_deploy.sim.closed_loop import ClosedLoop, load_results, save_results, spl
from rl_deploy.sim.evaluate import (
    DEFAULT_ROBOT,
    HELD_OUT_SEED,
    SimRun,
    default_config,
    evaluate,
    sim_config,
)
from rl_deploy.sim.host import HostOptions, MujocoSimHost

EPISODES = 2


@pytest.fixture(scope="module")
def gt_run(tmp_path_factory: pytest.TempPathFactory, scene_path: Path):
    out = tmp_path_factory.mktemp("sim_gt")
    config = default_config(str(ROOT))
    run = SimRun(
        mode="gt",
        episodes=EPISODES,
        seed=HELD_OUT_SEED,
        scene_path=scene_path,
        config=sim_config(config, "gt"),
        out_dir=out,
        record=True,
    )
    summary, results = evaluate(run)
    return out, summary, results


def test_summary_has_the_metrics_of_every_episode(gt_run, scene: SceneSpec):
    out, summary, results = gt_run
    assert summary["mode"] == "gt" and summary["episodes"] == EPISODES
    assert set(summary) >= {"success_rate", "spl", "mean_time_s", "collisions", "episodes"}
    assert [r["seed"] for r in summary["per_episode"]] == [HELD_OUT_SEED, HELD_OUT_SEED + 1]
    successes = [r.success for r in results]
    assert summary["success_rate"] == pytest.approx(np.mean(successes))
    assert 0.0 <= summary["spl"] <= summary["success_rate"]
    for result in results:
        assert 0 < result.elapsed_s <= scene.task.max_episode_s + 0.1
        assert result.ticks == pytest.approx(result.elapsed_s * 10, abs=1)
        assert result.spl == (
            spl(True, result.shortest_path_m, result.path_length_m) * result.success
        )
        travelled = np.sum(np.linalg.norm(np.diff(result.trajectory_xy, axis=0), axis=1))
        assert result.path_length_m == pytest.approx(travelled, abs=0.02)
        assert result.snapshots and result.snapshots[0].rgb_u8.shape == (120, 160, 3)
    assert json.loads((out / "summary.json").read_text()) == summary


def test_report_shows_each_episode(gt_run):
    out, _, results = gt_run
    page = (out / "report.html").read_text()
    for result in results:
        assert f"seed {result.seed}: {result.target_class}" in page
    assert page.count("data:image/png;base64,") == 2 * EPISODES  # trajectory + image strip


def test_results_survive_a_save_and_load(gt_run, tmp_path: Path):
    _, _, results = gt_run
    save_results(results, tmp_path / "results.npz")
    loaded = load_results(tmp_path / "results.npz")
    for before, after in zip(results, loaded, strict=True):
        assert after.to_json() == before.to_json()
        np.testing.assert_array_equal(after.trajectory_xy, before.trajectory_xy)
        np.testing.assert_array_equal(after.snapshots[-1].mask_u8, before.snapshots[-1].mask_u8)


def test_recorded_episode_replays_to_the_same_commands(gt_run, tmp_path: Path):
    out, _, results = gt_run
    bag_path = out / "bags" / f"episode_{results[0].seed}.mcap"
    recorded = [
        codec.decode(message.data, TWIST)
        for message in Bag(bag_path).messages()
        if message.topic == "/cmd_vel"
    ]
    config = PipelineConfig.from_yaml(bag_path.with_suffix(".yaml"))
    assert config.policy.target_class == results[0].target_class
    replayed = replay(bag_path, tmp_path / "replay", config, progress=False)
    assert len(replayed.ticks) == len(recorded) == results[0].ticks
    for twist, tick in zip(recorded, replayed.ticks, strict=True):
        assert (twist.linear.x, twist.angular.z) == (
            tick.command.base.linear_x,
            tick.command.base.angular_z,
        )


def test_a_nan_policy_is_zeroed_and_the_episode_fails(scene: SceneSpec, tmp_path: Path):
    config = default_config(str(ROOT))
    policy = Policy.load(nan_policy(tmp_path), providers=["CPUExecutionProvider"])
    host = MujocoSimHost(short_scene(scene, 2.0), HostOptions(rgb=False))
    try:
        loop = ClosedLoop(host, config, policy, load_robot_limits(ROOT / DEFAULT_ROBOT))
        result = loop.run_episode(HELD_OUT_SEED)
    finally:
        host.close()
    assert not result.success and result.elapsed_s == pytest.approx(2.0, abs=0.01)
    assert result.zero_commands == {"nonfinite": result.ticks}
    assert result.path_length_m < 0.005
