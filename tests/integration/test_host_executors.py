"""host.spin_all, as stack_node runs its two nodes: an executor and a thread per node, in a
process of its own (rclpy's default context is process-wide)."""

from __future__ import annotations

import pytest
from ros_harness import run_script_json

pytestmark = pytest.mark.integration

# A node whose callbacks block (the detector's steps; time.sleep releases the GIL as onnxruntime
# does) and a node with a timer (the policy's); the mode says how the run ends.
SCRIPT = """
import json, sys, threading, time
import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rl_deploy_ros.host import spin_all

mode = sys.argv[1]
rclpy.init()
slow, timed = Node("slow"), Node("timed")
steps, ticks = [], []

def step():
    start = time.monotonic()
    time.sleep(0.3)
    steps.append((start, time.monotonic()))

def tick():
    ticks.append(time.monotonic())
    if mode == "raise" and len(ticks) == 3:
        raise RuntimeError("the timed node's callback failed")

slow.create_timer(0.01, step)
timed.create_timer(0.02, tick)
executors = [SingleThreadedExecutor(), SingleThreadedExecutor()]
executors[0].add_node(slow)
executors[1].add_node(timed)
if mode == "shutdown":
    threading.Timer(1.5, rclpy.try_shutdown).start()
raised = None
try:
    spin_all(executors)
except ExternalShutdownException:
    pass
except RuntimeError as err:
    raised = str(err)
print(json.dumps({"steps": steps, "ticks": ticks, "raised": raised, "ok": rclpy.ok()}))
"""


def run_script(ros_env: dict[str, str], mode: str) -> dict:
    return run_script_json(ros_env, SCRIPT, mode)  # type: ignore[no-any-return]


def test_a_node_keeps_its_timer_while_another_nodes_callback_blocks(ros_env):
    run = run_script(ros_env, "shutdown")
    assert len(run["steps"]) >= 2 and len(run["ticks"]) >= 2
    # The timed node ticked during every blocking step of the other (one executor for both
    # would have run its timer only between them).
    for start, end in run["steps"]:
        assert any(start < tick < end for tick in run["ticks"]), (start, end)
    assert run["raised"] is None and not run["ok"]


def test_a_callback_that_raises_on_a_thread_stops_every_executor_and_is_raised(ros_env):
    run = run_script(ros_env, "raise")  # the process ends: no executor spins on
    assert run["raised"] == "the timed node's callback failed"
    assert len(run["ticks"]) == 3
    assert run["ok"], "the context is left up: the nodes can still publish their last words"
    # The main thread's executor stopped too: at most the step that began as the failure was
    # being handed over started after it.
    failed_at = run["ticks"][-1]
    assert sum(start > failed_at for start, _ in run["steps"]) <= 1
