"""JointState → positions ordered as the policy card lists them."""

from __future__ import annotations

import array
from types import SimpleNamespace

import numpy as np
import pytest

from rl_deploy import codec
from rl_deploy.codec import typestore as ts
from rl_deploy.errors import DecodeError


def _joint_state(names: list[str], positions: list[float]) -> object:
    msg = ts.message_class(ts.JOINT_STATE)(
        header=codec.make_header(3, ""),
        name=names,
        position=np.array(positions, dtype=np.float64),
        velocity=np.arange(len(positions), dtype=np.float64) / 10,
        effort=np.zeros(0),
    )
    return codec.decode(codec.encode(msg, ts.JOINT_STATE), ts.JOINT_STATE)


def test_positions_follow_the_requested_order_and_ignore_extras():
    msg = _joint_state(["lift", "arm_l0", "wheel_left", "head_pan"], [0.6, 0.1, 12.0, -0.4])
    positions = codec.joint_positions(msg, ["head_pan", "lift", "arm_l0"])
    assert positions.dtype == np.float64
    np.testing.assert_array_equal(positions, [-0.4, 0.6, 0.1])
    np.testing.assert_array_equal(codec.joint_velocities(msg, ["head_pan", "lift"]), [0.3, 0.0])


def test_missing_joints_are_named_with_what_the_message_has():
    msg = _joint_state(["lift", "arm_l0"], [0.6, 0.1])
    with pytest.raises(DecodeError) as caught:
        codec.joint_positions(msg, ["lift", "wrist_yaw", "head_tilt"])
    text = str(caught.value)
    assert "['wrist_yaw', 'head_tilt']" in text
    assert "it has ['lift', 'arm_l0']" in text


def test_length_mismatch_is_an_error():
    msg = SimpleNamespace(name=["a", "b", "c"], position=[1.0, 2.0])
    with pytest.raises(DecodeError, match=r"3 names but position has shape \(2,\)"):
        codec.joint_positions(msg, ["a"])


def test_non_finite_position_names_joint_and_value():
    msg = _joint_state(["lift", "arm_l0", "head_pan"], [0.6, float("nan"), float("-inf")])
    with pytest.raises(DecodeError, match=r"arm_l0=nan, head_pan=-inf"):
        codec.joint_positions(msg, ["lift", "arm_l0", "head_pan"])
    # A non-finite joint the policy does not use is no reason to fail.
    np.testing.assert_array_equal(codec.joint_positions(msg, ["lift"]), [0.6])


def test_repeated_names_are_an_error():
    msg = _joint_state(["lift", "lift"], [0.1, 0.2])
    with pytest.raises(DecodeError, match=r"repeat: \['lift'\]"):
        codec.joint_positions(msg, ["lift"])


def test_rclpy_style_message_with_array_array_positions():
    msg = SimpleNamespace(name=["a", "b"], position=array.array("d", [1.5, -2.5]))
    np.testing.assert_array_equal(codec.joint_positions(msg, ["b", "a"]), [-2.5, 1.5])


def test_named_positions_give_one_drivers_share_of_the_wanted_joints():
    msg = _joint_state(["wheel_left", "lift", "head_pan"], [12.0, 0.6, -0.4])
    assert codec.named_positions(msg, {"lift", "arm_l0"}) == {"lift": 0.6}
    assert codec.named_positions(msg, {"arm_l0"}) == {}  # none of them: no error


def test_named_positions_refuse_malformed_messages():
    with pytest.raises(DecodeError, match=r"3 names but position has shape \(2,\)"):
        codec.named_positions(SimpleNamespace(name=["a", "b", "c"], position=[1.0, 2.0]), {"z"})
    with pytest.raises(DecodeError, match=r"repeat: \['lift'\]"):
        codec.named_positions(_joint_state(["lift", "lift"], [0.1, 0.2]), {"z"})
    msg = _joint_state(["lift", "arm_l0"], [0.6, float("nan")])
    with pytest.raises(DecodeError, match=r"arm_l0=nan"):
        codec.named_positions(msg, {"lift", "arm_l0"})
    assert codec.named_positions(msg, {"lift"}) == {"lift": 0.6}
