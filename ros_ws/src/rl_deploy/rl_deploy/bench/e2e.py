"""`rl-deploy bench e2e`: camera header stamp → command published, per stage, p50/p99.

In-process, the pipeline is driven two ways: `direct` (frame fed, then one tick at once: the
cost of each stage) and `realtime` (30 Hz camera and the card's control timer in one thread, as
a node's executor runs them: the latency a robot sees, idle and with every core loaded). Over
DDS (bench.e2e_dds) the same schedule drives policy_node in its own process, for the ratio.
"Around the networks" is the stack's time (CDR in to CDR out) minus the two session.run calls.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import Any

from rl_deploy import codec
from rl_deploy.bench.load import cpu_load
from rl_deploy.bench.measure import (
    TimedSession,
    non_negative_int,
    positive_float,
    positive_int,
    ratio,
    summary,
    target,
)
from rl_deploy.bench.perception import network_session
from rl_deploy.bench.schedule import period_jitter_ms, run_schedule, stream_rates_ns
from rl_deploy.bench.world import SyntheticWorld
from rl_deploy.config import PipelineConfig
from rl_deploy.io import Output
from rl_deploy.perception.letterbox import LetterboxBuffer
from rl_deploy.perception.model import session_options
from rl_deploy.perception.runner import YoloSegRunner
from rl_deploy.pipeline import Pipeline, load_policy, policy_threads
from rl_deploy.replay.synthetic import SyntheticBagSpec
from rl_deploy.safety import load_robot_limits

AROUND_NETWORKS_TARGET = 0.10  # of the per-frame time, in-process
DDS_TARGET = 1.3  # DDS p99 / in-process p99
DEFAULT_PARAMS = Path("config/policy_node.yaml")
DIAGNOSTICS_EVERY_TICK_S = 0.001  # shorter than any control period


@dataclasses.dataclass(frozen=True)
class TimedNetworks:
    """The two networks' sessions, timed: what a frame spends inside onnxruntime."""

    policy: TimedSession
    detector: TimedSession | None
    detector_runner: YoloSegRunner | None = None

    def last_ms(self) -> float:
        return self.policy.last_ms + (self.detector.last_ms if self.detector else 0.0)


class BareDetector:
    """The detector's network as the pipeline runs it (perception.graph.network_as_run: float
    input, raw head output), without the frame's conversion and the first filter composed
    around it, run by onnxruntime alone. Measured beside the pipeline, the share around the
    networks is also taken against it, so that work moved into the graph still counts and a
    faster network does not count as less work around it."""

    def __init__(self, runner: YoloSegRunner) -> None:
        providers = list(runner.session.get_providers())
        config = runner.config
        # The detector's own thread settings: sleeping workers wake up slower than spinning ones.
        options = session_options(config.intra_op_threads, config.spin_wait)
        self.session = network_session(config.model, providers, options, config.sha256)
        self._runner, self._letterbox = runner, LetterboxBuffer()
        self._outputs = list(runner.info.output_names)

    def run_ms(self, rgb_cdr: bytes) -> float:
        """One bare run on an RGB frame (letterboxed untimed): its milliseconds."""
        rgb = codec.decode_image(rgb_cdr).rgb()
        self._letterbox.fill(rgb, self._runner.geometry((rgb.shape[0], rgb.shape[1])))
        start = time.perf_counter()
        self.session.run(self._outputs, {self._runner.info.input_name: self._letterbox.tensor})
        return (time.perf_counter() - start) * 1e3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_PARAMS if DEFAULT_PARAMS.is_file() else None,
        help="policy_node params YAML (or pipeline config): read in-process and by the node",
    )
    parser.add_argument(
        "--masks",
        choices=("auto", "detector", "segmentation"),
        default="auto",
        help="auto: the detector when its model file exists, else ground-truth segmentation",
    )
    parser.add_argument(
        "--frames", type=positive_int, default=200, help="direct steps, one control period apart"
    )
    parser.add_argument(
        "--seconds", type=positive_float, default=20.0, help="length of each timed run"
    )
    parser.add_argument(
        "--load-workers", type=non_negative_int, default=None, help="default: one per core"
    )
    parser.add_argument("--dds", choices=("auto", "on", "off"), default="auto")
    parser.add_argument(
        "--camera-qos",
        default="sensor_data",
        help="policy_node's ros.qos.camera for the DDS run (e.g. sensor_data:1, reliable:5)",
    )
    parser.add_argument(
        "--threads",
        type=non_negative_int,
        default=0,
        help="the detector's ONNX Runtime intra-op threads; 0: its default (the policy's: "
        "policy.intra_op_threads in the config)",
    )
    parser.add_argument(
        "--camera-hz",
        type=positive_float,
        default=29.7,
        help="off 30 Hz on purpose: the frame's phase against the control timer sweeps, so "
        "its age at the tick is spread evenly, as across robots",
    )
    parser.add_argument(
        "--target-mask",
        choices=("off", "on"),
        default="off",
        help="publish the camera-sized debug mask in-process; policy_node does only for a "
        "listener, and the DDS run has none",
    )
    parser.add_argument("--width", type=positive_int, default=640)
    parser.add_argument("--height", type=positive_int, default=480)


