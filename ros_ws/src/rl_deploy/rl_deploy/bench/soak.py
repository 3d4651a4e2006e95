"""`rl-deploy bench soak`: a long replay-style run (default 30 minutes of 30 Hz camera time, as
fast as the machine goes): does memory grow, does any stage slow down?

The synthetic robot feeds fresh CDR for every message on the bag clock, ticks at the card's
rate; RSS is sampled throughout and each stage's latency compared, first decile to last.
"""

from __future__ import annotations

import argparse
import gc
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from rl_deploy.bench.e2e import DEFAULT_PARAMS, bench_config, build_pipeline
from rl_deploy.bench.faults import VirtualRobot
from rl_deploy.bench.measure import positive_float, positive_int, ratio, rss_bytes, target
from rl_deploy.bench.world import SyntheticWorld
from rl_deploy.replay.synthetic import SyntheticBagSpec

RSS_TARGET_MB = 20.0
CHUNK_S = 10.0  # bag seconds fed between RSS samples
WARMUP_S = 60.0  # allocator and caches settle before the baseline RSS is taken
MB = 2**20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=positive_float, default=30.0, help="bag time to run")
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_PARAMS if DEFAULT_PARAMS.is_file() else None,
        help="policy_node params YAML or pipeline config",
    )
    parser.add_argument("--masks", choices=("auto", "detector", "segmentation"), default="auto")
    parser.add_argument("--width", type=positive_int, default=640)
    parser.add_argument("--height", type=positive_int, default=480)


def run(args: argparse.Namespace) -> dict[str, Any]:
    config = bench_config(args.config, args.masks)
    pipeline, _ = build_pipeline(config)
    spec = SyntheticBagSpec(width=args.width, height=args.height)
    on_rgb = config.masks.source == "detector"
    world = SyntheticWorld(spec, config.topics, rgb=on_rgb, detector_scenes=on_rgb)
    robot = VirtualRobot(pipeline, world)
    total_s = args.minutes * 60.0
    warmup_s = min(WARMUP_S, total_s / 10)
    ticks = int(total_s * pipeline.policy.card.control_rate_hz) + 1
    stages: dict[str, np.ndarray] = {}  # allocated before the baseline, filled in place
    count, zero, fed_s = 0, 0, 0.0
    rss_mb: list[tuple[float, float]] = []  # (bag s, MB) after the warm-up
    started = time.perf_counter()
    bar = tqdm(total=round(total_s), unit="bag s", desc="soak", disable=None)  # a terminal only
    while fed_s < total_s:
        chunk_s = min(CHUNK_S, total_s - fed_s)
        bar.update(round(fed_s + chunk_s) - round(fed_s))
        for record in robot.run(chunk_s):
            if record.zero_reason is not None:
                zero += 1
                continue
            for name, ms in record.stage_ms.items():
                if name not in stages:
                    stages[name] = np.full(ticks, np.nan)
                if count < ticks:
                    stages[name][count] = ms
            count += 1
        fed_s += chunk_s
        if fed_s >= warmup_s:
            gc.collect()
            rss_mb.append((round(fed_s, 1), rss_bytes() / MB))
    bar.close()
    wall_s = time.perf_counter() - started
    growth = round(rss_mb[-1][1] - rss_mb[0][1], 2) if rss_mb else None
    drift = {name: _drift(values[:count]) for name, values in stages.items()}
    return {
        "benchmark": "soak",
        "bag_minutes": args.minutes,
        "camera": f"{args.width}x{args.height} @ {spec.camera_hz:g} Hz",
        "masks": config.masks.source,
        "card": pipeline.policy.card.name,
        "provider": pipeline.policy.runner.provider,
        "wall_s": round(wall_s, 1),
        "realtime_factor": ratio(total_s, wall_s, 2),
        "messages_in": sum(pipeline.stats.messages_in.values()),
        "policy_steps": count,
        "zero_steps": zero,
        "rss_baseline_mb": round(rss_mb[0][1], 1) if rss_mb else None,
        "rss_final_mb": round(rss_mb[-1][1], 1) if rss_mb else None,
        "rss_max_mb": round(max(mb for _, mb in rss_mb), 1) if rss_mb else None,
        "rss_growth_mb": growth,
        "rss_samples": [[t, round(mb, 1)] for t, mb in rss_mb[:: max(len(rss_mb) // 12, 1)]],
        "stage_drift": drift,
        "targets": {"rss_growth_mb": target(growth, RSS_TARGET_MB, at_least=False)},
        "ok": count > 0 and pipeline.stats.commands_out == count + zero,
    }


def _drift(values: np.ndarray) -> dict[str, float | None]:
    """p50 of the first and the last tenth of the run, and their ratio (1.0: no drift)."""
    tenth = max(len(values) // 10, 1)
    first, last = float(np.median(values[:tenth])), float(np.median(values[-tenth:]))
    return {
        "first_decile_p50_ms": round(first, 4),
        "last_decile_p50_ms": round(last, 4),
        "last_over_first": ratio(last, first),
    }
