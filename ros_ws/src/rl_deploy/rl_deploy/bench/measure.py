"""Timing, statistics and machine facts shared by the benchmarks.

Peers are timed interleaved (ours, peer, ours, peer …) so a busy neighbour slows both alike.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np


def positive_int(text: str) -> int:
    """argparse type of a count or a size: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type of an integer >= 0 (0: none, or a default)."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    """argparse type of a duration or a rate: a finite number > 0."""
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def detector_size(text: str) -> int:
    """argparse type of a detector input's long side: a multiple of 32 in [32, 4096]."""
    value = int(text)
    if not 32 <= value <= 4096 or value % 32:
        raise argparse.ArgumentTypeError(f"must be a multiple of 32 in [32, 4096], got {text}")
    return value


def interleaved_ms(
    functions: Mapping[str, Callable[[], object]], rounds: int, warmup: int = 3
) -> dict[str, list[float]]:
    """Wall time (ms) of each function, called in turn once per round after `warmup` rounds."""
    times: dict[str, list[float]] = {name: [] for name in functions}
    for index in range(warmup + rounds):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            elapsed_ms = (time.perf_counter() - start) * 1e3
            if index >= warmup:
                times[name].append(elapsed_ms)
    return times


def warm_allocator(size_bytes: int = 16 * 2**20) -> None:
    """Free one large block so that glibc serves later large allocations from its heap.

    A fresh process maps every allocation over 128 KiB anew (page faults on each 900 KB image);
    freeing a large block raises that threshold, which is the steady state of a long-running
    node. Peers are measured in that state, their fastest.
    """
    block = np.ones(size_bytes, dtype=np.uint8)
    del block


def summary(values: Iterable[float], digits: int = 4) -> dict[str, float]:
    """p50, p99, mean and max of a sample."""
    array = np.asarray(list(values), dtype=np.float64)
    if array.size == 0:
        return {"p50": float("nan"), "p99": float("nan"), "mean": float("nan"), "max": float("nan")}
    return {
        "p50": round(float(np.percentile(array, 50)), digits),
        "p99": round(float(np.percentile(array, 99)), digits),
        "mean": round(float(array.mean()), digits),
        "max": round(float(array.max()), digits),
    }


def median(values: Iterable[float]) -> float:
    return float(np.median(np.asarray(list(values), dtype=np.float64)))


def ratio(numerator: float, denominator: float, digits: int = 3) -> float | None:
    """numerator / denominator, None when the denominator is not positive."""
    return round(numerator / denominator, digits) if denominator > 0 else None


def target(value: float | None, limit: float, *, at_least: bool) -> dict[str, Any]:
    """A target check: value ≥ limit (at_least) or value ≤ limit."""
    met = value is not None and (value >= limit if at_least else value <= limit)
    return {"value": value, "limit": limit, "at_least": at_least, "met": met}


def rss_bytes() -> int:
    """Resident set size of this process now (Linux /proc; max RSS elsewhere)."""
    statm = Path("/proc/self/statm")
    if statm.exists():
        return int(statm.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def machine() -> dict[str, Any]:
    """CPU model, cores, memory and the versions that shape the figures."""
    import onnxruntime as ort

    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "system": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "onnxruntime": ort.__version__,
        "onnxruntime_providers": ort.get_available_providers(),
        # other work on the machine while measuring: runnable tasks averaged over 1, 5, 15 min
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
    meminfo = Path("/proc/meminfo")
    if not meminfo.exists():
        return None
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 2**20, 1)
    return None


class TimedSession:
    """An onnxruntime session whose run calls are timed; everything else passes through."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self.last_ms = 0.0

    def run(self, *args: Any, **kwargs: Any) -> Any:
        return self._timed(self._session.run, *args, **kwargs)

    def run_with_iobinding(self, *args: Any, **kwargs: Any) -> Any:
        return self._timed(self._session.run_with_iobinding, *args, **kwargs)

    def _timed(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            self.last_ms = (time.perf_counter() - start) * 1e3

    def __getattr__(self, name: str) -> Any:
        return getattr(self._session, name)
