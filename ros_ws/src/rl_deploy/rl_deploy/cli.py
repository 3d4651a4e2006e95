"""`rl-deploy`: the command line of the core (replay, demo, benchmarks, model tooling)."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from rl_deploy.config import PipelineConfig
from rl_deploy.errors import BagError, ConfigError, RlDeployError

EXIT_OK, EXIT_FAILED, EXIT_BAD_SETUP = 0, 1, 2
EXIT_INTERRUPTED = 130  # as a shell reports a command stopped by SIGINT

# Subcommands that live in their own modules, loaded only when asked for (some pull in heavy
# optional dependencies such as ultralytics, which the runtime must never import).
DELEGATED: dict[str, tuple[str, str, str]] = {
    "export-detector": (
        "rl_deploy.tools.detector_export",
        "export_detector_main",
        "export an Ultralytics YOLO-seg model to ONNX and verify it (needs the export extra)",
    ),
    "train-detector": (
        "rl_deploy.tools.detector_train",
        "train_detector_main",
        "train the example detector on synthetic images (needs the export extra)",
    ),
    "bench": ("rl_deploy.bench", "bench_main", "benchmarks and fault trials, JSON on stdout"),
    "sim": (
        "rl_deploy.sim.evaluate",
        "sim_main",
        "closed-loop episodes in the MuJoCo simulator through the stack (gt, stack or dds)",
    ),
    "sim-dataset": (
        "rl_deploy.sim.dataset",
        "dataset_main",
        "render detector training data (RGB + instance masks, YOLO-seg layout) in the simulator",
    ),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    with _sigterm_as_interrupt():
        return _run(argv)


def _run(argv: list[str]) -> int:
    try:
        if argv and argv[0] in DELEGATED:
            module, function, _ = DELEGATED[argv[0]]
            entry: Callable[[list[str]], int] = getattr(importlib.import_module(module), function)
            return entry(argv[1:])
        args = _parser().parse_args(argv)
        logging.basicConfig(
            level=logging.DEBUG if args.verbose else logging.INFO,
            format="[%(levelname)s] %(name)s: %(message)s",
        )
        result: int = args.run(args)
    except BagError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_FAILED
    except RlDeployError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_SETUP
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return result


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a `timeout`, a container stop) unwinds like Ctrl-C, so that the output files are
    closed and readable and a partial summary is written, instead of the process dying mid-file."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rl-deploy", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    replay = commands.add_parser("replay", help="run the pipeline over a rosbag2 file")
    replay.add_argument("bag", type=Path, help="rosbag2 directory (mcap or sqlite3) or .mcap file")
    replay.add_argument("--out", type=Path, required=True, help="output directory")
    replay.add_argument("--config", type=Path, help="pipeline config / policy_node params YAML")
    replay.add_argument("--no-progress", action="store_true", help="no progress bar")
    replay.add_argument("--no-report", action="store_true", help="skip report.html")
    replay.add_argument(
        "--spin-wait",
        action="store_true",
        help="keep the detector's onnxruntime workers spinning between runs, as on a robot "
        "whose params set detector.spin_wait (a slower replay on few cores)",
    )
    replay.set_defaults(run=_replay)

    make_bag = commands.add_parser("make-bag", help="write a generated 30 Hz RGB-D test bag")
    make_bag.add_argument("out", type=Path, help="bag directory to create")
    make_bag.add_argument("--seconds", type=float, default=5.0)
    make_bag.add_argument("--storage", choices=("mcap", "sqlite3"), default="mcap")
    make_bag.add_argument("--seed", type=int, default=0)
    make_bag.set_defaults(run=_make_bag)

    demo = commands.add_parser("demo", help="the main job on an embedded default, no robot")
    demo.add_argument("--out", type=Path, default=Path("demo_out"))
    demo.set_defaults(run=_demo)

    for name, (_, _, help_text) in DELEGATED.items():
        commands.add_parser(name, help=help_text, add_help=False)
    return parser


def _load_config(path: Path | None) -> PipelineConfig:
    return PipelineConfig.from_yaml(path) if path else PipelineConfig()


def _replay(args: argparse.Namespace) -> int:
    from rl_deploy.replay import replay, write_report

    config = _load_config(args.config)
    result = replay(
        args.bag, args.out, config, progress=not args.no_progress, spin_wait=args.spin_wait
    )
    if not args.no_report:
        write_report(result, args.out / "report.html")
    print(json.dumps(result.summary, indent=2))
    return EXIT_OK


def _make_bag(args: argparse.Namespace) -> int:
    from rl_deploy.replay import SyntheticBagSpec, write_synthetic_bag

    if not args.seconds > 0:
        raise ConfigError(f"--seconds must be > 0, got {args.seconds}")
    if args.out.exists():  # the writer would refuse too, with a traceback
        raise ConfigError(f"{args.out} exists already: make-bag writes a new bag directory")
    spec = SyntheticBagSpec(seconds=args.seconds, storage=args.storage, seed=args.seed)
    print(write_synthetic_bag(args.out, spec))
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    """Closed-loop episodes in the simulator through the stack, recorded and replayed."""
    from rl_deploy.sim.demo import run_demo
    from rl_deploy.sim.evaluate import check_out_dir

    check_out_dir(args.out)
    return run_demo(args.out)


if __name__ == "__main__":
    raise SystemExit(main())
