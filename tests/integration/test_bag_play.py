"""bag_play, the package's own player, as a process on real DDS: it stops when told, refuses a
bag it could only sleep through, and restamps each message as if recorded now."""

from __future__ import annotations

import signal
import sqlite3
import statistics
import time
from pathlib import Path

import pytest
from ros_harness import run_script_json, wait_for
from sensor_msgs.msg import JointState

from rl_deploy import codec
from rl_deploy.codec.typestore import JOINT_STATE
from rl_deploy.replay.synthetic import SyntheticBagSpec, write_synthetic_bag

pytestmark = pytest.mark.integration

SMALL = SyntheticBagSpec(seconds=1.5, width=32, height=24)


def test_sigterm_stops_a_waiting_player(start_node, tmp_path: Path) -> None:
    """`ros2 launch` escalates to SIGTERM: the player must stop, not sleep on."""
    bag = write_synthetic_bag(tmp_path / "bag", SMALL)
    player = start_node("bag_play", [], [str(bag), "--delay", "30"])
    time.sleep(3.0)  # up and sleeping
    assert player.alive()
    player.process.send_signal(signal.SIGTERM)
    player.process.wait(timeout=10)
    assert "Traceback" not in player.log(), player.log()


def test_a_corrupt_log_time_is_an_error_not_a_sleep(start_node, tmp_path: Path) -> None:
    spec = SyntheticBagSpec(seconds=0.5, width=32, height=24, storage="sqlite3")
    bag = write_synthetic_bag(tmp_path / "bag", spec)
    with sqlite3.connect(next(bag.glob("*.db3"))) as connection:
        connection.execute("UPDATE messages SET timestamp = 1000 WHERE id = 1")  # in 1970
    player = start_node("bag_play", [], [str(bag)])
    player.process.wait(timeout=60)
    assert player.process.returncode == 1
    assert "corrupt timestamp" in player.log()


def test_nonsense_rates_are_usage_errors(start_node, tmp_path: Path) -> None:
    bag = write_synthetic_bag(tmp_path / "bag", SMALL)
    for extra in (["--rate", "nan"], ["--rate", "inf"], ["--delay", "-1"]):
        player = start_node("bag_play", [], [str(bag), *extra])
        player.process.wait(timeout=60)
        assert player.process.returncode == 2, extra
        assert "Traceback" not in player.log()


@pytest.mark.parametrize("rate", ["0.5", "2"])
def test_restamped_messages_are_stamped_when_they_are_sent(start_node, probe, tmp_path, rate):
    """At any --rate: a live stack ages inputs by their stamps against its clock."""
    bag = write_synthetic_bag(tmp_path / "bag", SMALL)
    probe.listen("/joint_states", JointState)
    player = start_node("bag_play", [], [str(bag), "--restamp", "--rate", rate])
    wait_for(lambda: not player.alive(), 60, "the player to finish")
    received = probe.sent("/joint_states", 0)
    assert len(received) >= 10
    late_ns = [
        message.sent_ns - codec.stamp_to_ns(codec.decode(message.data, JOINT_STATE).header.stamp)
        for message in received
    ]  # the synthetic stamps are the log times: what a live driver would stamp them
    # A message sent late on a busy machine is the player's delay; stamps drifting away from
    # the clock over the bag (as an offset fixed per pass does at --rate != 1) would move them all.
    assert abs(statistics.median(late_ns)) < 100_000_000, late_ns


SHIFT = """
import json
from rl_deploy import codec
from rl_deploy.codec.typestore import TF_MESSAGE, JOINT_STATE, message_class
from rl_deploy.geometry import Pose2D
from rl_deploy.replay.synthetic import _tf
from rl_deploy_ros.bag_play import restamp_header, restamp_tf

tf = codec.encode(_tf([("odom", "base_link", Pose2D(1.0, 0.0, 0.0))], 5_000_000_000), TF_MESSAGE)
moved = codec.decode(restamp_tf(tf, lambda s: s + 1_000), TF_MESSAGE)
import numpy as np
empty = np.zeros(0)
unstamped = message_class(JOINT_STATE)(header=codec.make_header(0, ""), name=[], position=empty,
                                       velocity=empty, effort=empty)
data = codec.encode(unstamped, JOINT_STATE)
print(json.dumps({
    "tf": [codec.stamp_to_ns(t.header.stamp) for t in moved.transforms],
    "unstamped_kept": restamp_header(data, lambda s: s + 1_000) == data,
}))
"""


def test_tf_stamps_are_moved_and_unstamped_messages_kept(ros_env) -> None:
    result = run_script_json(ros_env, SHIFT)
    assert result == {"tf": [5_000_001_000], "unstamped_kept": True}
