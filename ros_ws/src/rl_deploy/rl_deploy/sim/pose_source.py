"""A SLAM-like base pose: ground truth seen through latency, a random-walk drift and white noise.

Real localisers (AMCL, SLAM toolbox) publish estimates of a slightly old pose that wander; the
simulator reproduces that so a policy is not tuned to a perfect pose.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from rl_deploy.geometry import Pose2D, wrap_angle
from rl_deploy.sim.spec import PoseSourceSpec

_NS = 1e-9


class SlamPoseModel:
    """Feed ground truth with `record`; `estimate` returns (stamp_ns, pose) as a localiser would."""

    def __init__(self, spec: PoseSourceSpec, seed: int) -> None:
        self.spec = spec
        self._history: deque[tuple[int, Pose2D]] = deque()
        self._rng = np.random.default_rng(seed)
        self._drift = np.zeros(3)
        self._last_estimate_ns: int | None = None

    def reset(self, seed: int) -> None:
        self._history.clear()
        self._rng = np.random.default_rng(seed)
        self._drift = np.zeros(3)
        self._last_estimate_ns = None

    def record(self, stamp_ns: int, truth: Pose2D) -> None:
        self._history.append((stamp_ns, truth))
        # Keep one sample older than the latency window so a lookup always finds a pose.
        horizon_ns = stamp_ns - int(self.spec.latency_s * 1e9)
        while len(self._history) > 1 and self._history[1][0] <= horizon_ns:
            self._history.popleft()

    def truth_at(self, stamp_ns: int) -> Pose2D:
        """The newest recorded ground truth at or before `stamp_ns` (the oldest if none)."""
        if not self._history:
            raise RuntimeError("no ground truth recorded yet")
        chosen = self._history[0][1]
        for recorded_ns, pose in self._history:
            if recorded_ns > stamp_ns:
                break
            chosen = pose
        return chosen

    def estimate(self, now_ns: int) -> tuple[int, Pose2D]:
        """The estimate published at `now_ns`: stamped when the pose it describes was true."""
        stamp_ns = max(now_ns - int(self.spec.latency_s * 1e9), self._history[0][0])
        truth = self.truth_at(stamp_ns)
        spec = self.spec
        if self._last_estimate_ns is not None:
            dt_s = max(0.0, (now_ns - self._last_estimate_ns) * _NS)
            steps = np.array([spec.drift_xy_m_per_sqrt_s] * 2 + [spec.drift_yaw_rad_per_sqrt_s])
            self._drift += self._rng.normal(0.0, 1.0, 3) * steps * math.sqrt(dt_s)
        self._last_estimate_ns = now_ns
        noise = self._rng.normal(0.0, 1.0, 3) * np.array(
            [spec.noise_xy_m, spec.noise_xy_m, spec.noise_yaw_rad]
        )
        error = self._drift + noise
        return stamp_ns, Pose2D(
            truth.x + float(error[0]), truth.y + float(error[1]), wrap_angle(truth.yaw + error[2])
        )