def run(args: argparse.Namespace) -> dict[str, Any]:
    # The direct steps run with diagnostics at the file's period, as deployed; the timed and
    # the DDS runs publish them every tick instead (they carry the tick's time).
    configured = bench_config(args.config, args.masks, diagnostics_every_tick=False)
    if args.threads:  # the node gets them too
        detector = dataclasses.replace(configured.detector, intra_op_threads=args.threads)
        configured = dataclasses.replace(configured, detector=detector)
    config = dataclasses.replace(configured, diagnostics_period_s=DIAGNOSTICS_EVERY_TICK_S)
    spec = SyntheticBagSpec(width=args.width, height=args.height, camera_hz=args.camera_hz)
    on_rgb = config.masks.source == "detector"
    world = SyntheticWorld(spec, config.topics, rgb=on_rgb, detector_scenes=on_rgb)
    publish_mask = args.target_mask == "on"
    direct_pipeline, networks = build_pipeline(configured, publish_mask)
    runner = networks.detector_runner
    bare = BareDetector(runner) if runner is not None else None
    direct = measure_direct(direct_pipeline, networks, world, args.frames, bare)
    pipeline, _ = build_pipeline(config, publish_mask)
    realtime = measure_realtime(pipeline, world, args.seconds)
    with cpu_load(args.load_workers) as workers:
        loaded = measure_realtime(pipeline, world, args.seconds)
    loaded["load_workers"] = workers
    result: dict[str, Any] = {
        "benchmark": "e2e",
        "card": pipeline.policy.card.name,
        "control_rate_hz": pipeline.policy.card.control_rate_hz,
        "masks": config.masks.source,
        "camera": f"{args.width}x{args.height} @ {spec.camera_hz:g} Hz",
        "provider": pipeline.policy.runner.provider,
        "intra_op_threads": {
            "detector": args.threads or "onnxruntime default",
            "policy": policy_threads(config) or "onnxruntime default",
        },
        "target_mask_published": publish_mask,
        "in_process_direct": direct,
        "in_process_realtime": realtime,
        "in_process_realtime_loaded": loaded,
    }
    targets = {"around_networks_fraction": around_networks_target(direct, bare is not None)}
    if args.dds != "off":
        from rl_deploy.bench.e2e_dds import measure_dds

        dds = measure_dds(
            config,
            args.config,
            pipeline.control_period_ns,
            args.seconds,
            spec,
            required=args.dds == "on",
            camera_qos=args.camera_qos,
        )
        result["dds"] = dds
        if "total_ms" in dds:
            dds_ratio = ratio(dds["total_ms"]["p99"], realtime["total_ms"]["p99"])
            result["dds_over_in_process_p99"] = dds_ratio
            targets["dds_over_in_process_p99"] = target(dds_ratio, DDS_TARGET, at_least=False)
    result["targets"] = targets
    result["ok"] = direct["policy_steps"] > 0 and realtime["policy_steps"] > 0
    return result


def around_networks_target(direct: dict[str, Any], detector_runs: bool) -> dict[str, Any]:
    """The share around the networks against its target, saying which networks it counts.

    With a detector, against its bare network: work moved into its graph still counts. If no
    frame held an instance there is no such share, and the target reads unmeasured rather
    than falling back to the looser composed figure.
    """
    if detector_runs:
        shares = direct.get("around_bare_networks_fraction")
        against = "bare networks, frames with instances"
    else:
        shares = direct["around_networks_fraction"]
        against = "networks as run"
    share = None if shares is None else shares["p50"]
    return target(share, AROUND_NETWORKS_TARGET, at_least=False) | {"against": against}


