"""host.RawTopics on real DDS, in a process of its own with the installed package: what a
latched publisher sent before the node subscribed."""

from __future__ import annotations

import pytest
from ros_harness import run_script_json

pytestmark = pytest.mark.integration

# tf2_msgs has no wheel here: any message type shows the same QoS at work.
SCRIPT = """
import json, sys, time
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode
from rclpy.qos import DurabilityPolicy, QoSProfile
from std_msgs.msg import Bool
from rl_deploy_ros.host import LATCHED_INPUT_QOS, RawTopics

latched = sys.argv[1] == "latched"
rclpy.init()
sender = rclpy.create_node("static_sender")
latched_qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
sender.create_publisher(Bool, "/tf_static", latched_qos).publish(Bool(data=True))
node = LifecycleNode("reader")
received = []
RawTopics(
    node,
    {"/tf_static": "std_msgs/msg/Bool"},
    {},
    lambda topic, data: received.append(topic),
    input_qos=lambda msgtype: QoSProfile(depth=10),
    output_qos=QoSProfile(depth=10),
    input_qos_of={"/tf_static": LATCHED_INPUT_QOS} if latched else {},
)
executor = SingleThreadedExecutor()
executor.add_node(sender)
executor.add_node(node)
end = time.monotonic() + 5.0
while time.monotonic() < end and not received:
    executor.spin_once(timeout_sec=0.1)
print(json.dumps({"received": len(received)}))
rclpy.shutdown()
"""


def received(ros_env: dict[str, str], mode: str) -> int:
    return int(run_script_json(ros_env, SCRIPT, mode)["received"])


def test_a_latched_input_gets_what_was_sent_before_it_subscribed(ros_env):
    # robot_state_publisher sends /tf_static once, at its start: a node started later reads it
    # only through a transient-local subscription (else a fixed joint's link is never known,
    # and a tf pose never completes).
    assert received(ros_env, "latched") == 1
    assert received(ros_env, "volatile") == 0, "a volatile reader misses it"
