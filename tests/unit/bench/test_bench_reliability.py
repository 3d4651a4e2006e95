"""`rl-deploy bench faults | fuzz | soak` on tiny inputs: the JSON they print and their verdict."""

from __future__ import annotations

from bench_helpers import run_bench


def test_faults_report_trials_worst_time_and_refusals(capsys, repo, monkeypatch):
    monkeypatch.chdir(repo)
    argv = ["faults", "--trials", "2", "--dds", "off", "--width", "64", "--height", "48"]
    code, result = run_bench(capsys, *argv, "--faults", "camera_stops", "estop_pressed")
    assert code == 0 and result["ok"]
    assert set(result["faults"]) == {"camera_stops", "estop_pressed"}
    for fault in result["faults"].values():
        assert fault["trials"] == fault["zeroed_in_time"] == 2
        assert fault["worst_time_to_zero_ms"] > 0
        assert 0 < fault["worst_zeroing_tick_after_ms"] <= fault["deadline_ms"]  # bag clock
        assert fault["failures"] == []
    assert result["faults"]["camera_stops"]["deadline_ms"] == 600.0  # 0.5 s timeout + 100 ms
    assert result["faults"]["estop_pressed"]["zero_reasons"] == {"estop": 2}
    assert all(r["refused"] for r in result["refusals"].values())
    assert "process_faults" not in result


def test_fuzz_counts_inputs_per_target_and_finds_no_failure(capsys, repo, monkeypatch):
    monkeypatch.chdir(repo)
    code, result = run_bench(capsys, "fuzz", "--seconds", "3", "--no-machine")
    assert code == 0 and result["ok"] and result["failures"] == 0
    targets = result["targets"]
    assert set(targets) == {"codec", "image_fields", "card", "observation", "pipeline"}
    assert all(t["tried"] >= 1 for t in targets.values())
    assert result["inputs_tried"] == sum(t["tried"] for t in targets.values())
    assert {p["masks"] for p in result["pipelines"]} >= {"segmentation", "topics"}


def test_soak_reports_rss_and_drift_per_stage(capsys, repo, monkeypatch):
    monkeypatch.chdir(repo)
    argv = ["soak", "--minutes", "0.25", "--masks", "segmentation", "--width", "64"]
    code, result = run_bench(capsys, *argv, "--height", "48", "--no-machine")
    assert code == 0 and result["ok"]
    assert result["policy_steps"] + result["zero_steps"] == 149  # 10 Hz ticks strictly within 15 s
    assert result["rss_baseline_mb"] > 0 and result["rss_growth_mb"] is not None
    assert {"observation", "inference", "total"} <= set(result["stage_drift"])
    for drift in result["stage_drift"].values():
        assert drift["first_decile_p50_ms"] > 0 and drift["last_over_first"] > 0
    assert result["targets"]["rss_growth_mb"]["limit"] == 20.0
