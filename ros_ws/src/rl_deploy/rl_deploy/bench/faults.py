"""`rl-deploy bench faults`: inject a fault, measure the time until the command is zero.

In-process trials drive the real Pipeline on a virtual clock (the replay's clock): the fault
starts at a random phase of the control period. The zeroing tick must come no later than the
fault's timeout plus one control period; the time to zero reported adds the wall time that tick
took. Load-time trials check that a swapped model is refused. DDS trials
(bench.fault_processes) kill real processes.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from rl_deploy import codec
from rl_deploy.bench.e2e import DEFAULT_PARAMS, bench_config
from rl_deploy.bench.measure import non_negative_int, positive_int
from rl_deploy.bench.models import nan_policy, other_inputs, write_card_variant
from rl_deploy.bench.world import Message, SyntheticWorld
from rl_deploy.codec.typestore import BOOL
from rl_deploy.config import PipelineConfig
from rl_deploy.errors import RlDeployError
from rl_deploy.pipeline import Pipeline, TickRecord
from rl_deploy.policy import load_card
from rl_deploy.replay.synthetic import SyntheticBagSpec

WARMUP_S = 1.0  # normal input before each fault: the policy must be driving
AFTER_DEADLINE_S = 0.5  # watched after the deadline: the command must stay zero
NAN_JOINT, NAN_TRIGGER = "joint_lift", 0.75  # the NaN policy trips when the lift passes 0.7 m
MASK_CLASS_ID = 1  # the world's cup


@dataclass(frozen=True)
class Fault:
    """One kind of fault, applied to the input streams from the moment it starts."""

    name: str
    setup: str  # which pipeline it runs on: "default", "nan_policy" or "mask_topics"
    expected: tuple[str, ...]  # zero reasons that answer it
    timeout: Callable[[PipelineConfig], float]  # s the pipeline may wait before zeroing
    alter: Callable[[Message, SyntheticWorld], Message | None] = lambda m, _w: m
    inject: tuple[tuple[str, bytes], ...] = ()  # messages at the fault's start
    release: tuple[tuple[str, bytes], ...] = ()  # messages that end the fault after the trial


@dataclass
class TrialResult:
    fault: str
    zeroed_in_time: bool
    time_to_zero_ms: float | None  # clock time to the zeroing tick + its wall time; None: never
    deadline_ms: float  # the zeroing tick's clock time must not exceed this
    zero_reason: str | None
    stayed_zero: bool
    detail: str = ""
    tick_clock_ms: float | None = None  # clock time from the fault to the zeroing tick


def _drop(*topics: Callable[[SyntheticWorld], Sequence[str]]) -> Callable[..., Message | None]:
    def alter(message: Message, world: SyntheticWorld) -> Message | None:
        dropped = {name for pick in topics for name in pick(world)}
        return None if message.topic in dropped else message

    return alter


def _garbage_depth(message: Message, world: SyntheticWorld) -> Message | None:
    if message.topic != world.topics.depth:
        return message
    rng = random.Random(message.t_ns)
    cut = rng.randrange(0, len(message.data))
    if rng.random() < 0.5:  # truncated in flight, or bytes that were never CDR
        return dataclasses.replace(message, data=message.data[:cut])
    return dataclasses.replace(message, data=rng.randbytes(cut))


def _tripping_joints(message: Message, world: SyntheticWorld) -> Message | None:
    if message.topic != world.topics.joint_states:
        return message
    _, data = world.joints(message.t_ns, {NAN_JOINT: NAN_TRIGGER})
    return dataclasses.replace(message, data=data)


def _camera(world: SyntheticWorld) -> list[str]:
    return [topic for topic, _ in world.camera(world.spec.start_ns)]


def _bool(value: bool) -> bytes:
    return codec.encode(codec.message_class(BOOL)(data=value), BOOL)


def _estop_topic() -> str:
    return PipelineConfig().topics.estop


FAULTS: tuple[Fault, ...] = (
    Fault("camera_stops", "default", ("stale", "no_frames"), lambda c: c.timeouts.camera_s,
          _drop(_camera)),
    Fault("joint_states_stop", "default", ("stale",), lambda c: c.timeouts.joints_s,
          _drop(lambda w: [w.topics.joint_states])),
    Fault("pose_stops", "default", ("stale",), lambda c: c.timeouts.pose_s,
          _drop(lambda w: [w.topics.pose])),
    Fault("depth_turns_to_garbage", "default", ("no_frames", "invalid_input"), lambda _c: 0.0,
          _garbage_depth),
    Fault("estop_pressed", "default", ("estop",), lambda _c: 0.0,
          inject=((_estop_topic(), _bool(True)),), release=((_estop_topic(), _bool(False)),)),
    Fault("policy_outputs_nan", "nan_policy", ("nonfinite",), lambda _c: 0.0, _tripping_joints),
    Fault("mask_topics_stop", "mask_topics", ("stale", "no_frames"),
          lambda c: c.timeouts.camera_s, _drop(lambda w: list(w.mask_topics))),
)  # fmt: skip


class VirtualRobot:
    """A pipeline fed by the synthetic world on a virtual clock, ticking at the card's rate."""

    def __init__(self, pipeline: Pipeline, world: SyntheticWorld) -> None:
        self.pipeline, self.world = pipeline, world
        self.now_ns = world.spec.start_ns
        self.next_tick_ns = self.now_ns + pipeline.control_period_ns

    def run(
        self,
        seconds: float,
        alter: Callable[[Message, SyntheticWorld], Message | None] | None = None,
        inject: Sequence[tuple[str, bytes]] = (),
    ) -> list[TickRecord]:
        records: list[TickRecord] = []
        for topic, data in inject:
            self.pipeline.feed(topic, data, self.now_ns)
        for message in self.world.stream(self.now_ns, seconds):
            self._ticks_before(message.t_ns, records)
            changed = alter(message, self.world) if alter else message
            if changed is not None:
                self.pipeline.feed(changed.topic, changed.data, changed.t_ns)
        self.now_ns += round(seconds * 1e9)
        self._ticks_before(self.now_ns, records)
        return records

    def _ticks_before(self, t_ns: int, records: list[TickRecord]) -> None:
        # as the replay: a message at t is seen by a tick at t
        while self.next_tick_ns < t_ns:
            self.pipeline.tick(self.next_tick_ns)
            assert self.pipeline.last_tick is not None
            records.append(self.pipeline.last_tick)
            self.next_tick_ns += self.pipeline.control_period_ns


