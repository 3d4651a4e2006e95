"""`rl-deploy replay` on generated 30 Hz RGB-D bags in both storages, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rl_deploy import codec
from rl_deploy.cli import main
from rl_deploy.config import PipelineConfig
from rl_deploy.errors import BagError
from rl_deploy.replay import Bag, SyntheticBagSpec, replay, write_report, write_synthetic_bag
from rl_deploy.replay.runner import replay_config
from rl_deploy.replay.synthetic import POSE_TOPICS, _robot_pose

SUMMARY_FIELDS = {
    "frames_in",
    "commands_out",
    "command_rate_hz",
    "max_abs_linear_mps",
    "max_abs_angular_rps",
    "nonfinite_commands",
    "zero_commands_stale",
    "decode_errors",
    "stage_latency_ms",
}


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_replay_emits_safe_commands_at_the_card_rate(repo: Path, tmp_path: Path, storage):
    spec = SyntheticBagSpec(seconds=2.0, storage=storage, width=320, height=240)
    bag = write_synthetic_bag(tmp_path / "bag", spec)
    config = PipelineConfig.from_mapping({}, base_dir=repo)
    result = replay(bag, tmp_path / "out", config, progress=False)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary == result.summary
    assert set(summary) >= SUMMARY_FIELDS
    assert summary["frames_in"] == 60
    assert summary["command_rate_hz"] == pytest.approx(10.0, rel=0.06)
    assert summary["nonfinite_commands"] == 0
    assert summary["max_abs_linear_mps"] <= 0.3
    assert summary["max_abs_angular_rps"] <= 0.8
    assert summary["bag_check"] == "ok"
    assert summary["decode_errors"]["/camera/depth/image_raw"] == 0
    # only the first step (before any message arrived) may be zero
    assert summary["policy_commands"] >= summary["commands_out"] - 1
    assert {"p50", "p99"} <= set(summary["stage_latency_ms"]["inference"])

    out = Bag(tmp_path / "out" / "output.mcap")
    counts = out.read_all_counted()
    assert counts["/camera/depth/image_raw"] == 60  # inputs are kept
    assert counts["/cmd_vel"] == summary["commands_out"]
    assert counts["/arm_controller/joint_trajectory"] >= summary["policy_commands"]
    twists = [codec.decode(m.data, "geometry_msgs/msg/Twist") for m in out.messages(["/cmd_vel"])]
    assert all(np.isfinite([t.linear.x, t.angular.z]).all() for t in twists)

    report = write_report(result, tmp_path / "out" / "report.html")
    text = report.read_text()
    assert text.count("data:image/png;base64,") == 4
    assert "command_rate_hz" in text


def test_bag_without_the_needed_topics_is_refused(repo: Path, rosbag2_fixtures: Path, tmp_path):
    config = PipelineConfig.from_mapping({}, base_dir=repo)
    with pytest.raises(
        BagError, match=r"/camera/depth/image_raw \(sensor_msgs/msg/Image\) is missing"
    ):
        replay(rosbag2_fixtures / "mcap_talker", tmp_path, config, progress=False)


def test_cli_replay_writes_three_files(repo: Path, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(repo)
    bag = write_synthetic_bag(
        tmp_path / "bag", SyntheticBagSpec(seconds=1.0, width=160, height=120)
    )
    assert main(["replay", str(bag), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        "output.mcap",
        "summary.json",
        "report.html",
    }
    assert json.loads(capsys.readouterr().out)["frames_in"] == 30


def test_cli_setup_error_exits_2_with_message(repo, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(repo)
    bad = tmp_path / "bad.yaml"
    bad.write_text("pose_source: gps\n")
    bag = write_synthetic_bag(tmp_path / "bag", SyntheticBagSpec(seconds=0.2, width=32, height=24))
    code = main(["replay", str(bag), "--out", str(tmp_path / "o"), "--config", str(bad)])
    assert code == 2
    assert "pose_source must be one of" in capsys.readouterr().err


@pytest.mark.parametrize("source", ["amcl", "pose_stamped", "odometry", "tf"])
def test_every_pose_source_drives_the_pipeline(repo: Path, tmp_path: Path, source):
    spec = SyntheticBagSpec(seconds=1.0, width=64, height=48, pose_source=source)
    bag = write_synthetic_bag(tmp_path / "bag", spec)
    config = PipelineConfig.from_mapping(
        {"pose_source": source, "topics": {"pose": POSE_TOPICS[source]}}, base_dir=repo
    )
    result = replay(bag, tmp_path / "out", config, progress=False)
    assert result.summary["policy_commands"] == result.summary["commands_out"]
    last = result.ticks[-1]
    # the newest pose message before the last tick (poses come at 10 Hz, like the ticks)
    expected = _robot_pose(spec, spec.start_ns + 900_000_000)
    assert last.pose is not None
    assert (last.pose.x, last.pose.y, last.pose.yaw) == pytest.approx(
        (expected.x, expected.y, expected.yaw), abs=1e-6
    )


def test_replay_lets_the_detectors_workers_sleep_unless_asked(repo: Path, tmp_path: Path):
    """A batch job: the output file's writer thread gets the core spinning workers would hold."""
    bag = write_synthetic_bag(
        tmp_path / "bag", SyntheticBagSpec(seconds=0.5, width=160, height=120)
    )
    config = PipelineConfig.from_mapping({"masks": {"source": "detector"}}, base_dir=repo)
    assert config.detector.spin_wait  # the code's default
    assert not replay_config(config).detector.spin_wait
    sleeping = replay(bag, tmp_path / "sleeping", config, progress=False).summary
    spinning = replay(bag, tmp_path / "spinning", config, progress=False, spin_wait=True).summary
    assert sleeping["detector_spin_wait"] is False and spinning["detector_spin_wait"] is True
    assert sleeping["commands_out"] == spinning["commands_out"] > 0
    plain = PipelineConfig.from_mapping({}, base_dir=repo)
    ground_truth = replay(bag, tmp_path / "gt", plain, progress=False)
    assert ground_truth.summary["detector_spin_wait"] is None  # no detector ran


def test_cli_replay_spin_wait_flag(repo: Path, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(repo)
    config = tmp_path / "detector.yaml"
    config.write_text("masks:\n  source: detector\n")
    bag = write_synthetic_bag(
        tmp_path / "bag", SyntheticBagSpec(seconds=0.3, width=160, height=120)
    )
    argv = ["replay", str(bag), "--out", str(tmp_path / "out"), "--config", str(config)]
    assert main([*argv, "--no-progress", "--no-report", "--spin-wait"]) == 0
    assert json.loads(capsys.readouterr().out)["detector_spin_wait"] is True
