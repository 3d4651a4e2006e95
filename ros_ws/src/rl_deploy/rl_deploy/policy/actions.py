"""Decode network outputs into a base velocity and arm targets, with the card's scale and clip.

Non-finite outputs pass through as NaN/inf (the safety layer zeroes them); nothing here widens
or applies the robot's own limits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from rl_deploy.command import ArmTarget, BaseVelocity, Command
from rl_deploy.errors import DecodeError, ModelContractError, StaleInputError
from rl_deploy.policy.card import ContinuousDecoding, Decoding, DiscreteDecoding, PolicyCard


class ActionDecoder:
    """Stateless: the same outputs (and measured joints, for delta arms) give the same command.

    The few values of an action are decoded as Python floats: numpy's per-call overhead on
    five numbers (and the code it pulls into the caches after the networks ran) costs more
    than the arithmetic. IEEE arithmetic in float64 either way, so the values are the same.
    """

    def __init__(self, card: PolicyCard) -> None:
        self.card = card
        self._joint_index = {name: index for index, name in enumerate(card.joint_names)}

    def decode(
        self,
        outputs: Mapping[str, npt.NDArray[np.generic]],
        joints: npt.NDArray[np.floating] | None,
    ) -> tuple[Command, npt.NDArray[np.float32]]:
        """(command, raw action vector for prev_action) from one run's outputs.

        `joints` are the measured positions in card.joint_names order (needed by delta arms).
        """
        parts = self.card.action_parts
        flat = {name: self._flat(outputs, name) for name, _ in parts}
        chosen: dict[str, float] = {}
        base = BaseVelocity()
        arm = None
        base_spec, arm_spec = self.card.decoding.base, self.card.decoding.arm
        if base_spec is not None:
            values = self._section(base_spec, flat, chosen)
            base = BaseVelocity(**dict(zip(base_spec.targets, values, strict=True)))
        if arm_spec is not None:
            values = self._section(arm_spec, flat, chosen)
            if arm_spec.mode == "delta":
                measured = self._measured(arm_spec.targets, joints)
                values = [value + now for value, now in zip(values, measured, strict=True)]
            arm = ArmTarget(names=arm_spec.targets, positions=np.array(values, np.float64))
        action: list[float] = []
        for name, _ in parts:
            action += [chosen[name]] if name in chosen else flat[name]
        return Command(base=base, arm=arm), np.array(action, np.float32)

    @staticmethod
    def _flat(outputs: Mapping[str, npt.NDArray[np.generic]], name: str) -> list[float]:
        value = outputs.get(name)
        if value is None:
            raise ModelContractError(f"decode: output '{name}' is missing, got {sorted(outputs)}")
        return [float(v) for v in np.asarray(value).reshape(-1).tolist()]

    def _section(
        self, spec: Decoding, flat: dict[str, list[float]], chosen: dict[str, float]
    ) -> list[float]:
        values = flat[spec.output]
        if isinstance(spec, ContinuousDecoding):
            return [
                _clip(_deadband(values[index] * scale + offset, deadband), low, high)
                for index, scale, offset, deadband, low, high in zip(
                    spec.indices,
                    spec.scale,
                    spec.offset,
                    spec.deadband,
                    spec.clip_low,
                    spec.clip_high,
                    strict=True,
                )
            ]
        index = self._choose(spec, values)
        if spec.encoding == "logits":
            chosen[spec.output] = index
        if not math.isfinite(index):
            return [math.nan] * len(spec.targets)
        return [float(v) for v in spec.table[int(index)]]

    @staticmethod
    def _choose(spec: DiscreteDecoding, values: list[float]) -> float:
        """Index of the chosen table row, NaN when the network emitted no valid choice."""
        if spec.encoding == "logits":
            if not all(math.isfinite(v) for v in values):
                return math.nan
            return float(max(range(len(values)), key=values.__getitem__))  # first of equals
        index = values[0]
        valid = math.isfinite(index) and index.is_integer() and 0 <= index < len(spec.table)
        return index if valid else math.nan

    def _measured(
        self, names: tuple[str, ...], joints: npt.NDArray[np.floating] | None
    ) -> list[float]:
        if joints is None:
            raise StaleInputError("joints: measured positions are needed by the delta arm decoding")
        measured = np.asarray(joints, dtype=np.float64).reshape(-1)
        if measured.size != len(self.card.joint_names):
            raise DecodeError(
                f"joints: expected {len(self.card.joint_names)} values in the order "
                f"{list(self.card.joint_names)}, got shape {np.shape(joints)}"
            )
        positions = measured.tolist()
        return [positions[self._joint_index[name]] for name in names]


def _deadband(value: float, deadband: float) -> float:
    # NaN compares False, so it passes the deadband and the clip untouched (as in np.clip).
    return 0.0 if abs(value) < deadband else value


def _clip(value: float, low: float, high: float) -> float:
    return low if value < low else high if value > high else value
