"""Nodes SIGKILLed on real DDS while the robot moves: command_guard zeroes within two policy
periods when policy_node dies, policy_node zeroes within its camera timeout when perception_node
dies. Two trials each here; `rl-deploy bench faults --dds on` runs more."""

from __future__ import annotations

import pytest
from fault_helpers import REPO, repo_config

from rl_deploy.bench.fault_processes import process_faults

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_killed_nodes_leave_the_robot_stopped_in_time(monkeypatch):
    monkeypatch.chdir(REPO)  # the nodes read config/ and models/ from the working directory
    result = process_faults(repo_config(), trials=2, required=True)
    assert "skipped" not in result
    faults = result["faults"]
    assert set(faults) == {"policy_node_sigkill", "perception_node_sigkill"}
    for name, fault in faults.items():
        assert fault["trials"] == fault["zeroed_in_time"] == 2, (name, fault)
        assert all(t is not None and t > 0 for t in fault["times_ms"])
    assert faults["policy_node_sigkill"]["deadline_ms"] == 200.0  # two 10 Hz periods
    assert faults["perception_node_sigkill"]["deadline_ms"] == 600.0  # 0.5 s + one period