def run_trial(robot: VirtualRobot, fault: Fault, rng: random.Random) -> TrialResult:
    """Normal input, the fault at a random phase of the control period, then watch."""
    config = robot.pipeline.config
    period_s = robot.pipeline.control_period_ns / 1e9
    deadline_s = fault.timeout(config) + period_s  # the first tick after the timeout
    warm = robot.run(WARMUP_S + rng.uniform(0.0, period_s))
    result = TrialResult(fault.name, False, None, round(deadline_s * 1e3, 3), None, False)
    if not warm or warm[-1].zero_reason is not None:
        result.detail = f"not driving before the fault: {warm[-1].detail if warm else 'no tick'}"
        return result
    fault_ns = robot.now_ns
    records = robot.run(deadline_s + AFTER_DEADLINE_S, fault.alter, fault.inject)
    robot.run(0.0, inject=fault.release)
    index = next((i for i, r in enumerate(records) if r.zero_reason is not None), None)
    if index is None:
        result.detail = "never zero"
        return result
    first = records[index]
    clock_ms = (first.now_ns - fault_ns) / 1e6
    result.tick_clock_ms = round(clock_ms, 3)
    result.time_to_zero_ms = round(clock_ms + first.stage_ms["to_command"], 3)
    result.zero_reason = first.zero_reason
    result.stayed_zero = all(r.zero_reason is not None for r in records[index:])
    result.zeroed_in_time = (
        clock_ms <= result.deadline_ms
        and first.zero_reason in fault.expected
        and result.stayed_zero
    )
    result.detail = first.detail
    return result


@dataclass
class Setups:
    """The pipelines the faults run on, built on first use."""

    config: PipelineConfig
    work: Path
    camera: tuple[int, int]  # (width, height)
    robots: dict[str, VirtualRobot] = field(default_factory=dict)

    def robot(self, setup: str) -> VirtualRobot:
        if setup not in self.robots:
            config, mask_topics = self.config, None
            if setup == "nan_policy":
                card_path = config.resolve(config.policy.card)
                card = load_card(card_path)
                model = nan_policy(card, "joints", NAN_TRIGGER - 0.05)
                variant = write_card_variant(card, card_path, model, self.work)
                config = dataclasses.replace(
                    config, policy=dataclasses.replace(config.policy, card=str(variant))
                )
            elif setup == "mask_topics":
                config = dataclasses.replace(
                    config, masks=dataclasses.replace(config.masks, source="topics")
                )
            pipeline = Pipeline.from_config(config)
            if setup == "mask_topics":
                prefix = config.masks.topic_prefix.rstrip("/")
                mask_topics = {f"{prefix}/{pipeline.target_class}": MASK_CLASS_ID}
            width, height = self.camera
            world = SyntheticWorld(
                SyntheticBagSpec(width=width, height=height),
                config.topics,
                frames=3,
                rgb=config.masks.source == "detector",
                mask_topics=mask_topics,
            )
            self.robots[setup] = VirtualRobot(pipeline, world)
        return self.robots[setup]


