"""Helpers of the benchmark tests: run `rl-deploy bench ...` in-process and read its JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rl_deploy.cli import main


def run_bench(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    """Exit code and the one JSON object printed by `rl-deploy bench ARGV`."""
    code = main(["bench", *argv])
    lines = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one JSON line, got {lines!r}"
    return code, json.loads(lines[0])


def assert_summary(value: dict[str, float]) -> None:
    """A latency summary: p50 ≤ p99 ≤ max, all finite and non-negative."""
    assert set(value) == {"p50", "p99", "mean", "max"}
    assert 0 <= value["p50"] <= value["p99"] <= value["max"]
