"""Reporting that cannot flood: a bad stream at 30 Hz logs once per period, with a count; health
reports on a period of the stack's own clock."""

from __future__ import annotations

import logging
import time


class RateLimitedLog:
    """Log a message per key at most once every `period_s`, counting what was suppressed."""

    def __init__(self, logger: logging.Logger, period_s: float = 5.0) -> None:
        self._logger = logger
        self._period_s = period_s
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, key: str, message: str) -> None:
        now = time.monotonic()
        if now - self._last.get(key, -float("inf")) < self._period_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        suppressed = self._suppressed.pop(key, 0)
        suffix = f" ({suppressed} more since last report)" if suppressed else ""
        self._last[key] = now
        self._logger.warning("%s%s", message, suffix)


def diagnostics_due(due_ns: int | None, now_ns: int, period_ns: int) -> bool:
    """Whether to report now: the first time, once `due_ns` is reached, or when it lies more
    than a period ahead (the clock went back, and would hold the reports until it got there)."""
    return due_ns is None or not now_ns < due_ns <= now_ns + period_ns
