"""Decode network outputs into a base velocity and arm targets, with the card's scale and clip.

Non-finite outputs pass through as NaN/inf (the safety layer zeroes them); nothing here widens
or applies the robot's own limits.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from rl_deploy.command import ArmTarget, BaseVelocity, Command
from rl_deploy.errors import DecodeError, ModelContractError, StaleInputError
from rl_deploy.policy.card import ContinuousDecoding, Decoding, DiscreteDecoding, PolicyCard

Float64Array = npt.NDArray[np.float64]


class ActionDecoder:
    """Stateless: the same outputs (and measured joints, for delta arms) give the same command."""

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
        flat = {name: self._flat(outputs, name) for name, _ in self.card.action_parts}
        chosen: dict[str, float] = {}
        base = BaseVelocity()
        arm = None
        base_spec, arm_spec = self.card.decoding.base, self.card.decoding.arm
        if base_spec is not None:
            values = self._section(base_spec, flat, chosen)
            base = BaseVelocity(
                **{
                    name: float(value)
                    for name, value in zip(base_spec.targets, values, strict=True)
                }
            )
        if arm_spec is not None:
            values = self._section(arm_spec, flat, chosen)
            if arm_spec.mode == "delta":
                values = values + self._measured(arm_spec.targets, joints)
            arm = ArmTarget(names=arm_spec.targets, positions=values)
        parts = [
            np.array([chosen[name]]) if name in chosen else flat[name]
            for name, _ in self.card.action_parts
        ]
        action = np.concatenate(parts).astype(np.float32)
        return Command(base=base, arm=arm), action

    @staticmethod
    def _flat(outputs: Mapping[str, npt.NDArray[np.generic]], name: str) -> Float64Array:
        if name not in outputs:
            raise ModelContractError(f"decode: output '{name}' is missing, got {sorted(outputs)}")
        return np.asarray(outputs[name], dtype=np.float64).reshape(-1)

    def _section(
        self, spec: Decoding, flat: dict[str, Float64Array], chosen: dict[str, float]
    ) -> Float64Array:
        values = flat[spec.output]
        if isinstance(spec, ContinuousDecoding):
            scaled = values[list(spec.indices)] * np.asarray(spec.scale) + np.asarray(spec.offset)
            # NaN compares False, so it survives the deadband and np.clip untouched.
            scaled = np.where(np.abs(scaled) < np.asarray(spec.deadband), 0.0, scaled)
            return np.clip(scaled, np.asarray(spec.clip_low), np.asarray(spec.clip_high))
        index = self._choose(spec, values)
        if spec.encoding == "logits":
            chosen[spec.output] = index
        if not np.isfinite(index):
            return np.full(len(spec.targets), np.nan)
        return np.asarray(spec.table[int(index)], dtype=np.float64)

    @staticmethod
    def _choose(spec: DiscreteDecoding, values: Float64Array) -> float:
        """Index of the chosen table row, NaN when the network emitted no valid choice."""
        if spec.encoding == "logits":
            return float(np.argmax(values)) if np.isfinite(values).all() else float("nan")
        index = float(values[0])
        valid = np.isfinite(index) and index.is_integer() and 0 <= index < len(spec.table)
        return index if valid else float("nan")

    def _measured(
        self, names: tuple[str, ...], joints: npt.NDArray[np.floating] | None
    ) -> Float64Array:
        if joints is None:
            raise StaleInputError("joints: measured positions are needed by the delta arm decoding")
        measured = np.asarray(joints, dtype=np.float64).reshape(-1)
        if measured.size != len(self.card.joint_names):
            raise DecodeError(
                f"joints: expected {len(self.card.joint_names)} values in the order "
                f"{list(self.card.joint_names)}, got shape {np.shape(joints)}"
            )
        return measured[[self._joint_index[name] for name in names]]
