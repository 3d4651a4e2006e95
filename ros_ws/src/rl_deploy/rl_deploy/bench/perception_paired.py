"""`rl-deploy bench perception-paired`: the detector step against the bare export, frame by frame.

`bench perception` times the step and the export in blocks seconds apart (one session's idle
workers spin on after its run and would take the cores from the other's next one), and the run
inside each step in the same call, whose ratio counts the composed graph's conversion and filter
as network. Here both sessions share one process-wide onnxruntime thread pool, so neither runs
beside the other's spinning workers, and they take turns frame by frame: the figure is each
frame's step over the bare export's run on that frame. onnxruntime allows no session with its
own pool beside a shared one, so this runs without Ultralytics, in a process of its own.

The export's network as the step runs it (perception.graph.network_as_run) is faster than the
export as Ultralytics writes it, so a third session takes its turn too: `step_over_ort_run` is
the step against the export, `step_over_network_run` against that network, which counts
everything the step adds to it. The step computes mask prototypes only on frames with
candidates (perception.protos), so that target is on `step_over_network_run_found`, the frames
with instances. It also reports the median of each of the step's stages
(PerceptionStats.last_stage_ms).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from rl_deploy import codec
from rl_deploy.bench.measure import target
from rl_deploy.bench.perception import (
    POLICY_MASK_HW,
    SETTLE_S,
    SWITCH_S,
    add_detector_arguments,
    camera_imgsz,
    median_p90,
    network_session,
    onnx_for_size,
)
from rl_deploy.codec.typestore import IMAGE
from rl_deploy.perception.letterbox import LetterboxBuffer
from rl_deploy.perception.model import session_options, share_thread_pool
from rl_deploy.perception.runner import DetectorConfig
from rl_deploy.perception.step import STEP_STAGES, PerceptionConfig, PerceptionStep
from rl_deploy.tools import detector_export as export

STEP_TARGET = 1.10  # the step within 10 % of session.run alone (README, performance)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_detector_arguments(parser, rounds=25)


def run(args: argparse.Namespace) -> dict[str, Any]:
    args.cache.mkdir(parents=True, exist_ok=True)
    # Models first: exporting another size runs Ultralytics, whose sessions need their own pool.
    models = {
        size: onnx_for_size(args.weights, args.onnx, camera_imgsz(size), args.cache)
        for size in args.imgsz
    }
    share_thread_pool()
    frames = export.sample_frames(args.frames)
    results = [
        measure_size(path, size, frames, args.rounds, tuple(args.providers))
        for size, path in models.items()
    ]
    return {
        "benchmark": "perception-paired",
        "frame_hw": list(export.CAMERA_HW),
        "frames": args.frames,
        "rounds": args.rounds,
        "results": results,
        # Against the export as Ultralytics writes it, and against its network as the step
        # runs it (what the step adds to the network).
        "targets": {
            f"{ratio}_{r['imgsz']}": target(r[ratio], STEP_TARGET, at_least=False)
            for r in results
            for ratio in ("step_over_ort_run", "step_over_network_run_found")
        },
    }


def measure_size(
    path: Path,
    long_side: int,
    frames: list[npt.NDArray[np.uint8]],
    rounds: int,
    providers: tuple[str, ...],
) -> dict[str, Any]:
    """Step, bare export and bare network in turns on each frame: times, per-frame ratios."""
    config = PerceptionConfig(
        detector=DetectorConfig(model=str(path), providers=providers), mask_size=POLICY_MASK_HW
    )
    step = PerceptionStep(config)
    runner = step.runner
    used = runner.session.get_providers()
    bare = ort.InferenceSession(str(path), session_options(), providers=used)
    network = network_session(path, used, session_options())
    letterbox, tensors = LetterboxBuffer(), []
    for frame in frames:
        letterbox.fill(frame, runner.geometry(frame.shape[:2]))
        tensors.append(letterbox.tensor.copy())
    messages = [
        codec.encode(codec.array_to_image(f, "rgb8", i * 33_000_000, "camera"), IMAGE)
        for i, f in enumerate(frames)
    ]
    bare_input = np.empty_like(tensors[0])
    feeds, outputs = {runner.info.input_name: bare_input}, list(runner.info.output_names)
    received = [messages[0]]
    methods: dict[str, Callable[[], object]] = {
        "step": lambda: step.feed(config.topics.rgb, received[0], 0),
        "ort_run": lambda: bare.run(outputs, feeds),
        "network_run": lambda: network.run(outputs, feeds),
    }

    def write(index: int) -> None:  # each starts from an input written just before, as it lands
        received[0] = bytes(memoryview(messages[index]))
        np.copyto(bare_input, tensors[index])

    for index in range(min(len(frames), 5)):  # warm-up, all
        for method in methods.values():
            write(index)
            method()
    time.sleep(SWITCH_S)
    times: dict[str, list[float]] = {name: [] for name in methods}
    stages: list[dict[str, float]] = []
    found: list[bool] = []  # the step's frame had instances (and so candidates, and prototypes)
    order = list(methods)
    for turn in range(rounds * len(frames)):
        index = turn % len(frames)
        instances = step.stats.instances
        for name in order[turn % 3 :] + order[: turn % 3]:  # each goes first a third of the time
            time.sleep(SETTLE_S)
            write(index)
            start = time.perf_counter()
            methods[name]()
            times[name].append(time.perf_counter() - start)
        stages.append(step.stats.last_stage_ms)
        found.append(step.stats.instances > instances)
    steps, bares, networks = (np.asarray(times[name]) for name in order)
    with_instances = np.asarray(found)
    result: dict[str, Any] = {"imgsz": long_side, "input_hw": list(runner.info.imgsz)}
    for name in order:
        result[f"{name}_ms"], result[f"{name}_p90_ms"] = median_p90(times[name])
    result |= {
        "step_over_ort_run": round(float(np.median(steps / bares)), 3),
        "step_around_ort_run_ms": round(float(np.median(steps - bares)) * 1e3, 3),
        "step_over_network_run": round(float(np.median(steps / networks)), 3),
        "step_around_network_run_ms": round(float(np.median(steps - networks)) * 1e3, 3),
        "network_run_over_ort_run": round(float(np.median(networks / bares)), 3),
        # A frame without candidates skips the prototypes (protos_on_demand): against the
        # network as run, what the step adds is taken on the frames that have instances.
        "step_over_network_run_found": _median_ratio(
            steps[with_instances], networks[with_instances]
        ),
        "frames_without_instances": int(np.count_nonzero(~with_instances[: len(frames)])),
        "protos_on_demand": runner.protos_on_demand,
        "pairs": len(steps),
        "stage_ms": _stage_medians(stages),
        "provider": runner.provider,
        "model": str(path),
    }
    return result


def _median_ratio(steps: npt.NDArray[np.float64], peers: npt.NDArray[np.float64]) -> float | None:
    return round(float(np.median(steps / peers)), 3) if len(steps) else None


def _stage_medians(stages: list[dict[str, float]]) -> dict[str, float]:
    return {name: round(float(np.median([s[name] for s in stages])), 3) for name in STEP_STAGES}
