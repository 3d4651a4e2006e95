"""Background CPU load for the jitter measurements: busy processes, stopped by their own handle."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.synchronize import Event


def _spin(stop: Event) -> None:
    count = 0
    while not stop.is_set():
        for _ in range(100_000):
            count += 1


@contextmanager
def cpu_load(workers: int | None = None) -> Iterator[int]:
    """`workers` busy processes (default: one per core) for the duration of the block."""
    if workers is None:
        workers = os.cpu_count() or 1
    context = multiprocessing.get_context("spawn")  # no fork of onnxruntime's threads
    stop = context.Event()
    processes = [context.Process(target=_spin, args=(stop,), daemon=True) for _ in range(workers)]
    for process in processes:
        process.start()
    try:
        yield workers
    finally:
        stop.set()
        for process in processes:
            process.join(timeout=5)
            if process.is_alive():
                process.terminate()
                process.join(timeout=5)
