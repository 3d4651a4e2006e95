"""`rl-deploy bench perception`: our detector step against ONNX Runtime alone and Ultralytics.

On the same synthetic camera frames, in one run, per image size: session.run alone (the export
as Ultralytics writes it; its network as the step runs it, `network_run`; and the graph the
step runs, with its uint8 input and candidate rows out), the full CDR-in/CDR-out perception
step, Ultralytics predict (PyTorch weights, its own
ONNX export and our ONNX file) and the box/mask IoU between our output and Ultralytics'. The
network run inside each step is timed in the same call too (`step_over_own_run`), a share that
a burst of background load on one method's block cannot skew. Needs the export extra.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from rl_deploy import codec
from rl_deploy.bench.measure import TimedSession, detector_size, positive_int
from rl_deploy.codec.typestore import IMAGE
from rl_deploy.errors import ConfigError
from rl_deploy.perception.graph import CLASSES_INPUT, network_as_run
from rl_deploy.perception.letterbox import LetterboxBuffer
from rl_deploy.perception.model import load_model
from rl_deploy.perception.runner import DetectorConfig, YoloSegRunner
from rl_deploy.perception.step import PerceptionConfig, PerceptionStep
from rl_deploy.tools import detector_export as export

CAMERA_HW = export.CAMERA_HW
POLICY_MASK_HW = (120, 160)  # the example OVMM policy's mask resolution


def camera_imgsz(long_side: int, stride: int = 32) -> tuple[int, int]:
    """Network input (height, width) of the camera's aspect whose long side is `long_side`."""
    height = math.ceil(long_side * CAMERA_HW[0] / CAMERA_HW[1] / stride) * stride
    return height, long_side


SETTLE_S = 0.02  # pause before each timed call, about a camera period's idle time
# Pause before a method's block: the previous method's runtime workers spin on 40-60 ms after
# its last run here, and took the cores from the next one (a 640 run after another session's,
# 20 ms later, took 53 ms instead of 31).
SWITCH_S = 0.3


def median_p90(times_s: list[float]) -> tuple[float, float]:
    ms = np.asarray(times_s) * 1000.0
    return round(float(np.median(ms)), 3), round(float(np.percentile(ms, 90)), 3)


