"""`rl-deploy replay`: run the pipeline over a rosbag2 file on the bag's own clock.

Deterministic and as fast as the machine allows: control steps happen at the card's rate in bag
time, between the messages that precede them, exactly as a live node's timer would see them.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from rl_deploy.config import PipelineConfig
from rl_deploy.errors import BagError
from rl_deploy.pipeline import Pipeline, TickRecord
from rl_deploy.replay.bag import Bag, without_long_silences
from rl_deploy.replay.writer import McapWriter

REPORT_FRAMES = 6  # mask overlays kept for the report
RECORDED_PREFIX = "/recorded"  # where a bag's own copy of a stack output goes in output.mcap
OUTPUT_FILES = ("output.mcap", "summary.json", "report.html")


@dataclass
class ReplayResult:
    summary: dict[str, Any]
    ticks: list[TickRecord] = field(default_factory=list)
    frames: list[tuple[float, npt.NDArray[np.float32], npt.NDArray[np.uint8]]] = field(
        default_factory=list
    )  # (time s, depth m, target mask) samples for the report


def replay_config(config: PipelineConfig, spin_wait: bool = False) -> PipelineConfig:
    """The config as a replay runs it: the detector's onnxruntime workers sleep between runs
    unless `spin_wait`.

    A replay is a batch job: the output file's writer thread (replay.writer) needs the core that
    spinning workers would hold between detector runs. A 20 s 30 Hz RGB-D bag on a 2-core EPYC
    VM replayed 3.5-3.9 x real time with sleeping workers, 2.6-3.0 x with spinning ones; the
    detector's stage latency in the summary then reads about a quarter longer than with
    spinning ones (the code's default; the shipped node params let them sleep too).
    """
    detector = dataclasses.replace(config.detector, spin_wait=spin_wait)
    return dataclasses.replace(config, detector=detector)


def replay(
    bag_path: str | Path,
    out_dir: str | Path,
    config: PipelineConfig,
    *,
    progress: bool = True,
    pipeline: Pipeline | None = None,
    spin_wait: bool = False,
) -> ReplayResult:
    """Replay `bag_path` through the pipeline; write output.mcap and summary.json to `out_dir`.

    The detector runs as `replay_config` sets it, unless a `pipeline` is given. Raises BagError
    when the bag cannot drive the pipeline, breaks off or reads short of its metadata; the
    outputs of what was read are still written, summary.json included. So they are when the run
    is interrupted (KeyboardInterrupt, re-raised): summary.json then says `"interrupted": true`.
    """
    bag = Bag(bag_path)
    out = _prepared_out_dir(bag, Path(out_dir))
    pipeline = pipeline or Pipeline.from_config(replay_config(config, spin_wait))
    _check_topics(bag, pipeline)
    wall_start = time.perf_counter()
    failure: str | None = None
    interrupted = False
    with McapWriter(out / "output.mcap") as writer:
        session = _ReplaySession(bag, pipeline, writer)
        try:
            session.run(progress)
        except BagError as err:
            failure = str(err)
        except KeyboardInterrupt:
            interrupted = True
    result = session.result
    result.summary = _summary(session, wall_s=time.perf_counter() - wall_start)
    result.summary["interrupted"] = interrupted
    if failure is None and not interrupted:
        try:
            bag.check_counts(session.seen)
        except BagError as err:
            failure = str(err)
    result.summary["bag_check"] = failure or ("interrupted" if interrupted else "ok")
    (out / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n")
    if interrupted:
        raise KeyboardInterrupt
    if failure is not None:
        raise BagError(failure)
    return result


def _prepared_out_dir(bag: Bag, out: Path) -> Path:
    """`out`, created, without a previous run's outputs. BagError when it cannot hold them or
    when writing there would overwrite the bag being read."""
    if out.exists() and not out.is_dir():
        raise BagError(f"--out {out} is a file; it must be a directory for {OUTPUT_FILES}")
    inputs = {file.resolve() for file in bag.files}
    clashing = [name for name in OUTPUT_FILES if (out / name).resolve() in inputs]
    if clashing:
        raise BagError(
            f"--out {out}: writing {clashing[0]} there would overwrite the bag being replayed; "
            "choose another directory"
        )
    out.mkdir(parents=True, exist_ok=True)
    for name in OUTPUT_FILES:  # a stale summary must not pass for this run's
        (out / name).unlink(missing_ok=True)
    return out


class _ReplaySession:
    """Feeds messages in log-time order and runs the control ticks that fall between them."""

    def __init__(self, bag: Bag, pipeline: Pipeline, writer: McapWriter) -> None:
        self.bag, self.pipeline, self.writer = bag, pipeline, writer
        self.result = ReplayResult(summary={})
        self.seen: Counter[str] = Counter()
        self.first_ns = self.last_ns = 0
        self._next_tick_ns: int | None = None
        self._next_sample_ns = 0
        self._sample_every_ns = max(bag.duration_ns, 1) // REPORT_FRAMES
        for name, msgtype in pipeline.publications.items():
            writer.add_topic(name, msgtype)
        # Every input topic is copied, a stack output's namesake under /recorded so that the two
        # never share a channel; one whose type has no definition anywhere keeps its type name
        # only (ros2 bag play needs no more; Foxglove cannot decode it).
        self.copied_as: dict[str, str] = {}
        self.copied_without_definition: list[str] = []
        for topic in bag.topics.values():
            moved = topic.name in pipeline.publications
            copy = RECORDED_PREFIX + topic.name if moved else topic.name
            try:
                writer.add_topic(copy, topic.msgtype, topic.msgdef)
            except BagError:
                writer.add_topic(copy, topic.msgtype, msgdef="")
                self.copied_without_definition.append(topic.name)
            self.copied_as[topic.name] = copy

    def run(self, progress: bool) -> None:
        with tqdm(total=self.bag.message_count, unit="msg", disable=not progress) as bar:
            # Control ticks run through every silence, as a live node's timer would, up to
            # one that can only be a corrupt log time.
            for message in without_long_silences(self.bag.messages(), self.bag.path):
                if self._next_tick_ns is None:
                    self.first_ns = message.log_time_ns
                    self._next_tick_ns = self.first_ns + self.pipeline.control_period_ns
                self._tick_before(message.log_time_ns)  # a message at t is seen by a tick at t
                self.pipeline.feed(message.topic, message.data, message.log_time_ns)
                self.writer.write(self.copied_as[message.topic], message.log_time_ns, message.data)
                self.seen[message.topic] += 1
                self.last_ns = message.log_time_ns
                bar.update()
        self._tick_before(self.last_ns + 1)

    def _tick_before(self, t_ns: int) -> None:
        while self._next_tick_ns is not None and self._next_tick_ns < t_ns:
            now_ns = self._next_tick_ns
            for output in self.pipeline.tick(now_ns):
                self.writer.write(output.topic, now_ns, output.data)
            record = self.pipeline.last_tick
            assert record is not None
            self.result.ticks.append(_light(record))
            self._maybe_sample(record)
            self._next_tick_ns += self.pipeline.control_period_ns

    def _maybe_sample(self, record: TickRecord) -> None:
        if record.mask_u8 is None or record.depth_m is None or record.now_ns < self._next_sample_ns:
            return
        t_s = (record.now_ns - self.first_ns) / 1e9
        self.result.frames.append((t_s, record.depth_m.copy(), record.mask_u8.copy()))
        self._next_sample_ns = record.now_ns + self._sample_every_ns


def _light(record: TickRecord) -> TickRecord:
    """Drop the image references so a long replay does not keep every frame alive."""
    return TickRecord(
        record.now_ns,
        record.stamp_ns,
        record.command,
        record.zero_reason,
        record.detail,
        record.stage_ms,
        record.pose,
        target_mask=None,
        depth=None,
    )


def _check_topics(bag: Bag, pipeline: Pipeline) -> None:
    """Every input the pipeline needs must be in the bag, with the right type."""
    optional = {pipeline.config.topics.estop, pipeline.config.topics.tf_static}
    problems = []
    for topic, msgtype in pipeline.subscriptions.items():
        found = bag.topics.get(topic)
        if found is None and topic not in optional:
            problems.append(f"{topic} ({msgtype}) is missing")
        elif found is not None and found.msgtype != msgtype:
            problems.append(f"{topic} is {found.msgtype}, expected {msgtype}")
    if problems:
        available = ", ".join(f"{t.name} [{t.msgtype}]" for t in bag.topics.values())
        raise BagError(
            f"bag {bag.path} cannot drive the pipeline: {'; '.join(problems)}. "
            f"The bag has: {available}. Remap with the config's `topics:` section."
        )


def _summary(session: _ReplaySession, wall_s: float) -> dict[str, Any]:
    bag, pipeline, ticks, seen = session.bag, session.pipeline, session.result.ticks, session.seen
    duration_s = (session.last_ns - session.first_ns) / 1e9
    stats = pipeline.stats
    commands = [t.command for t in ticks]
    linear = [abs(c.base.linear_x) for c in commands] + [abs(c.base.linear_y) for c in commands]
    angular = [abs(c.base.angular_z) for c in commands]
    stages = sorted({stage for t in ticks for stage in t.stage_ms})
    latency = {}
    for stage in stages:
        values = np.array([t.stage_ms[stage] for t in ticks if stage in t.stage_ms])
        latency[stage] = {
            "p50": round(float(np.percentile(values, 50)), 4),
            "p99": round(float(np.percentile(values, 99)), 4),
        }
    return {
        "bag": str(bag.path),
        "storage": bag.storage,
        "card": pipeline.policy.card.name,
        "provider": pipeline.policy.runner.provider,
        "detector_spin_wait": (
            pipeline.config.detector.spin_wait
            if pipeline.config.masks.source == "detector"
            else None
        ),
        "duration_s": round(duration_s, 3),
        "wall_s": round(wall_s, 3),
        "realtime_factor": round(duration_s / wall_s, 2) if wall_s > 0 else None,
        "messages_in": dict(seen),
        "recorded_outputs_moved": {
            topic: copy for topic, copy in session.copied_as.items() if topic != copy
        },
        "copied_without_definition": session.copied_without_definition,
        "frames_in": seen.get(pipeline.config.topics.depth, 0),
        "commands_out": stats.commands_out,
        "command_rate_hz": round(stats.commands_out / duration_s, 3) if duration_s else 0.0,
        "max_abs_linear_mps": max(linear, default=0.0),
        "max_abs_angular_rps": max(angular, default=0.0),
        "nonfinite_commands": sum(not c.is_finite() for c in commands),
        "zero_commands_stale": stats.zero_commands["stale"],
        "zero_commands": dict(stats.zero_commands),
        "policy_commands": sum(t.zero_reason is None for t in ticks),
        "decode_errors": {topic: stats.decode_errors.get(topic, 0) for topic in seen},
        "stage_latency_ms": latency,
    }
