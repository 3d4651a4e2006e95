"""The simulator's side of a closed loop over a transport (the ROS 2 sim node): seeded episodes
one after another, commands in as CDR bytes, outputs and finished episodes out.

Nothing here knows about rclpy; the node paces `step` on the wall clock and moves the bytes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from rl_deploy import codec
from rl_deploy.codec.typestore import IMAGE
from rl_deploy.errors import RlDeployError
from rl_deploy.io import Output
from rl_deploy.sim.closed_loop import EpisodeRecorder, EpisodeResult, EpisodeTracker
from rl_deploy.sim.host import MujocoSimHost

logger = logging.getLogger(__name__)


class SimSession:
    """Runs `seeds` in order on `host`; `episodes_done` tells when all have finished."""

    def __init__(
        self,
        host: MujocoSimHost,
        seeds: Sequence[int],
        *,
        mask_topic: str = "",
        recorder: EpisodeRecorder | None = None,
        snapshots: int = 4,
    ) -> None:
        if not seeds:
            raise RlDeployError("a simulator session needs at least one seed")
        # Kept as given: sim_node's endless run is a range of a billion seeds, never a list.
        self.host, self.seeds = host, seeds
        self.mask_topic = mask_topic  # the stack's target mask, for the image strip
        self.recorder = recorder
        self.snapshots = snapshots
        self.results: list[EpisodeResult] = []
        self._tracker: EpisodeTracker | None = None
        self._mask_u8: npt.NDArray[np.uint8] | None = None
        self._mask_stamp_ns = 0
        self._commands = 0

    @property
    def finished(self) -> bool:
        return len(self.results) == len(self.seeds)

    def subscriptions(self) -> dict[str, str]:
        topics = dict(self.host.command_topics())
        if self.mask_topic:
            topics[self.mask_topic] = IMAGE
        return topics

    def begin(self) -> list[Output]:
        """Reset to the first seed; the latched outputs (/tf_static) to publish once."""
        self._start(self.seeds[0])
        return self.host.static_outputs()

    def _start(self, seed: int) -> None:
        self.host.reset(seed)
        self._tracker = EpisodeTracker(self.host, self.snapshots)
        self._mask_u8 = None
        self._mask_stamp_ns = self.host.now_ns
        self._commands = 0
        if self.recorder is not None:
            topics = {**self.host.output_topics(), **self.subscriptions()}
            self.recorder.start(f"episode_{seed}", topics)
            self.recorder.write(self.host.static_outputs(), self.host.now_ns)

    def handle(self, topic: str, data: bytes, msgtype: str | None = None) -> None:
        """A message from the stack: a command for the robot, or the target mask it used."""
        if self.finished:
            return
        if self.recorder is not None:
            self.recorder.write(
                [Output(topic, self.subscriptions()[topic], data)], self.host.now_ns
            )
        if topic == self.mask_topic:
            frame = codec.decode_image(data)
            self._mask_u8 = (frame.pixels > 0).view(np.uint8)
            self._mask_stamp_ns = max(self._mask_stamp_ns, frame.stamp_ns)
            return
        self._commands += 1
        self.host.handle(topic, data, msgtype)

    def stack_lag_s(self) -> float:
        """Sim time since the camera frame behind the stack's newest target mask (or since the
        episode start): how far the simulator runs ahead of what the stack has processed."""
        return (self.host.now_ns - self._mask_stamp_ns) / 1e9

    def step(self, dt_s: float) -> list[Output]:
        """Advance the running episode; when it ends, record it and start the next one."""
        if self.finished or self._tracker is None:
            return []
        outputs = self.host.step(dt_s)
        if self.recorder is not None:
            self.recorder.write(outputs, self.host.now_ns)
        frame = self.host.last_frame
        depth = frame.depth_m if frame is not None else None
        mask_u8 = self._mask_u8
        status = self._tracker.after_step(lambda: (depth, mask_u8))
        if status.done:
            self.results.append(self._tracker.result(self._commands, {}))
            logger.info(
                "seed %d %s: %s in %.1f s",
                status.seed,
                status.target_class,
                "reached" if status.success else "failed",
                status.elapsed_s,
            )
            if self.recorder is not None:
                self.recorder.stop()
            if not self.finished:
                self._start(self.seeds[len(self.results)])
                outputs += self.host.static_outputs()
        return outputs

    def bag_paths(self) -> list[Path]:
        return list(self.recorder.paths) if self.recorder is not None else []