def refusal_trials(config: PipelineConfig, work: Path) -> dict[str, dict[str, Any]]:
    """A model swapped under the card is refused before anything runs."""
    card_path = config.resolve(config.policy.card)
    card = load_card(card_path)
    pinned = hashlib.sha256(card.onnx_path.read_bytes()).hexdigest()
    swapped = write_card_variant(card, card_path, other_inputs(card), work)
    retrained = write_card_variant(card, card_path, nan_policy(card, "joints", 0.7), work)
    cases = {
        "model_with_other_inputs": (str(swapped), ""),
        "model_bytes_differ_from_sha256_pin": (str(retrained), pinned),
    }
    results = {}
    for name, (card_file, sha256) in cases.items():
        policy = dataclasses.replace(config.policy, card=card_file, sha256=sha256)
        try:
            Pipeline.from_config(dataclasses.replace(config, policy=policy))
        except RlDeployError as err:
            results[name] = {"refused": True, "error": type(err).__name__, "detail": str(err)[:400]}
        else:
            results[name] = {"refused": False, "error": None, "detail": "loaded"}
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trials", type=positive_int, default=20, help="trials per fault")
    parser.add_argument("--faults", nargs="+", choices=[f.name for f in FAULTS])
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_PARAMS if DEFAULT_PARAMS.is_file() else None,
        help="policy_node params YAML (or pipeline config): in-process and for the nodes",
    )
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--width", type=positive_int, default=640)
    parser.add_argument("--height", type=positive_int, default=480)
    parser.add_argument("--dds", choices=("auto", "on", "off"), default="auto")
    parser.add_argument(
        "--dds-trials", type=positive_int, default=10, help="process kills per fault"
    )


def run(args: argparse.Namespace) -> dict[str, Any]:
    config = bench_config(args.config, "segmentation")
    rng = random.Random(args.seed)
    chosen = [f for f in FAULTS if not args.faults or f.name in args.faults]
    faults: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="rl_deploy_bench_faults_") as work:
        setups = Setups(config, Path(work), (args.width, args.height))
        for fault in chosen:
            robot = setups.robot(fault.setup)
            runs = tqdm(range(args.trials), desc=fault.name, unit="trial", disable=None)
            trials = [run_trial(robot, fault, rng) for _ in runs]
            faults[fault.name] = summarize(trials)
        refusals = refusal_trials(config, Path(work))
    result: dict[str, Any] = {
        "benchmark": "faults",
        "clock": "virtual (bag clock) + wall time of the zeroing tick",
        "trials_per_fault": args.trials,
        "faults": faults,
        "refusals": refusals,
    }
    if args.dds != "off":
        from rl_deploy.bench.fault_processes import process_faults

        result["process_faults"] = process_faults(config, args.dds_trials, args.dds == "on")
    processes = result.get("process_faults", {}).get("faults", {})
    result["ok"] = all(
        f["zeroed_in_time"] == f["trials"] for f in (*faults.values(), *processes.values())
    ) and all(r["refused"] for r in refusals.values())
    return result


def summarize(trials: Sequence[TrialResult]) -> dict[str, Any]:
    times = [t.time_to_zero_ms for t in trials if t.time_to_zero_ms is not None]
    worst = max(times) if len(times) == len(trials) and times else None
    clocks = [t.tick_clock_ms for t in trials if t.tick_clock_ms is not None]
    deadline_ms = trials[0].deadline_ms if trials else 0.0
    reasons: dict[str, int] = {}
    for trial in trials:
        reasons[str(trial.zero_reason)] = reasons.get(str(trial.zero_reason), 0) + 1
    return {
        "trials": len(trials),
        "zeroed_in_time": sum(t.zeroed_in_time for t in trials),
        "worst_time_to_zero_ms": worst,  # to the zeroing tick, plus the time that tick took
        "worst_zeroing_tick_after_ms": max(clocks) if len(clocks) == len(trials) else None,
        "deadline_ms": deadline_ms,  # for the zeroing tick: timeout + one control period
        "zero_reasons": reasons,
        "failures": [dataclasses.asdict(t) for t in trials if not t.zeroed_in_time][:3],
    }