def bench_config(
    path: Path | None, masks: str, diagnostics_every_tick: bool = True
) -> PipelineConfig:
    """The params file's pipeline with the chosen mask source and a stamped command.

    diagnostics_every_tick: /diagnostics then carries each tick's time (the DDS run splits its
    latency there); False keeps the file's period, as a deployment runs.
    """
    config = PipelineConfig.from_yaml(path) if path else PipelineConfig()
    source = masks
    if masks == "auto":
        detector_model = config.resolve(config.detector.model)
        source = "detector" if detector_model.is_file() else "segmentation"
    return dataclasses.replace(
        config,
        cmd_vel_stamped=True,  # the command carries the camera stamp it answers
        diagnostics_period_s=(
            DIAGNOSTICS_EVERY_TICK_S if diagnostics_every_tick else config.diagnostics_period_s
        ),
        masks=dataclasses.replace(config.masks, source=source),  # type: ignore[arg-type]
    )


def build_pipeline(
    config: PipelineConfig, publish_target_mask: bool = True
) -> tuple[Pipeline, TimedNetworks]:
    """Pipeline.from_config, with the policy's and the detector's sessions timed: the time
    outside them (feed checks included) is the stack's own."""
    policy = load_policy(config)
    timed_policy = TimedSession(policy.runner.session)
    policy.runner.session = timed_policy
    detector, timed_detector = None, None
    if config.masks.source == "detector":
        model = str(config.resolve(config.detector.model))
        detector = YoloSegRunner(dataclasses.replace(config.detector, model=model))
        timed_detector = TimedSession(detector.session)
        detector.session = timed_detector
    limits = load_robot_limits(config.resolve(config.robot_profile))
    pipeline = Pipeline(config, policy, limits, detector=detector)
    pipeline.publish_target_mask = publish_target_mask
    return pipeline, TimedNetworks(timed_policy, timed_detector, detector)


class CommandClock:
    """A host's publish: notes when the tick hands its command over (what follows the command,
    drift statistics and diagnostics, does not delay the robot)."""

    ns = 0

    def __call__(self, outputs: list[Output]) -> None:
        self.ns = time.time_ns()


def _feed_state(pipeline: Pipeline, world: SyntheticWorld, now_ns: int) -> None:
    for topic, data in (world.joints(now_ns), *world.pose(now_ns)):
        pipeline.feed(topic, data, now_ns)


def _feed_camera(pipeline: Pipeline, world: SyntheticWorld, stamp_ns: int) -> None:
    for topic, data in world.camera(stamp_ns):  # the camera driver serializes its frame
        pipeline.feed(topic, data, time.time_ns())


def measure_direct(
    pipeline: Pipeline,
    networks: TimedNetworks,
    world: SyntheticWorld,
    frames: int,
    bare: BareDetector | None = None,
) -> dict[str, Any]:
    """Feed a frame, tick at once: every stage of one frame, and what the networks take.

    Frames come one control period apart, as ticks do on a robot. Back to back, each network
    ran beside the other's ONNX Runtime workers, which spin on 40-60 ms after a run: the
    detector took 14 ms instead of 10, and the share around the networks read 9 % instead of 14.
    With `bare`, a period before each tick the bare network runs on that moment's frame, under
    the same conditions, and each frame's share is also taken against it. The stack's time ends
    when the tick hands its command over; `busy_around_networks_fraction` also counts what the
    tick does after (drift statistics, diagnostics).
    """
    stages: dict[str, list[float]] = {}
    fractions, busy_fractions, bare_fractions, zeroed, warmup = [], [], [], 0, 5
    without_instances = 0
    period_s = pipeline.control_period_ns / 1e9
    next_s = time.monotonic()
    for index in range(warmup + frames):
        next_s += period_s
        time.sleep(max(0.0, next_s - time.monotonic()))
        bare_ms = None
        if bare is not None:
            bare_ms = bare.run_ms(dict(world.camera(time.time_ns()))[world.topics.rgb])
            next_s += period_s
            time.sleep(max(0.0, next_s - time.monotonic()))
        _feed_state(pipeline, world, time.time_ns())
        stamp_ns = time.time_ns()
        messages = world.camera(stamp_ns)
        encoded_ns = time.time_ns()
        for topic, data in messages:
            pipeline.feed(topic, data, encoded_ns)
        fed_ns = time.time_ns()
        sent = CommandClock()
        pipeline.tick(time.time_ns(), sent)
        record = pipeline.last_tick
        assert record is not None
        if index < warmup:
            continue
        if record.zero_reason is not None or record.stamp_ns != stamp_ns:
            zeroed += 1
            continue
        step = {
            "camera_encode": (encoded_ns - stamp_ns) / 1e6,
            "feed_decode": (fed_ns - encoded_ns) / 1e6,
            **{k: ms for k, ms in record.stage_ms.items() if k not in ("total", "to_command")},
            "tick": record.stage_ms["to_command"],
            "stack": (sent.ns - encoded_ns) / 1e6,  # bytes in → command out: the stack's own
            "total": (sent.ns - stamp_ns) / 1e6,  # from the camera's stamp
        }
        step["policy_run"] = networks.policy.last_ms
        if networks.detector is not None:
            step["detector_run"] = networks.detector.last_ms
        step["around_networks"] = step["stack"] - networks.last_ms()
        fractions.append(step["around_networks"] / step["stack"])
        busy = step["stack"] + step["after_command"]  # the processor's time for the frame
        busy_fractions.append((busy - networks.last_ms()) / busy)
        # A frame without instances ran no mask prototypes (protos_on_demand): less network
        # than the bare one, so it is left out of the share against the bare network.
        runner = networks.detector_runner
        if bare_ms is not None and (runner is None or runner.last_instances > 0):
            step["detector_bare_network_run"] = bare_ms
            step["around_bare_networks"] = step["stack"] - bare_ms - networks.policy.last_ms
            bare_fractions.append(step["around_bare_networks"] / step["stack"])
        elif bare_ms is not None:
            without_instances += 1
        for name, ms in step.items():
            stages.setdefault(name, []).append(ms)
    result = {
        "policy_steps": len(fractions),
        "zero_steps": zeroed,
        "stage_ms": {name: summary(values) for name, values in stages.items()},
        "around_networks_fraction": summary(fractions, 4),
        "busy_around_networks_fraction": summary(busy_fractions, 4),
    }
    if bare_fractions:
        result["around_bare_networks_fraction"] = summary(bare_fractions, 4)
    if bare is not None:
        result["frames_without_instances"] = without_instances
    return result


