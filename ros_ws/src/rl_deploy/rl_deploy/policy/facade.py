"""The `Policy` façade: card + observation builder + ONNX runner + action decoder in one step.

Hosts call `Policy.load(card)`, `reset(start_pose)` at each episode start, then `step(raw)`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from rl_deploy.command import Command
from rl_deploy.geometry import Pose2D
from rl_deploy.policy.actions import ActionDecoder
from rl_deploy.policy.card import PolicyCard
from rl_deploy.policy.loader import load_card
from rl_deploy.policy.observation import ObservationBuilder, RawObservation
from rl_deploy.policy.runner import DEFAULT_PROVIDERS, PolicyRunner


@dataclass(frozen=True)
class PolicyStep:
    """What one control step produced."""

    command: Command  # decoded, card-scaled; not yet limited by the safety layer
    action: npt.NDArray[np.float32]  # (card.action_size,) raw action vector (next prev_action)
    outputs: dict[str, npt.NDArray[np.generic]]  # every ONNX output by name
    timings_ms: dict[str, float]  # 'observation', 'inference', 'decode'
    feeds: Mapping[str, npt.NDArray[np.generic]] = field(default_factory=dict)  # network inputs


class Policy:
    """A loaded policy with its episode state (history, recurrent state, previous action)."""

    def __init__(self, card: PolicyCard, runner: PolicyRunner) -> None:
        self.card = card
        self.runner = runner
        self.builder = ObservationBuilder(card)
        self.decoder = ActionDecoder(card)

    @classmethod
    def load(
        cls,
        card_path: str | Path,
        providers: Sequence[str] = DEFAULT_PROVIDERS,
        expected_sha256: str | None = None,
        *,
        intra_op_threads: int | None = None,
    ) -> Policy:
        card = load_card(card_path)
        runner = PolicyRunner(
            card, providers, intra_op_threads=intra_op_threads, expected_sha256=expected_sha256
        )
        return cls(card, runner)

    def reset(self, start_pose: Pose2D | None = None) -> None:
        """Start an episode: clear history and previous action, zero the recurrent state."""
        self.builder.reset(start_pose)
        self.runner.reset()

    def step(self, raw: RawObservation) -> PolicyStep:
        start = time.perf_counter()
        feeds = self.builder.build(raw)
        built = time.perf_counter()
        outputs = self.runner.run(feeds)
        inferred = time.perf_counter()
        command, action = self.decoder.decode(outputs, raw.joints)
        self.builder.record_action(action)
        decoded = time.perf_counter()
        return PolicyStep(
            command=command,
            action=action,
            outputs=outputs,
            timings_ms={
                "observation": (built - start) * 1e3,
                "inference": (inferred - built) * 1e3,
                "decode": (decoded - inferred) * 1e3,
            },
            feeds=feeds,
        )
