"""`rl-deploy bench policy` on the shipped cards, a handful of steps."""

from __future__ import annotations

from bench_helpers import assert_summary, run_bench


def test_each_card_reports_its_step_stages_and_the_bare_run(capsys, repo, monkeypatch):
    monkeypatch.chdir(repo)
    code, result = run_bench(
        capsys, "policy", "--rounds", "4", "--width", "160", "--height", "120", "--no-machine"
    )
    assert code == 0
    assert [r["card"] for r in result["results"]] == ["example_reach", "ovmm_nav"]
    for row in result["results"]:
        assert row["provider"] == "CPUExecutionProvider"
        assert_summary(row["step_ms"])
        assert_summary(row["bare_run_ms"])
        assert set(row["stage_p50_ms"]) == {"observation", "inference", "decode"}
        assert row["overhead_p50_ms"] == round(row["step_ms"]["p50"] - row["bare_run_ms"]["p50"], 4)
        assert row["ratio"] > 0
