"""Periodic events on the wall clock, as a ROS executor's timers fire them, for the timed runs.

Camera, joint states and pose publish at their rates; the control timer ticks at the card's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from rl_deploy.replay.synthetic import SyntheticBagSpec


def stream_rates_ns(spec: SyntheticBagSpec) -> dict[str, int]:
    """Period (ns) of each input stream of the synthetic robot."""
    return {
        "camera": round(1e9 / spec.camera_hz),
        "joints": round(1e9 / spec.joints_hz),
        "pose": round(1e9 / spec.pose_hz),
    }


def run_schedule(
    periods_ns: Mapping[str, int],
    first_ns: Mapping[str, int],
    end_ns: int,
    handle: Callable[[str, int, int], None],
) -> None:
    """Call handle(kind, deadline_ns, woke_ns) for each periodic event, in deadline order, until
    `end_ns`. Like an rcl timer, an event that fell behind by whole periods skips them: a busy
    machine gets fewer ticks and frames, never a backlog replayed in a burst."""
    next_ns = dict(first_ns)
    while True:
        kind = min(next_ns, key=lambda name: next_ns[name])
        deadline_ns = next_ns[kind]
        if deadline_ns >= end_ns:
            return
        delay_s = (deadline_ns - time.time_ns()) / 1e9
        if delay_s > 0:
            time.sleep(delay_s)
        woke_ns = time.time_ns()
        period_ns = periods_ns[kind]
        next_ns[kind] = deadline_ns + ((woke_ns - deadline_ns) // period_ns + 1) * period_ns
        handle(kind, deadline_ns, woke_ns)


def period_jitter_ms(times_ns: Sequence[int], period_ns: int) -> list[float]:
    """|interval - period| of consecutive events, ms."""
    intervals_ms = np.diff(np.asarray(times_ns, dtype=np.float64)) / 1e6
    jitter: list[float] = np.abs(intervals_ms - period_ns / 1e6).tolist()
    return jitter
