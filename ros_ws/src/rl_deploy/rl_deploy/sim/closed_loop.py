"""Closed-loop episodes: the MuJoCo host and the real pipeline (and guard) on the sim clock.

Every message crosses as CDR bytes in both directions, as over DDS, so this is the stack a robot
runs minus the transport. `rl-deploy sim` (modes gt and stack) and `make demo` run it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rl_deploy.config import PipelineConfig
from rl_deploy.drift import DriftMonitor
from rl_deploy.io import Output
from rl_deploy.perception.runner import YoloSegRunner
from rl_deploy.pipeline import Pipeline, TickRecord
from rl_deploy.policy import Policy
from rl_deploy.replay.writer import McapWriter
from rl_deploy.safety import SafetyLimits
from rl_deploy.sim.host import EpisodeStatus, MujocoSimHost
from rl_deploy.sim.spec import SceneSpec

SNAPSHOT_PERIOD_S = 1.0  # image strip: one frame per second of sim time, thinned at the end
THUMBNAIL_STRIDE = 4  # 640x480 -> 160x120 in the strip


@dataclass(frozen=True)
class Snapshot:
    """What the stack saw at one control step, thumbnail-sized."""

    t_s: float  # since the episode start
    rgb_u8: npt.NDArray[np.uint8]  # (h, w, 3)
    depth_m: npt.NDArray[np.float32]  # (h, w)
    mask_u8: npt.NDArray[np.uint8]  # (h, w) the target mask the policy got, {0, 1}


@dataclass
class EpisodeResult:
    """One closed-loop episode; `to_json` drops the arrays."""

    seed: int
    target_class: str
    success: bool
    elapsed_s: float  # sim time until success or the time limit
    collisions: int
    path_length_m: float  # base travel
    shortest_path_m: float  # base travel a perfect run needs (see `shortest_path_m`)
    spl: float  # success weighted by shortest / max(taken, shortest)
    ticks: int
    zero_commands: dict[str, int]
    drift: dict[str, float]  # input -> highest drift score seen during the episode
    trajectory_xy: npt.NDArray[np.float64]  # (T, 2) ground-truth base positions, map frame
    object_xy: npt.NDArray[np.float64]  # (K, 2) objects of the episode
    target_index: int
    snapshots: list[Snapshot] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        keep = (
            "seed",
            "target_class",
            "success",
            "elapsed_s",
            "collisions",
            "path_length_m",
            "shortest_path_m",
            "spl",
            "ticks",
            "zero_commands",
            "drift",
        )
        values = {key: getattr(self, key) for key in keep}
        for key in ("elapsed_s", "path_length_m", "shortest_path_m", "spl"):
            values[key] = round(values[key], 4)
        values["drift"] = {k: round(v, 4) for k, v in self.drift.items()}
        return values


def reach_m(scene: SceneSpec) -> float:
    """How far ahead of base_link a target can be and still count as reached."""
    arm = scene.robot.arm
    return arm.ee_reach_m + arm.extension.upper + scene.task.success_distance_m


def shortest_path_m(scene: SceneSpec, start_distance_m: float) -> float:
    """Straight-line base travel until the target is within reach (the SPL reference; obstacles
    are ignored, so SPL errs on the generous side)."""
    return max(start_distance_m - reach_m(scene), 0.0)


def spl(success: bool, shortest_m: float, taken_m: float) -> float:
    if not success:
        return 0.0
    if shortest_m <= 0.0:
        return 1.0
    return shortest_m / max(taken_m, shortest_m)


class EpisodeRecorder:
    """Everything that crossed between simulator and stack, one rosbag2-compatible .mcap per
    episode, logged at the time the stack received it (`rl-deploy replay` reproduces the run)."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        out_dir.mkdir(parents=True, exist_ok=True)
        self._writer: McapWriter | None = None
        self.paths: list[Path] = []

    def start(self, name: str, topics: dict[str, str]) -> None:
        self.stop()
        path = self.out_dir / f"{name}.mcap"
        self._writer = McapWriter(path)
        for topic, msgtype in topics.items():
            self._writer.add_topic(topic, msgtype)
        self.paths.append(path)

    def write(self, outputs: list[Output], log_time_ns: int) -> None:
        if self._writer is None:
            return
        for output in outputs:
            if not self._writer.has_topic(output.topic):
                self._writer.add_topic(output.topic, output.msgtype)
            self._writer.write(output.topic, log_time_ns, output.data)

    def stop(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class EpisodeTracker:
    """Bookkeeping of one episode on a host: ground-truth trajectory, image strip, drift peaks;
    `result` turns it into an EpisodeResult. Shared by the in-process loop and the sim node."""

    def __init__(self, host: MujocoSimHost, snapshots: int = 4) -> None:
        self.host, self.snapshots = host, snapshots
        layout = host.layout
        if layout is None:
            raise RuntimeError("reset the host before tracking an episode")
        self.layout = layout
        self.start_ns = host.now_ns
        self.trajectory = [(layout.start_pose.x, layout.start_pose.y)]
        self.drift: dict[str, float] = {}
        self.frames: list[Snapshot] = []
        self._next_snapshot_s = 0.0

    def after_step(
        self,
        used: Callable[[], tuple[npt.NDArray[np.float32] | None, npt.NDArray[np.uint8] | None]],
        drift: dict[str, float] | None = None,
    ) -> EpisodeStatus:
        """Record the state after a host step; `used()`: the depth and target mask the stack
        used (asked for only when a snapshot is due)."""
        status = self.host.status()
        truth = self.host.world.base_pose()
        self.trajectory.append((truth.x, truth.y))
        for name, score in (drift or {}).items():
            self.drift[name] = max(self.drift.get(name, 0.0), score)
        t_s = (self.host.now_ns - self.start_ns) / 1e9
        due = t_s >= self._next_snapshot_s or status.done
        depth_m, mask_u8 = used() if due else (None, None)
        if depth_m is not None and mask_u8 is not None:
            self.frames.append(self._snapshot(t_s, depth_m, mask_u8))
            self._next_snapshot_s = t_s + SNAPSHOT_PERIOD_S
        return status

    def _snapshot(
        self, t_s: float, depth_m: npt.NDArray[np.float32], mask_u8: npt.NDArray[np.uint8]
    ) -> Snapshot:
        frame = self.host.last_frame
        rgb = frame.rgb_u8 if frame is not None else None
        if rgb is None:
            rgb = self.host.render(rgb=True).rgb_u8
        assert rgb is not None
        step = THUMBNAIL_STRIDE
        return Snapshot(
            t_s=t_s,
            rgb_u8=np.ascontiguousarray(rgb[::step, ::step]),
            depth_m=np.ascontiguousarray(depth_m[::step, ::step]),
            mask_u8=np.ascontiguousarray(mask_u8[::step, ::step]),
        )

    def result(self, ticks: int, zero_commands: dict[str, int]) -> EpisodeResult:
        status = self.host.status()
        shortest = shortest_path_m(self.host.scene, status.start_distance_m)
        return EpisodeResult(
            seed=self.layout.seed,
            target_class=self.layout.target_class,
            success=status.success,
            elapsed_s=status.elapsed_s,
            collisions=status.collisions,
            path_length_m=status.path_length_m,
            shortest_path_m=shortest,
            spl=spl(status.success, shortest, status.path_length_m),
            ticks=ticks,
            zero_commands={k: v for k, v in zero_commands.items() if v},
            drift=dict(self.drift),
            trajectory_xy=np.array(self.trajectory),
            object_xy=np.array(self.layout.object_xy),
            target_index=self.layout.target_index,
            snapshots=_thin(self.frames, self.snapshots),
        )


class ClosedLoop:
    """Runs seeded episodes of `host` against a pipeline built per episode for its target."""

    def __init__(
        self,
        host: MujocoSimHost,
        config: PipelineConfig,
        policy: Policy,
        limits: SafetyLimits,
        *,
        detector: YoloSegRunner | None = None,
        snapshots: int = 4,
    ) -> None:
        self.host, self.config, self.policy, self.limits = host, config, policy, limits
        self.detector = detector
        self.snapshots = snapshots
        self.pipeline: Pipeline | None = None

    def make_pipeline(self, target_class: str) -> Pipeline:
        config = dataclasses.replace(
            self.config, policy=dataclasses.replace(self.config.policy, target_class=target_class)
        )
        return Pipeline(config, self.policy, self.limits, detector=self.detector)

    def run_episode(self, seed: int, recorder: EpisodeRecorder | None = None) -> EpisodeResult:
        host = self.host
        layout = host.reset(seed)
        pipeline = self.make_pipeline(layout.target_class)
        self.pipeline = pipeline
        command_topics = host.command_topics()
        period_s = pipeline.control_period_ns / 1e9
        if recorder is not None:
            recorder.start(f"episode_{seed}", {**host.output_topics(), **pipeline.publications})
            recorder.write(host.static_outputs(), host.now_ns)
        for output in host.static_outputs():
            pipeline.feed(output.topic, output.data, host.now_ns)
        tracker = EpisodeTracker(host, self.snapshots)
        status = host.status()
        while not status.done:
            outputs = host.step(period_s)
            now_ns = host.now_ns
            for output in outputs:
                pipeline.feed(output.topic, output.data, now_ns)
            commands = pipeline.tick(now_ns)
            for output in commands:
                if output.topic in command_topics:
                    host.handle(output.topic, output.data, output.msgtype)
            if recorder is not None:
                recorder.write(outputs + commands, now_ns)
            record = pipeline.last_tick
            assert record is not None
            status = tracker.after_step(record_images(record), _drift_scores(pipeline))
        if recorder is not None:
            recorder.stop()
        return tracker.result(pipeline.stats.ticks, dict(pipeline.stats.zero_commands))


def _drift_scores(pipeline: Pipeline) -> dict[str, float]:
    monitor = getattr(pipeline, "drift", None)
    if not isinstance(monitor, DriftMonitor):
        return {}
    return {name: score.score for name, score in monitor.scores().items()}


def _thin(frames: list[Snapshot], count: int) -> list[Snapshot]:
    """`count` frames spread over the episode, first and last included."""
    if len(frames) <= count:
        return frames
    picks = np.unique(np.round(np.linspace(0, len(frames) - 1, count)).astype(int))
    return [frames[int(i)] for i in picks]


def episode_seeds(first_seed: int, episodes: int) -> list[int]:
    return [first_seed + k for k in range(episodes)]


def summarise(results: list[EpisodeResult], mode: str) -> dict[str, Any]:
    """The JSON of `rl-deploy sim`: success rate, SPL, time, collisions over the episodes."""
    count = len(results)
    successes = [r for r in results if r.success]
    return {
        "mode": mode,
        "episodes": count,
        "success_rate": round(len(successes) / count, 4) if count else 0.0,
        "spl": round(float(np.mean([r.spl for r in results])), 4) if count else 0.0,
        # Time to reach, over successful episodes (failed ones all end at the time limit).
        "mean_time_s": round(float(np.mean([r.elapsed_s for r in successes])), 3)
        if successes
        else None,
        "collisions": round(float(np.mean([r.collisions for r in results])), 4) if count else 0.0,
    }


_RESULT_FIELDS = (
    "seed",
    "target_class",
    "success",
    "elapsed_s",
    "collisions",
    "path_length_m",
    "shortest_path_m",
    "spl",
    "ticks",
    "zero_commands",
    "drift",
    "target_index",
)


def save_results(results: list[EpisodeResult], path: Path) -> None:
    """Episode results as one .npz (no pickles): a JSON index plus the arrays of each episode."""
    arrays: dict[str, npt.NDArray[Any]] = {}
    index = []
    for k, result in enumerate(results):
        entry = {name: getattr(result, name) for name in _RESULT_FIELDS}
        entry["snapshot_t_s"] = [shot.t_s for shot in result.snapshots]
        index.append(entry)
        arrays[f"e{k}_trajectory_xy"] = result.trajectory_xy
        arrays[f"e{k}_object_xy"] = result.object_xy
        if result.snapshots:
            arrays[f"e{k}_rgb"] = np.stack([shot.rgb_u8 for shot in result.snapshots])
            arrays[f"e{k}_depth"] = np.stack([shot.depth_m for shot in result.snapshots])
            arrays[f"e{k}_mask"] = np.stack([shot.mask_u8 for shot in result.snapshots])
    arrays["index"] = np.array(json.dumps(index))
    np.savez_compressed(path, allow_pickle=False, **arrays)


def load_results(path: Path) -> list[EpisodeResult]:
    with np.load(path, allow_pickle=False) as data:
        index = json.loads(str(data["index"]))
        results = []
        for k, entry in enumerate(index):
            times = entry.pop("snapshot_t_s")
            snapshots = [
                Snapshot(t, data[f"e{k}_rgb"][i], data[f"e{k}_depth"][i], data[f"e{k}_mask"][i])
                for i, t in enumerate(times)
            ]
            results.append(
                EpisodeResult(
                    **entry,
                    trajectory_xy=data[f"e{k}_trajectory_xy"],
                    object_xy=data[f"e{k}_object_xy"],
                    snapshots=snapshots,
                )
            )
    return results


def record_images(
    record: TickRecord,
) -> Callable[[], tuple[npt.NDArray[np.float32] | None, npt.NDArray[np.uint8] | None]]:
    """The depth and target mask a step used, converted only if someone asks."""
    return lambda: (record.depth_m, record.mask_u8)
