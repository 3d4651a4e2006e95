"""`rl-deploy bench replay` on a one-second generated bag."""

from __future__ import annotations

from bench_helpers import run_bench


def test_replay_speed_against_real_time_and_the_bare_read(capsys, repo, monkeypatch):
    monkeypatch.chdir(repo)
    argv = ["replay", "--seconds", "1", "--repeats", "1", "--masks", "segmentation"]
    code, result = run_bench(capsys, *argv, "--width", "160", "--height", "120", "--no-machine")
    assert code == 0 and result["ok"]
    assert result["bag"] == "generated 160x120" and result["storage"] == "mcap"
    assert 0.9 < result["bag_seconds"] <= 1.0
    assert len(result["realtime_factors"]) == 1
    assert result["realtime_factor"] == result["realtime_factors"][0] > 0
    assert result["read_only_realtime_factor"] > 0 and result["no_output_file_realtime_factor"] > 0
    assert result["policy_commands"] >= 8  # 10 Hz over one second, first tick after inputs
    assert result["targets"]["realtime_factor"]["limit"] == 3.0
    assert {"inference", "observation", "total"} <= set(result["stage_latency_ms"])
