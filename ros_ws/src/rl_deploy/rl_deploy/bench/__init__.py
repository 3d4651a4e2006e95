"""`rl-deploy bench`: measured performance and reliability, each figure against a named peer.

One JSON object per benchmark on stdout; the benchmark modules load only when asked for.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rl_deploy.errors import ConfigError, RlDeployError

EXIT_OK, EXIT_FAILED, EXIT_BAD_SETUP = 0, 1, 2

# name → (module, help); each module has add_arguments(parser) and run(args) -> dict.
BENCHMARKS: dict[str, tuple[str, str]] = {
    "codec": ("rl_deploy.bench.codec", "CDR image decode/encode vs rclpy typed messages"),
    "policy": ("rl_deploy.bench.policy", "policy step vs the bare ONNX Runtime run"),
    "e2e": ("rl_deploy.bench.e2e", "camera stamp to command: per stage, p50/p99, jitter"),
    "replay": ("rl_deploy.bench.replay", "replay speed of a 30 Hz 640x480 RGB-D bag"),
    "faults": ("rl_deploy.bench.faults", "fault injection trials: time to a zero command"),
    "fuzz": ("rl_deploy.bench.fuzz", "random and corrupted inputs for N seconds"),
    "soak": ("rl_deploy.bench.soak", "long accelerated run: RSS growth and latency drift"),
    "perception-paired": (
        "rl_deploy.bench.perception_paired",
        "detector step vs its bare export frame by frame, on one shared thread pool",
    ),
}
# Benchmarks with their own command line, which write their JSON to `--out FILE`:
# name → (module, function, help).
DELEGATED: dict[str, tuple[str, str, str]] = {
    "perception": (
        "rl_deploy.bench.perception",
        "bench_perception_main",
        "detector step vs Ultralytics predict (see its --help)",
    ),
}


def bench_main(argv: list[str]) -> int:
    name = argv[0] if argv else ""
    if name in DELEGATED:
        return _delegate(*DELEGATED[name][:2], argv[1:])
    if name not in BENCHMARKS:
        _overview().parse_args(argv)  # prints usage or help, and exits
        return EXIT_BAD_SETUP
    module = importlib.import_module(BENCHMARKS[name][0])
    parser = argparse.ArgumentParser(
        prog=f"rl-deploy bench {name}", description=BENCHMARKS[name][1]
    )
    parser.add_argument("--pretty", action="store_true", help="indented JSON")
    parser.add_argument("--no-machine", action="store_true", help="omit the machine description")
    parser.add_argument("-v", "--verbose", action="store_true", help="the stack's warnings too")
    module.add_arguments(parser)
    args = parser.parse_args(argv[1:])
    # Faults make the pipeline warn on purpose; stderr keeps errors unless asked for more.
    logging.basicConfig(
        level=logging.WARNING if args.verbose else logging.ERROR,
        format="[%(levelname)s] %(name)s: %(message)s",
    )
    try:
        result: dict[str, Any] = module.run(args)
    except (RlDeployError, ImportError) as err:
        print(f"error: bench {name}: {err}", file=sys.stderr)
        return EXIT_BAD_SETUP
    if not args.no_machine:
        from rl_deploy.bench.measure import machine

        result["machine"] = machine()
    print(json.dumps(result, indent=2 if args.pretty else None))
    return EXIT_OK if result.get("ok", True) else EXIT_FAILED


def _delegate(module_name: str, function: str, argv: list[str]) -> int:
    """Run a delegated benchmark with everything it prints sent to stderr (Ultralytics logs to
    stdout), then print its JSON on stdout as one line like every other benchmark."""
    if {"-h", "--help"} & set(argv):
        entry: Callable[[list[str]], int] = getattr(importlib.import_module(module_name), function)
        return entry(argv)
    # The benchmark writes its JSON to a file of ours; the user's --out gets a copy.
    wanted = argparse.ArgumentParser(add_help=False)
    wanted.add_argument("--out", type=Path)
    asked, argv = wanted.parse_known_args(argv)
    if asked.out is not None and (asked.out.is_dir() or not asked.out.parent.is_dir()):
        raise ConfigError(f"--out {asked.out}: must name a file in an existing directory")
    with tempfile.TemporaryDirectory(prefix="rl_deploy_bench_") as work:
        out = Path(work) / "result.json"
        sys.stdout.flush()
        saved = os.dup(1)
        os.dup2(2, 1)  # at the descriptor: loggers bound to stdout at import and C code too
        try:
            with contextlib.redirect_stdout(sys.stderr):
                entry = getattr(importlib.import_module(module_name), function)
                code = entry([*argv, "--out", str(out)])
        finally:
            sys.stdout.flush()
            os.dup2(saved, 1)
            os.close(saved)
        if out.is_file():
            text = out.read_text()
            print(json.dumps(json.loads(text)))
            if asked.out is not None:
                asked.out.write_text(text)
    return code


def _overview() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rl-deploy bench", description=__doc__)
    commands = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for name, (_, help_text) in BENCHMARKS.items():
        commands.add_parser(name, help=help_text)
    for name, (_, _, help_text) in DELEGATED.items():
        commands.add_parser(name, help=help_text)
    return parser