def feed_stream(pipeline: Pipeline, world: SyntheticWorld, kind: str, woke_ns: int) -> None:
    """One event of the world's streams into the pipeline, stamped when it happens."""
    if kind == "camera":
        _feed_camera(pipeline, world, woke_ns)
    elif kind == "joints":
        pipeline.feed(*world.joints(woke_ns), woke_ns)
    else:
        for topic, data in world.pose(woke_ns):
            pipeline.feed(topic, data, woke_ns)


def measure_realtime(pipeline: Pipeline, world: SyntheticWorld, seconds: float) -> dict[str, Any]:
    """Camera, joints and pose at their rates and the control timer, in one thread on the wall
    clock, as a node's executor runs them: the newest frame at a tick is 0 to 1/camera_hz old."""
    period_ns = pipeline.control_period_ns
    periods_ns = {**stream_rates_ns(world.spec), "tick": period_ns}
    start_ns = time.time_ns()
    first_ns = {**dict.fromkeys(periods_ns, start_ns), "tick": start_ns + period_ns}
    totals: list[float] = []
    ages: list[float] = []
    ticks: list[float] = []
    wakes: list[int] = []
    late: list[float] = []
    zeroed = 0

    def handle(kind: str, deadline_ns: int, woke_ns: int) -> None:
        nonlocal zeroed
        if kind != "tick":
            feed_stream(pipeline, world, kind, woke_ns)
            return
        wakes.append(woke_ns)
        late.append((woke_ns - deadline_ns) / 1e6)
        sent = CommandClock()
        pipeline.tick(woke_ns, sent)
        record = pipeline.last_tick
        assert record is not None
        if record.zero_reason is None:
            totals.append((sent.ns - record.stamp_ns) / 1e6)
            ages.append((woke_ns - record.stamp_ns) / 1e6)
            ticks.append((sent.ns - woke_ns) / 1e6)
        else:
            zeroed += 1

    run_schedule(periods_ns, first_ns, start_ns + round(seconds * 1e9), handle)
    jitter = period_jitter_ms(wakes, period_ns)
    return {
        "seconds": seconds,
        "ticks": len(wakes),
        "ticks_expected": round(seconds * 1e9 / period_ns) - 1,
        "policy_steps": len(totals),
        "zero_steps": zeroed,
        "total_ms": summary(totals),
        "frame_age_at_tick_ms": summary(ages),
        "tick_ms": summary(ticks),
        "tick_lateness_ms": summary(late),
        "period_jitter_ms": summary(jitter),
        "period_jitter_p99_over_period": ratio(summary(jitter)["p99"], period_ns / 1e6, 4),
    }
