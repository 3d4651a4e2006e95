"""`rl-deploy bench replay`: how many times faster than real time a 30 Hz RGB-D bag replays.

Peers in the same run: the bag's own duration (real time); reading the bag alone (the storage
floor); and the replay's own loop without the output file, which shows what writing costs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import onnx

from rl_deploy.bench.e2e import bench_config
from rl_deploy.bench.measure import median, positive_float, positive_int, ratio, target
from rl_deploy.config import PipelineConfig
from rl_deploy.pipeline import Pipeline
from rl_deploy.replay import Bag, McapWriter, SyntheticBagSpec, replay, write_synthetic_bag
from rl_deploy.replay.runner import _ReplaySession, replay_config

REALTIME_TARGET = 3.0  # at a 10 Hz control rate with the detector at 320


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bag", type=Path, help="replay this bag instead of a generated one")
    parser.add_argument("--seconds", type=positive_float, default=20.0, help="generated bag length")
    parser.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    parser.add_argument(
        "--width", type=positive_int, default=640, help="generated bag: camera width"
    )
    parser.add_argument(
        "--height", type=positive_int, default=480, help="generated bag: camera height"
    )
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument("--config", type=Path, help="pipeline config or policy_node params YAML")
    parser.add_argument("--masks", choices=("auto", "detector", "segmentation"), default="auto")


def run(args: argparse.Namespace) -> dict[str, Any]:
    config = bench_config(args.config, args.masks, diagnostics_every_tick=False)
    with tempfile.TemporaryDirectory(prefix="rl_deploy_bench_replay_") as work:
        bag_path = args.bag or write_synthetic_bag(
            Path(work) / "bag",
            SyntheticBagSpec(
                seconds=args.seconds, storage=args.storage, width=args.width, height=args.height
            ),
        )
        bag = Bag(bag_path)
        megabytes = round(sum(f.stat().st_size for f in bag.files) / 2**20, 1)
        runs, reads = [], []
        pipeline_only = []
        for index in range(args.repeats):
            reads.append(_read_only_s(bag))
            pipeline_only.append(_pipeline_only_s(bag, replay_config(config)))
            result = replay(bag_path, Path(work) / f"out{index}", config, progress=False)
            runs.append(result.summary)
    duration_s = bag.duration_ns / 1e9
    factors = [s["realtime_factor"] for s in runs]
    read_factor = ratio(duration_s, median(reads), 1)
    last = runs[-1]
    detector = config.resolve(config.detector.model) if config.masks.source == "detector" else None
    return {
        "benchmark": "replay",
        "bag": f"generated {args.width}x{args.height}" if args.bag is None else str(args.bag),
        "storage": bag.storage,
        "bag_seconds": round(duration_s, 3),
        "bag_megabytes": megabytes,
        "card": last["card"],
        "command_rate_hz": last["command_rate_hz"],
        "masks": config.masks.source,
        "detector_input": _input_shape(detector) if detector else None,
        "provider": last["provider"],
        "detector_spin_wait": last["detector_spin_wait"],
        "repeats": args.repeats,
        "realtime_factors": factors,
        "realtime_factor": round(median(factors), 2),
        "read_only_realtime_factor": read_factor,
        "no_output_file_realtime_factor": ratio(duration_s, median(pipeline_only), 2),
        "policy_commands": last["policy_commands"],
        "zero_commands": last["zero_commands"],
        "stage_latency_ms": last["stage_latency_ms"],
        "targets": {"realtime_factor": target(median(factors), REALTIME_TARGET, at_least=True)},
        "ok": all(s["bag_check"] == "ok" and s["nonfinite_commands"] == 0 for s in runs),
    }


def _read_only_s(bag: Bag) -> float:
    """Wall time to read every message of the bag, and nothing else."""
    start = time.perf_counter()
    for _ in bag.messages():
        pass
    return time.perf_counter() - start


class _NoOutput(McapWriter):
    """The replay's writer, minus the file: every write is dropped."""

    def __init__(self) -> None:  # no super().__init__: nothing is opened
        self.counts: dict[str, int] = {}

    def add_topic(self, topic: str, msgtype: str, msgdef: str | None = None) -> None:
        return None

    def has_topic(self, topic: str) -> bool:
        return True

    def write(self, topic: str, log_time_ns: int, data: bytes) -> None:
        return None

    def close(self) -> None:
        return None


def _pipeline_only_s(bag: Bag, config: PipelineConfig) -> float:
    """Wall time of the replay's loop (read, feed, tick on the bag clock) with no output file."""
    session = _ReplaySession(bag, Pipeline.from_config(config), _NoOutput())
    start = time.perf_counter()
    session.run(progress=False)
    return time.perf_counter() - start


def _input_shape(model: Path) -> list[int | str]:
    graph_input = onnx.load(str(model), load_external_data=False).graph.input[0]
    dims = graph_input.type.tensor_type.shape.dim
    return [dim.dim_value or dim.dim_param for dim in dims]
