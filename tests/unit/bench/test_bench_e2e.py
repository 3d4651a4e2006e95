"""`rl-deploy bench e2e` in-process, on a small camera and a short timed run."""

from __future__ import annotations

import math

from bench_helpers import assert_summary, run_bench

from rl_deploy.bench.e2e import BareDetector, around_networks_target
from rl_deploy.perception.model import SPINNING
from rl_deploy.perception.runner import load_runner

STAGES = {"camera_encode", "feed_decode", "masks", "observation", "inference", "decode"}
STAGES |= {"safety", "encode", "after_command", "tick", "stack", "total", "policy_run"}
STAGES |= {"around_networks"}


def test_in_process_stages_latency_and_jitter(capsys, repo, monkeypatch):
    monkeypatch.chdir(repo)
    argv = ["e2e", "--frames", "4", "--seconds", "0.5", "--dds", "off", "--masks", "segmentation"]
    code, result = run_bench(capsys, *argv, "--width", "160", "--height", "120", "--no-machine")
    assert code == 0
    assert (result["card"], result["masks"], result["control_rate_hz"]) == (
        "example_reach",
        "segmentation",
        10.0,
    )
    direct = result["in_process_direct"]
    assert direct["policy_steps"] == 4 and direct["zero_steps"] == 0
    assert set(direct["stage_ms"]) == STAGES
    for stage in direct["stage_ms"].values():
        assert_summary(stage)
    stages = direct["stage_ms"]
    assert stages["around_networks"]["max"] <= stages["stack"]["max"] <= stages["total"]["max"]
    # The policy's session.run is inside its inference stage (the feed checks are around it).
    assert stages["policy_run"]["max"] <= stages["inference"]["max"]
    assert 0 < direct["around_networks_fraction"]["p50"] <= 1
    # Drift statistics follow the command: the processor's share counts them, the latency not.
    assert stages["after_command"]["p50"] > 0
    busy = direct["busy_around_networks_fraction"]
    assert direct["around_networks_fraction"]["p50"] <= busy["p50"] <= 1
    for key in ("in_process_realtime", "in_process_realtime_loaded"):
        timed = result[key]
        assert timed["policy_steps"] >= 1  # up to 4 ticks in 0.5 s at 10 Hz
        for name in ("total_ms", "frame_age_at_tick_ms", "tick_ms", "period_jitter_ms"):
            assert_summary(timed[name])
        # a command answers a frame that came before its tick, and is out after the tick
        assert timed["total_ms"]["max"] >= timed["tick_ms"]["max"] > 0
    assert result["in_process_realtime_loaded"]["load_workers"] >= 1
    assert "dds" not in result
    share = result["targets"]["around_networks_fraction"]
    assert share["limit"] == 0.1 and share["against"] == "networks as run"
    assert share["value"] == direct["around_networks_fraction"]["p50"]


def test_detector_share_is_taken_against_the_bare_network(capsys, repo, monkeypatch):
    monkeypatch.chdir(repo)
    # The world shows its scenes by the wall clock's phase, one a second, and two neighbours
    # hold no target: 12 frames two control periods apart (2.2 s) always reach one that does.
    frames = 12
    argv = ["e2e", "--frames", str(frames), "--seconds", "0.3", "--dds", "off"]
    argv += ["--masks", "detector"]
    code, result = run_bench(capsys, *argv, "--no-machine")
    assert code in (0, 1)  # the share itself may miss its target on a busy machine
    direct = result["in_process_direct"]
    stages = direct["stage_ms"]
    for name in ("detector_run", "detector_bare_network_run"):
        assert_summary(stages[name])
    # Per frame: the stack less the bare network's run and the policy's. A bare run a period
    # away can take longer than the whole frame on a loaded machine: negative is possible.
    around = stages["around_bare_networks"]
    assert math.isfinite(around["p50"]) and around["p50"] <= around["p99"] <= around["max"]
    assert around["max"] < stages["stack"]["max"]
    shares = direct["around_bare_networks_fraction"]
    assert shares["p50"] < 1
    # Frames without instances ran no prototypes: left out of the share, and counted.
    assert 0 <= direct["frames_without_instances"] < frames
    share = result["targets"]["around_networks_fraction"]
    assert share["value"] == shares["p50"]
    assert share["against"] == "bare networks, frames with instances"


def test_a_detector_run_without_instances_leaves_the_share_unmeasured():
    """The composed figure counts the detector's graph as network: a looser reading that must
    not stand in for the share against the bare network."""
    direct = {"around_networks_fraction": {"p50": 0.05}, "frames_without_instances": 4}
    share = around_networks_target(direct, detector_runs=True)
    assert share["value"] is None and share["met"] is False
    with_bare = direct | {"around_bare_networks_fraction": {"p50": 0.12}}
    share = around_networks_target(with_bare, detector_runs=True)
    assert share["value"] == 0.12 and share["met"] is False
    assert around_networks_target(direct, detector_runs=False)["met"] is True


def test_the_bare_network_runs_on_the_detectors_thread_settings(repo):
    """A peer whose workers spin beside a detector whose workers sleep would read faster."""
    runner = load_runner(
        repo / "models/detector/detector.onnx", intra_op_threads=1, spin_wait=False
    )
    options = BareDetector(runner).session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.get_session_config_entry(SPINNING) == "0"