def _in_turns(
    methods: dict[str, Callable[[int], object]],
    n_frames: int,
    rounds: int,
    warmup: int,
    untimed: dict[str, Callable[[int], object]] | None = None,
    *,
    inner: dict[str, Callable[[], float]] | None = None,
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Seconds per call of each method: each runs the frames in a block, the blocks in turns.

    A method runs its frames one after another (a pause of SETTLE_S before each, as between
    camera frames), so it runs beside its own runtime's threads only, as it would on a robot;
    the blocks take turns in a rotating order over `rounds`, exposing every method to the same
    drift of background load. Before each block SWITCH_S lets the previous runtime's spinning
    workers go quiet, and one untimed call wakes this method's. `untimed[name](i)` runs just
    before method `name` is timed on frame i, after the pause (writing its input, as a frame
    that has just arrived is written); `inner[name]()` is read just after each timed call
    (seconds of a part of it). Returns both series per method.
    """
    untimed, inner = untimed or {}, inner or {}
    for fn in methods.values():
        for i in range(warmup):
            fn(i % n_frames)
    names = list(methods)
    times: dict[str, list[float]] = {name: [] for name in names}
    parts: dict[str, list[float]] = {name: [] for name in inner}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            time.sleep(SWITCH_S)
            methods[name](0)
            for i in range(n_frames):
                time.sleep(SETTLE_S)
                if name in untimed:  # after the pause: on this VM an idle 20 ms leaves caches cold
                    untimed[name](i)
                start = time.perf_counter()
                methods[name](i)
                times[name].append(time.perf_counter() - start)
                if name in inner:
                    parts[name].append(inner[name]())
    return times, parts


def onnx_for_size(weights: Path, shipped: Path, imgsz_hw: tuple[int, int], cache: Path) -> Path:
    """Our camera-aspect ONNX for this size: the shipped file when it fits, else exported once."""
    if shipped.is_file():
        session = ort.InferenceSession(str(shipped), providers=["CPUExecutionProvider"])
        if tuple(session.get_inputs()[0].shape[2:]) == imgsz_hw:
            return shipped
    out = cache / f"{shipped.stem}_{imgsz_hw[0]}x{imgsz_hw[1]}.onnx"
    if not out.is_file():
        if not weights.is_file():
            raise ConfigError(
                f"--weights {weights}: no such file, and it is needed to export the detector "
                f"at {imgsz_hw[0]}x{imgsz_hw[1]}"
            )
        with stdout_to_stderr():
            export.export_detector(weights, list(imgsz_hw), out)
    return out


def _ultralytics_square_onnx(weights: Path, size: int, cache: Path) -> Path:
    """Ultralytics' default export at `size` (square, static): what its users run."""
    out = cache / f"{weights.stem}_ultralytics_{size}.pt"
    if not out.with_suffix(".onnx").is_file():
        shutil.copy2(weights, out)  # Ultralytics writes its export beside the weights
        export.ultralytics_model(out).export(format="onnx", imgsz=size, simplify=True, device="cpu")
    return out.with_suffix(".onnx")


def network_session(
    path: str | Path,
    providers: Sequence[str],
    options: ort.SessionOptions | None = None,
    sha256: str = "",
) -> ort.InferenceSession:
    """The export's network as the step runs it (perception.graph.network_as_run; faster than
    the export), without the work the step composes around it: the peer for what it adds."""
    network = network_as_run(load_model(path, sha256)).SerializeToString()
    return ort.InferenceSession(network, options, providers=list(providers))


def bench_size(
    weights: Path,
    shipped: Path,
    long_side: int,
    *,
    frames: list[npt.NDArray[np.uint8]],
    rounds: int,
    cache: Path,
    providers: tuple[str, ...],
) -> dict[str, Any]:
    """Every figure of one image size, measured on the same frames."""
    imgsz_hw = camera_imgsz(long_side)
    ours_path = onnx_for_size(weights, shipped, imgsz_hw, cache)
    config = PerceptionConfig(
        detector=DetectorConfig(model=str(ours_path), providers=providers),
        mask_size=POLICY_MASK_HW,
    )
    step = PerceptionStep(config)
    runner: YoloSegRunner = step.runner
    n = len(frames)
    messages = [
        codec.encode(codec.array_to_image(f, "rgb8", i * 33_000_000, "camera"), IMAGE)
        for i, f in enumerate(frames)
    ]
    # The peer is the export as Ultralytics writes it (float input, raw predictions) run by
    # onnxruntime alone; our step runs it composed with its uint8 frame input and candidate
    # output (perception.model), timed alone too as ort_run_composed.
    providers = runner.session.get_providers()
    bare = ort.InferenceSession(str(ours_path), providers=providers)
    network = network_session(ours_path, providers)
    letterbox = LetterboxBuffer()
    tensors = []
    for f in frames:
        letterbox.fill(f, runner.geometry(f.shape[:2]))
        tensors.append(letterbox.tensor.copy())
    uint8_frames = [runner.preprocess(f).copy() for f in frames]
    # Each bare run's input is written just before it runs, as the step's letterbox writes its
    # own: both networks then start from an input in the cache (and so do the others, below).
    ort_input, uint8_input = np.empty_like(tensors[0]), np.empty_like(uint8_frames[0])
    ort_feed = {runner.info.input_name: ort_input}
    every_class = np.ones(len(runner.names), np.bool_)
    composed_feed = {runner.info.input_name: uint8_input, CLASSES_INPUT: every_class}
    bare_outputs, composed_outputs = list(runner.info.output_names), list(runner.output_names)
    composed = runner.session
    rgb_topic = config.topics.rgb
    pt_model = export.ultralytics_model(weights)
    square = export.ultralytics_model(_ultralytics_square_onnx(weights, long_side, cache))
    same_file = export.ultralytics_model(ours_path)
    bgr = [np.ascontiguousarray(f[..., ::-1]) for f in frames]
    conf, iou = runner.config.conf, runner.config.iou
    for model in (pt_model, square, same_file):  # sets each predictor up
        model.predict(bgr[0], imgsz=list(imgsz_hw), device="cpu", verbose=False)
    import torch

    # Ultralytics' CPU set-up leaves PyTorch cores - 1 threads; give it every core, as
    # onnxruntime has, so the comparison is between implementations, not thread counts.
    torch.set_num_threads(os.cpu_count() or 1)

    # Every method starts from a frame written just before it is timed, as one that has just
    # arrived: the step from CDR bytes copied anew (rclpy copies what it received for a raw
    # subscription's callback, then calls it), Ultralytics from a BGR frame copied into its
    # buffer, the networks from their input tensors (above).
    received = [messages[0]]
    bgr_input = bgr[0].copy()

    def receive(i: int) -> None:
        received[0] = bytes(memoryview(messages[i]))

    def fill_bgr(i: int) -> None:
        np.copyto(bgr_input, bgr[i])

    def predict(model: Any, imgsz: list[int]) -> Callable[[int], object]:
        return lambda i: model.predict(
            bgr_input, imgsz=imgsz, conf=conf, iou=iou, device="cpu", verbose=False
        )

    methods: dict[str, Callable[[int], object]] = {
        "ort_run": lambda i: bare.run(bare_outputs, ort_feed),
        "ort_run_composed": lambda i: composed.run(composed_outputs, composed_feed),
        "network_run": lambda i: network.run(bare_outputs, ort_feed),
        "step": lambda i: step.feed(rgb_topic, received[0], 0),
        "ultralytics_pt": predict(pt_model, [long_side]),
        "ultralytics_onnx": predict(square, [long_side, long_side]),
        "ultralytics_onnx_same_file": predict(same_file, list(imgsz_hw)),
    }
    write_input: dict[str, Callable[[int], object]] = {
        "ort_run": lambda i: np.copyto(ort_input, tensors[i]),
        "ort_run_composed": lambda i: np.copyto(uint8_input, uint8_frames[i]),
        "network_run": lambda i: np.copyto(ort_input, tensors[i]),
        "step": receive,
        "ultralytics_pt": fill_bgr,
        "ultralytics_onnx": fill_bgr,
        "ultralytics_onnx_same_file": fill_bgr,
    }
    # The network run inside each step, timed in the same call: the share around it does not
    # depend on which block a burst of background load happened to hit.
    runs_in_step = TimedSession(runner.session)
    runner.session = runs_in_step
    own_run = {"step": lambda: runs_in_step.last_ms / 1e3}
    timings, inside = _in_turns(methods, n, rounds, min(n, 5), write_input, inner=own_run)
    step_s, run_s = np.asarray(timings["step"]), np.asarray(inside["step"])
    vs_pt = export.verify(runner, pt_model, frames)
    vs_file = export.verify(runner, same_file, frames)
    result: dict[str, Any] = {"imgsz": long_side, "input_hw": list(imgsz_hw)}
    for name, times in timings.items():
        result[f"{name}_ms"], result[f"{name}_p90_ms"] = median_p90(times)
    result |= {
        "mask_iou": round(vs_pt.mask_iou, 4),
        "box_iou": round(vs_pt.box_iou, 4),
        "provider": runner.provider,
        "torch_threads": torch.get_num_threads(),
        "step_over_ort_run": round(result["step_ms"] / result["ort_run_ms"], 3),
        "composed_over_ort_run": round(result["ort_run_composed_ms"] / result["ort_run_ms"], 3),
        "network_run_over_ort_run": round(result["network_run_ms"] / result["ort_run_ms"], 3),
        "step_over_network_run": round(result["step_ms"] / result["network_run_ms"], 3),
        "step_around_run_ms": round(float(np.median(step_s - run_s)) * 1e3, 3),
        "step_over_own_run": round(float(np.median(step_s / run_s)), 3),
        "speedup_vs_ultralytics_pt": round(result["ultralytics_pt_ms"] / result["step_ms"], 2),
        "speedup_vs_ultralytics_onnx": round(result["ultralytics_onnx_ms"] / result["step_ms"], 2),
        "speedup_vs_ultralytics_onnx_same_file": round(
            result["ultralytics_onnx_same_file_ms"] / result["step_ms"], 2
        ),
        "parity_vs_ultralytics_pt": asdict(vs_pt),
        "parity_vs_ultralytics_onnx_same_file": asdict(vs_file),
        "instances_per_frame": round(vs_pt.ours / max(n, 1), 2),
        "model": str(ours_path),
    }
    return result


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Keep stdout for the JSON: Ultralytics logs (and prints) its progress there, and on its
    first import on a machine prints where it wrote its settings file."""
    with contextlib.redirect_stdout(sys.stderr):
        import ultralytics  # noqa: F401  (sets its log handlers up)

        handlers = [
            h
            for h in logging.getLogger("ultralytics").handlers
            if isinstance(h, logging.StreamHandler)
        ]
        streams = [h.stream for h in handlers]
        for handler in handlers:
            handler.setStream(sys.stderr)
        try:
            yield
        finally:
            for handler, stream in zip(handlers, streams, strict=True):
                handler.setStream(stream)


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import torch
    import ultralytics

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],  # other work running
        "onnxruntime": ort.__version__,
        "ultralytics": ultralytics.__version__,
        "torch": torch.__version__,
    }


def add_detector_arguments(parser: argparse.ArgumentParser, rounds: int) -> None:
    """The detector, sizes, frames and providers a detector benchmark runs on."""
    parser.add_argument("--weights", type=Path, default=Path("models/detector/detector.pt"))
    parser.add_argument("--onnx", type=Path, default=Path("models/detector/detector.onnx"))
    parser.add_argument(
        "--imgsz", type=detector_size, nargs="+", default=[320, 640], help="long sides"
    )
    parser.add_argument("--frames", type=positive_int, default=20)
    parser.add_argument(
        "--rounds", type=positive_int, default=rounds, help="passes over the frames"
    )
    parser.add_argument("--providers", nargs="+", default=["CPUExecutionProvider"])
    parser.add_argument("--cache", type=Path, default=Path("out/bench"), help="exported models")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rl-deploy bench perception",
        description="Time the perception step against ONNX Runtime alone and Ultralytics predict.",
    )
    add_detector_arguments(parser, rounds=5)
    parser.add_argument("--json", action="store_true", help="print JSON only")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    return parser


def bench_perception_main(argv: list[str]) -> int:
    """Entry point of `rl-deploy bench perception`."""
    args = build_parser().parse_args(argv)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    args.cache.mkdir(parents=True, exist_ok=True)
    machine = _machine()  # before our own load shows in the load average
    frames = export.sample_frames(args.frames)
    with stdout_to_stderr():
        results = [
            bench_size(
                args.weights,
                args.onnx,
                size,
                frames=frames,
                rounds=args.rounds,
                cache=args.cache,
                providers=tuple(args.providers),
            )
            for size in args.imgsz
        ]
    report = {
        "machine": machine,
        "frame_hw": list(CAMERA_HW),
        "frames": args.frames,
        "rounds": args.rounds,
        "results": results,
    }
    text = json.dumps(report, indent=2)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    if args.json:
        print(text)
    else:
        for r in results:
            print(
                f"imgsz {r['imgsz']} ({r['provider']}): ort {r['ort_run_ms']} ms, "
                f"step {r['step_ms']} ms (x{r['step_over_ort_run']}; "
                f"x{r['step_over_own_run']} its own run), "
                f"ultralytics pt {r['ultralytics_pt_ms']} ms, onnx {r['ultralytics_onnx_ms']} ms, "
                f"mask IoU {r['mask_iou']}, box IoU {r['box_iou']}"
            )
    return 0
