"""Observation drift: the policy's live inputs against the training statistics in its card.

Over a sliding window of recent control steps, each monitored input's live mean and spread are
compared with the card's; the score is 1.0 for a mean one training std away or a spread
`spread_factor` times wider or narrower (the worst element of a vector).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from rl_deploy import codec
from rl_deploy.config import DriftConfig
from rl_deploy.errors import ConfigError
from rl_deploy.policy.card import PolicyCard, Statistics


@dataclass(frozen=True)
class DriftScore:
    """One input's drift over the live window (its worst element for vector inputs)."""

    name: str
    score: float  # max(|mean_shift|, |ln(std_ratio)| / ln(spread_factor))
    mean_shift: float  # (live mean - training mean) / training std
    std_ratio: float  # live std / training std
    out_of_range: float  # fraction of live values outside the training [min, max]
    frames: int  # control steps in the window


class _Window:
    """Per-frame sums of one input, so the window's moments cost O(elements) per step."""

    def __init__(
        self, stats: Statistics, frame_size: int, length: int, normalized: bool = False
    ) -> None:
        self.per_element = len(stats.mean) > 1
        width = frame_size if self.per_element else 1
        self.mean = np.broadcast_to(np.asarray(stats.mean, np.float64), (width,))
        self.std = np.broadcast_to(np.asarray(stats.std, np.float64), (width,))
        self.low = np.broadcast_to(np.asarray(stats.min, np.float64), (width,))
        self.high = np.broadcast_to(np.asarray(stats.max, np.float64), (width,))
        if normalized:  # the feed is (x - mean) / std: compared with the statistics of that
            self.low = (self.low - self.mean) / self.std
            self.high = (self.high - self.mean) / self.std
            self.mean, self.std = np.zeros(width), np.ones(width)
        # Per frame: (sum, sum of squares, values outside [min, max]), arrays per element.
        self.frames: deque[tuple[Any, Any, Any]] = deque(maxlen=length)
        self.count_per_frame = 1 if self.per_element else frame_size
        self._low, self._high = float(self.low[0]), float(self.high[0])

    def push(self, value: npt.NDArray[np.generic]) -> None:
        if self.per_element:
            data = np.asarray(value, dtype=np.float64).reshape(-1)
            beyond = (data < self.low) | (data > self.high)
            self.frames.append((data, data**2, beyond.astype(np.float64)))
        else:  # images: three calls per frame (this runs in every control step)
            pixels = np.ravel(value)
            if pixels.dtype == np.bool_:  # a card's bool mask: OpenCV takes no bool arrays
                pixels = pixels.view(np.uint8)
            mean, std = (float(v[0, 0]) for v in cv2.meanStdDev(pixels))
            n = pixels.size
            outside = n - cv2.countNonZero(cv2.inRange(pixels, self._low, self._high))
            self.frames.append((mean * n, (std * std + mean * mean) * n, float(outside)))

    def score(self, name: str, spread_factor: float) -> DriftScore:
        sums = np.asarray(sum(frame[0] for frame in self.frames), np.float64)
        squares = np.asarray(sum(frame[1] for frame in self.frames), np.float64)
        outside = np.asarray(sum(frame[2] for frame in self.frames), np.float64)
        count = len(self.frames) * self.count_per_frame
        mean = sums / count
        std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
        shift = (mean - self.mean) / self.std
        ratio = std / self.std
        # A tilted camera shows in the spread of depth more than in its mean (which swings with
        # what the robot faces); a constant live input has log(0): floor the ratio.
        spread = np.abs(np.log(np.maximum(ratio, 1e-6))) / np.log(spread_factor)
        scores = np.maximum(np.abs(shift), spread)
        worst = int(np.argmax(scores))
        return DriftScore(
            name=name,
            score=float(scores[worst]),
            mean_shift=float(shift[worst]),
            std_ratio=float(ratio[worst]),
            out_of_range=float(outside.sum() / (count * len(scores))),
            frames=len(self.frames),
        )


class DriftMonitor:
    """Feed it the network inputs of each control step; ask for per-input scores."""

    def __init__(self, card: PolicyCard, config: DriftConfig | None = None) -> None:
        self.config = config or DriftConfig()
        names = self.config.inputs or tuple(s.name for s in card.inputs if s.image is not None)
        unknown = sorted(set(names) - {spec.name for spec in card.inputs})
        if unknown:
            raise ConfigError(f"drift.inputs names inputs the card lacks: {unknown}")
        self._windows = {
            spec.name: _Window(spec.statistics, spec.frame_size, self.config.window, spec.normalize)
            for spec in card.inputs
            if spec.name in names and spec.statistics is not None and spec.history == 1
        }

    @property
    def inputs(self) -> tuple[str, ...]:
        """Inputs monitored: those asked for (default: the images) that have statistics."""
        return tuple(self._windows)

    def update(self, feeds: Mapping[str, npt.NDArray[np.generic]]) -> None:
        for name, window in self._windows.items():
            value = feeds.get(name)
            if value is not None:
                window.push(value)

    def reset(self) -> None:
        for window in self._windows.values():
            window.frames.clear()

    def scores(self) -> dict[str, DriftScore]:
        """Scores of the inputs with at least `min_frames` steps in their window."""
        return {
            name: window.score(name, self.config.spread_factor)
            for name, window in self._windows.items()
            if len(window.frames) >= self.config.min_frames
        }

    def drifting(self) -> list[DriftScore]:
        """Inputs whose score is above the threshold, worst first."""
        over = [s for s in self.scores().values() if s.score > self.config.threshold]
        return sorted(over, key=lambda s: -s.score)


DRIFT_STATUS_NAME = "rl_deploy: observation drift"


def drift_status(monitor: DriftMonitor, hardware_id: str) -> codec.DiagnosticStatusData:
    """The /diagnostics entry: WARN naming the inputs above the threshold, a score per input."""
    scores = monitor.scores()
    over = monitor.drifting()
    values = {}
    for name, score in scores.items():
        values[f"drift {name}"] = f"{score.score:.3f}"
        values[f"std_ratio {name}"] = f"{score.std_ratio:.3f}"
        values[f"out_of_range {name}"] = f"{score.out_of_range:.4f}"
    values["threshold"] = f"{monitor.config.threshold:g}"
    if over:
        listed = ", ".join(f"{s.name} {s.score:.2f}" for s in over)
        level, message = codec.DiagnosticLevel.WARN, f"inputs drifted from training: {listed}"
    elif scores:
        level, message = codec.DiagnosticLevel.OK, "inputs match the training statistics"
    else:
        level, message = codec.DiagnosticLevel.OK, "collecting observations"
    return codec.DiagnosticStatusData(
        name=DRIFT_STATUS_NAME, level=level, message=message, hardware_id=hardware_id, values=values
    )
