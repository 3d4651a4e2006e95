"""sim_node as a process: parameters it cannot run with stop it with their name, and an
endless run (episodes 0) starts like any other."""

from __future__ import annotations

import pytest
from ros_harness import wait_for
from rosgraph_msgs.msg import Clock

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("parameter", "named"),
    [
        ("episodes:=-1", "episodes must be >= 0"),
        ("realtime_factor:=0.0", "realtime_factor must be a finite number > 0"),
        ("step_s:=-0.02", "step_s must be a finite number > 0"),
    ],
)
def test_a_parameter_it_cannot_run_with_stops_it_by_name(start_node, parameter, named):
    sim = start_node("sim_node", ["-p", parameter])
    sim.process.wait(timeout=60)
    assert sim.process.returncode == 1
    assert named in sim.log() and "Traceback" not in sim.log(), sim.log()


def test_an_endless_run_starts_at_once(start_node, probe):
    """A billion seeds are a range, not a list built before the first tick."""
    probe.listen("/clock", Clock)
    sim = start_node("sim_node", ["-p", "episodes:=0", "-p", "rgb:=false"])
    wait_for(lambda: len(probe.messages("/clock")) >= 10, 60, "the simulator's clock")
    assert sim.alive()
