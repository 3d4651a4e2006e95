"""Faults injected into the real Pipeline on the replay clock: every trial ends in a zero command
within its deadline, and it stays zero while the fault lasts. A few trials each; more with
`rl-deploy bench faults`."""

from __future__ import annotations

import random

import pytest
from fault_helpers import repo_config

from rl_deploy.bench.faults import FAULTS, Fault, Setups, TrialResult, refusal_trials, run_trial

TRIALS = 3


@pytest.fixture(scope="module")
def setups(tmp_path_factory: pytest.TempPathFactory) -> Setups:
    return Setups(repo_config(), tmp_path_factory.mktemp("faults"), (160, 120))


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_every_trial_zeroes_in_time_and_stays_zero(setups: Setups, fault: Fault):
    robot = setups.robot(fault.setup)
    rng = random.Random(fault.name)
    trials = [run_trial(robot, fault, rng) for _ in range(TRIALS)]
    for trial in trials:
        assert trial.zeroed_in_time, trial
        assert trial.zero_reason in fault.expected
        assert trial.stayed_zero
        assert trial.time_to_zero_ms is not None
        assert trial.time_to_zero_ms > 0  # the clock part is checked by zeroed_in_time
    period_ms = robot.pipeline.control_period_ns / 1e6
    assert trials[0].deadline_ms == pytest.approx(fault.timeout(setups.config) * 1e3 + period_ms)


def test_the_robot_drives_again_once_a_fault_ends(setups: Setups):
    robot = setups.robot("default")
    estop = next(f for f in FAULTS if f.name == "estop_pressed")
    assert run_trial(robot, estop, random.Random(0)).zeroed_in_time
    records = robot.run(0.5)  # released at the end of the trial
    assert records[-1].zero_reason is None


def test_a_fault_that_changes_nothing_is_reported_as_never_zero(setups: Setups):
    # the harness itself can fail: an input change that does not matter must not count as zero
    harmless = Fault("nothing", "default", ("stale",), lambda c: c.timeouts.camera_s)
    trial: TrialResult = run_trial(setups.robot("default"), harmless, random.Random(0))
    assert not trial.zeroed_in_time
    assert trial.time_to_zero_ms is None and trial.detail == "never zero"


def test_a_swapped_model_is_refused_before_it_runs(tmp_path):
    refusals = refusal_trials(repo_config(), tmp_path)
    assert set(refusals) == {"model_with_other_inputs", "model_bytes_differ_from_sha256_pin"}
    for name, outcome in refusals.items():
        assert outcome["refused"], name
        assert outcome["error"] == "ModelContractError"
    assert "graph has no such input" in refusals["model_with_other_inputs"]["detail"]
    assert "does not match the pinned" in refusals["model_bytes_differ_from_sha256_pin"]["detail"]
