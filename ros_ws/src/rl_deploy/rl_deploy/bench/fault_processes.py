"""Fault trials with real processes on real DDS: a node is SIGKILLed while the robot moves.

policy_node killed → command_guard's output is zero within two control periods; perception_node
killed → policy_node's command is zero within the camera timeout plus one period. A trial's time
runs from the SIGKILL to the moment the node sent its first zero (the DDS source timestamp, on
the same wall clock), so no pause of this measuring process lengthens it.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rl_deploy import codec
from rl_deploy.bench.dds import (
    START_TIMEOUT_S,
    NodeProcess,
    RobotSide,
    launch,
    new_domain_id,
    parameters,
    ros_env,
    unavailable,
)
from rl_deploy.bench.world import SyntheticWorld
from rl_deploy.codec.typestore import TWIST
from rl_deploy.config import PipelineConfig
from rl_deploy.errors import ConfigError
from rl_deploy.policy import load_card
from rl_deploy.replay.synthetic import SyntheticBagSpec

POLICY_PARAMS = Path("config/policy_node.yaml")
GUARD_PARAMS = Path("config/command_guard.yaml")
PERCEPTION_PARAMS = Path("config/perception_node.yaml")
GUARD_OUTPUT = "/cmd_vel"
WATCH_AFTER_S = 0.5  # a zero must stay zero this long
SPEC = SyntheticBagSpec(width=320, height=240)  # DDS carries less; the faults are the same


def process_faults(config: PipelineConfig, trials: int, required: bool) -> dict[str, Any]:
    problem = unavailable()
    if problem is not None:
        if required:
            raise ConfigError(f"bench faults --dds on: {problem}")
        return {"skipped": problem}
    period_s = 1.0 / load_card(config.resolve(config.policy.card)).control_rate_hz
    rng = random.Random(1)
    results: dict[str, Any] = {"faults": {}}
    with tempfile.TemporaryDirectory(prefix="rl_deploy_bench_faults_") as logs:
        results["faults"]["policy_node_sigkill"] = _policy_kill(
            config, trials, period_s, rng, Path(logs)
        )
        detector_model = config.resolve(config.detector.model)
        if detector_model.is_file() and PERCEPTION_PARAMS.is_file():
            results["faults"]["perception_node_sigkill"] = _perception_kill(
                config, trials, period_s, rng, Path(logs)
            )
        else:
            results["skipped"] = {
                "perception_node_sigkill": f"no detector model at {detector_model}"
            }
    return results


def _twists(robot: RobotSide, topic: str, since_ns: int) -> list[tuple[int, float, float]]:
    """(sent_ns, linear.x, angular.z) of the twists sent since `since_ns` (wall clock)."""
    sent = []
    for sent_ns, data in robot.sent(topic, since_ns):
        twist = codec.decode(data, TWIST)
        sent.append((sent_ns, float(twist.linear.x), float(twist.angular.z)))
    return sent


def _wait(condition: Callable[[], Any], timeout_s: float) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.005)
    return None


def _trial(
    robot: RobotSide,
    topic: str,
    victim: Callable[[], NodeProcess],
    *,
    deadline_s: float,
    phase_s: float,
) -> dict[str, Any]:
    """Start the victim, wait for motion on `topic`, kill it, time the first zero sent."""
    started_ns = time.time_ns()
    node = victim()
    moving = _wait(
        lambda: (
            not node.alive() or any(lin or ang for _, lin, ang in _twists(robot, topic, started_ns))
        ),
        START_TIMEOUT_S,
    )
    if not moving or not node.alive():
        raise ConfigError(f"no motion on {topic} after starting {node.name}:\n{node.stop()}")
    time.sleep(phase_s)  # kill at a random phase of the control period
    killed_ns = node.kill()
    zero = _wait(
        lambda: next(
            (t for t, lin, ang in _twists(robot, topic, killed_ns) if lin == ang == 0.0), None
        ),
        deadline_s + 2.0,
    )
    time.sleep(WATCH_AFTER_S)
    after = [(t, lin, ang) for t, lin, ang in _twists(robot, topic, killed_ns) if zero and t > zero]
    time_s = (zero - killed_ns) / 1e9 if zero else None
    stayed = bool(after) and all(lin == ang == 0.0 for _, lin, ang in after)
    return {
        "time_to_zero_ms": round(time_s * 1e3, 3) if time_s is not None else None,
        "zeroed_in_time": time_s is not None and time_s <= deadline_s and stayed,
    }


def _summary(trials: list[dict[str, Any]], deadline_s: float, what: str) -> dict[str, Any]:
    times = [t["time_to_zero_ms"] for t in trials]
    worst = max(times) if times and None not in times else None
    return {
        "what": what,
        "trials": len(trials),
        "zeroed_in_time": sum(t["zeroed_in_time"] for t in trials),
        "worst_time_to_zero_ms": worst,
        "deadline_ms": round(deadline_s * 1e3, 3),
        "worst_over_deadline": round(worst / (deadline_s * 1e3), 3) if worst else None,
        "times_ms": times,
    }


def _kill_trials(
    robot: RobotSide,
    topic: str,
    start_victim: Callable[[], NodeProcess],
    *,
    trials: int,
    deadline_s: float,
    phases_s: Callable[[], float],
) -> list[dict[str, Any]]:
    results = []
    robot.listen(topic, TWIST, best_effort=True)  # the time to the first zero is measured
    robot.start_playing()
    try:
        for _ in range(trials):
            results.append(
                _trial(robot, topic, start_victim, deadline_s=deadline_s, phase_s=phases_s())
            )
    finally:
        robot.stop_playing()
    return results


def _policy_kill(
    config: PipelineConfig, trials: int, period_s: float, rng: random.Random, logs: Path
) -> dict[str, Any]:
    domain_id = new_domain_id()
    env = ros_env(domain_id, udp_only=True)
    guard_args = ["--params-file", str(GUARD_PARAMS), "-r", f"cmd_vel_in:={config.topics.cmd_vel}"]
    guard_args += ["-r", f"arm_command_in:={config.topics.arm_command}"]
    policy_args = [
        "--params-file",
        str(POLICY_PARAMS),
        *parameters({"masks.source": "segmentation"}),
    ]
    guard = launch("command_guard", guard_args, env, logs)
    robot = RobotSide(
        domain_id, config, SyntheticWorld(SPEC, config.topics, frames=3, rgb=False), udp_only=True
    )
    try:
        results = _kill_trials(
            robot,
            GUARD_OUTPUT,
            lambda: launch("policy_node", policy_args, env, logs),
            trials=trials,
            deadline_s=2 * period_s,
            phases_s=lambda: rng.uniform(0, period_s),
        )
    finally:
        robot.close()
        guard.stop()
    return _summary(results, 2 * period_s, "policy_node SIGKILLed: command_guard's output zero")


def _perception_kill(
    config: PipelineConfig, trials: int, period_s: float, rng: random.Random, logs: Path
) -> dict[str, Any]:
    domain_id = new_domain_id()
    env = ros_env(domain_id, udp_only=True)
    policy_args = ["--params-file", str(POLICY_PARAMS), *parameters({"masks.source": "topics"})]
    perception_args = ["--params-file", str(PERCEPTION_PARAMS)]
    policy = launch("policy_node", policy_args, env, logs)
    robot = RobotSide(
        domain_id, config, SyntheticWorld(SPEC, config.topics, frames=3, rgb=True), udp_only=True
    )
    deadline_s = config.timeouts.camera_s + period_s
    try:
        results = _kill_trials(
            robot,
            config.topics.cmd_vel,
            lambda: launch("perception_node", perception_args, env, logs),
            trials=trials,
            deadline_s=deadline_s,
            phases_s=lambda: rng.uniform(0, period_s),
        )
    finally:
        robot.close()
        policy.stop()
    return _summary(results, deadline_s, "perception_node SIGKILLed: policy_node's command zero")
