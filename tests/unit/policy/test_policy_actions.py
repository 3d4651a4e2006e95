"""Action decoding: continuous and discrete sections, delta arms, NaN passed through."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from policy_helpers import MODELS_DIR, card_dict

from rl_deploy.errors import StaleInputError
from rl_deploy.policy import ActionDecoder, PolicyCard, parse_card


def test_continuous_reach_decoding(reach_card: PolicyCard):
    action = np.array([[0.5, -1.0, 1.0, -1.0, 0.2]], np.float32)
    command, raw = ActionDecoder(reach_card).decode({"action": action}, None)
    assert command.base.linear_x == pytest.approx(0.15)
    assert command.base.angular_z == pytest.approx(-0.8)
    assert command.base.linear_y == 0.0
    assert command.arm is not None
    assert command.arm.names == ("joint_lift", "joint_arm", "joint_wrist_yaw")
    np.testing.assert_allclose(command.arm.positions, [1.0, 0.0, 0.3], atol=1e-6)
    np.testing.assert_array_equal(raw, action[0])


def test_card_clip_bounds_out_of_range_outputs(reach_card: PolicyCard):
    action = np.array([[2.0, -3.0, 5.0, 0.0, 0.0]], np.float32)
    command, raw = ActionDecoder(reach_card).decode({"action": action}, None)
    assert (command.base.linear_x, command.base.angular_z) == pytest.approx((0.3, -0.8))
    assert command.arm is not None and command.arm.positions[0] == pytest.approx(1.0)
    assert raw[0] == 2.0  # the raw vector keeps what the network said


def test_non_finite_outputs_pass_through(reach_card: PolicyCard):
    action = np.array([[np.nan, 0.0, np.inf, 0.0, 0.0]], np.float32)
    command, raw = ActionDecoder(reach_card).decode({"action": action}, None)
    assert math.isnan(command.base.linear_x)
    assert command.arm is not None and command.arm.positions[0] == pytest.approx(1.0)
    assert not command.is_finite() and np.isnan(raw[0])


def test_delta_arm_and_deadband(ovmm_card: PolicyCard):
    joints = np.arange(10, dtype=np.float32) * 0.1
    arm_action = np.array([[1.0, -1.0, 0.5, 0.0, 3.0, 0.0, -0.2]], np.float32)
    outputs = {
        "base_vel": np.array([[0.05, 0.5]], np.float32),  # 0.0125 m/s is under the deadband
        "arm_action": arm_action,
        "grip_action": np.array([[0.7]], np.float32),
    }
    command, raw = ActionDecoder(ovmm_card).decode(outputs, joints)
    assert command.base.linear_x == 0.0
    assert command.base.angular_z == pytest.approx(0.5 * math.radians(30), abs=1e-6)
    assert command.arm is not None
    assert command.arm.names[:2] == ("joint_arm_l0", "joint_lift")
    measured = joints[[0, 4, 5, 6, 7, 8, 9]]
    deltas = np.clip(0.1 * arm_action[0], -0.1, 0.1)
    np.testing.assert_allclose(command.arm.positions, measured + deltas, atol=1e-6)
    np.testing.assert_allclose(raw, [0.05, 0.5, *arm_action[0], 0.7], atol=1e-7)
    with pytest.raises(StaleInputError, match="joints"):
        ActionDecoder(ovmm_card).decode(outputs, None)


def _discrete_card(base: dict[str, Any], arm: dict[str, Any] | None) -> PolicyCard:
    data = card_dict("example_reach")
    data["outputs"] = [{"name": "logits", "shape": [1, 4], "dtype": "float32"}]
    data["inputs"][4]["shape"] = [1, 1]  # prev_action: the chosen index
    data["inputs"][4].pop("statistics")
    data["decoding"] = {"base": base} if arm is None else {"base": base, "arm": arm}
    return parse_card(data, MODELS_DIR)


BASE_TABLE = [[0.0, 0.0], [0.2, 0.0], [0.0, 0.5], [0.0, -0.5]]


def test_discrete_logits_decoding():
    card = _discrete_card(
        {
            "type": "discrete",
            "output": "logits",
            "fields": ["linear_x", "angular_z"],
            "table": BASE_TABLE,
        },
        {
            "type": "discrete",
            "output": "logits",
            "mode": "delta",
            "joints": ["joint_lift"],
            "table": [[0.0], [0.0], [0.0], [0.05]],
        },
    )
    decoder = ActionDecoder(card)
    command, raw = decoder.decode(
        {"logits": np.array([[0.1, 3.0, 0.2, -1.0]], np.float32)}, np.array([0.5, 0.1, 0.0])
    )
    assert (command.base.linear_x, command.base.angular_z) == (0.2, 0.0)
    assert command.arm is not None and command.arm.positions.tolist() == [0.5]
    assert raw.tolist() == [1.0]
    command, raw = decoder.decode(
        {"logits": np.array([[0.0, 0.0, 0.0, 9.0]], np.float32)}, np.array([0.5, 0.1, 0.0])
    )
    assert command.base.angular_z == -0.5
    assert command.arm is not None and command.arm.positions.tolist() == pytest.approx([0.55])
    command, raw = decoder.decode(
        {"logits": np.array([[0.0, np.nan, 0.0, 1.0]], np.float32)}, np.zeros(3)
    )
    assert not command.is_finite() and np.isnan(raw[0])


def test_discrete_index_decoding():
    data = card_dict("example_reach")
    data["outputs"] = [{"name": "index", "shape": [1, 1], "dtype": "int64"}]
    data["inputs"][4]["shape"] = [1, 1]
    data["inputs"][4].pop("statistics")
    data["decoding"] = {
        "base": {
            "type": "discrete",
            "output": "index",
            "encoding": "index",
            "fields": ["linear_x", "angular_z"],
            "table": BASE_TABLE,
        }
    }
    decoder = ActionDecoder(parse_card(data, MODELS_DIR))
    command, raw = decoder.decode({"index": np.array([[2]], np.int64)}, None)
    assert (command.base.linear_x, command.base.angular_z) == (0.0, 0.5)
    assert command.arm is None and raw.tolist() == [2.0]
    command, _ = decoder.decode({"index": np.array([[7]], np.int64)}, None)
    assert not command.is_finite()  # no such row: the safety layer stops the robot


def _numpy_section(spec, values: np.ndarray) -> np.ndarray:
    """The continuous recipe written with numpy, as the card states it."""
    scaled = values[list(spec.indices)] * np.asarray(spec.scale) + np.asarray(spec.offset)
    scaled = np.where(np.abs(scaled) < np.asarray(spec.deadband), 0.0, scaled)
    return np.clip(scaled, np.asarray(spec.clip_low), np.asarray(spec.clip_high))


@given(st.lists(st.floats(width=32), min_size=10, max_size=10))
@settings(max_examples=200, deadline=None)
def test_float_decoding_equals_the_numpy_recipe(reach_card, ovmm_card, values):
    # Decoded in Python floats; the same IEEE float64 arithmetic as the recipe in numpy.
    for card in (reach_card, ovmm_card):
        outputs = {
            out.name: np.array(values[: math.prod(out.shape)], np.float32).reshape(out.shape)
            for out in card.outputs
        }
        joints = np.linspace(-1.0, 1.0, len(card.joint_names))
        command, raw = ActionDecoder(card).decode(outputs, joints)
        flat = {name: value.reshape(-1).astype(np.float64) for name, value in outputs.items()}
        base_spec, arm_spec = card.decoding.base, card.decoding.arm
        base = _numpy_section(base_spec, flat[base_spec.output])
        np.testing.assert_array_equal([getattr(command.base, f) for f in base_spec.targets], base)
        arm = _numpy_section(arm_spec, flat[arm_spec.output])
        if arm_spec.mode == "delta":
            arm = arm + joints[[card.joint_names.index(name) for name in arm_spec.targets]]
        np.testing.assert_array_equal(command.arm.positions, arm)
        expected_raw = np.concatenate([flat[out.name] for out in card.outputs]).astype(np.float32)
        np.testing.assert_array_equal(raw, expected_raw)
