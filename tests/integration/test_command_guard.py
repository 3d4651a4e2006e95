"""command_guard as its own process on real DDS: limits, quiet zero, e-stop, teleop, lifecycle."""

from __future__ import annotations

import itertools
import signal
import time

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.qos import DurabilityPolicy, QoSProfile
from ros_harness import wait_for
from std_msgs.msg import Bool
from std_srvs.srv import SetBool

from rl_deploy import codec
from rl_deploy.codec.typestore import BOOL, DIAGNOSTIC_ARRAY, TWIST, message_class
from rl_deploy.command import BaseVelocity

pytestmark = pytest.mark.integration

GUARD_ARGS = [
    "--params-file",
    "config/command_guard.yaml",
    "-r",
    "cmd_vel_in:=/rl_deploy/cmd_vel",
]
MAX_LINEAR_MPS = 0.5  # config/robots/diff_drive_arm.yaml


def twist_bytes(linear_x: float, angular_z: float = 0.0) -> bytes:
    return codec.encode(codec.twist(BaseVelocity(linear_x=linear_x, angular_z=angular_z)), TWIST)


def bool_bytes(value: bool) -> bytes:
    return codec.encode(message_class(BOOL)(data=value), BOOL)


def linear_x(data: bytes) -> float:
    return float(codec.decode(data, TWIST).linear.x)


def drive(probe, topic: str, linear: float, seconds: float, rate_hz: float = 10.0) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        probe.publish(topic, Twist, twist_bytes(linear))
        time.sleep(1.0 / rate_hz)


def test_limits_then_zero_when_input_goes_quiet(start_node, probe):
    probe.listen("/cmd_vel", Twist)
    guard = start_node("command_guard", GUARD_ARGS)
    wait_for(lambda: probe.messages("/cmd_vel"), 20, "the guard's first output")
    assert all(linear_x(m.data) == 0.0 for m in probe.messages("/cmd_vel")), "zero before input"
    drive(probe, "/rl_deploy/cmd_vel", 2.0, seconds=1.5)  # four times the profile's limit
    outputs = [linear_x(m.data) for m in probe.messages("/cmd_vel")]
    assert max(outputs) == pytest.approx(MAX_LINEAR_MPS)
    assert all(0.0 <= v <= MAX_LINEAR_MPS for v in outputs)
    steps = [b - a for a, b in itertools.pairwise(outputs)]
    assert max(steps) <= 1.0 * 0.02 + 1e-9  # 1 m/s² at 50 Hz
    stopped_ns = time.monotonic_ns()
    first_zero = wait_for(
        lambda: next(
            (m for m in probe.messages("/cmd_vel", stopped_ns) if linear_x(m.data) == 0.0), None
        ),
        2,
        "a zero command after the input stopped",
    )
    assert (first_zero.monotonic_ns - stopped_ns) / 1e9 < 0.4
    assert guard.alive()


def test_estop_topic_service_and_teleop_priority(start_node, probe):
    probe.listen("/cmd_vel", Twist)
    start_node("command_guard", GUARD_ARGS)
    wait_for(lambda: probe.messages("/cmd_vel"), 20, "the guard's first output")

    def latest_after(since_ns: int) -> float:
        messages = probe.messages("/cmd_vel", since_ns)
        return linear_x(messages[-1].data) if messages else float("nan")

    drive(probe, "/rl_deploy/cmd_vel", 0.3, seconds=0.8)
    assert latest_after(0) == pytest.approx(0.3)
    probe.publish("/estop", Bool, bool_bytes(True))
    drive(probe, "/rl_deploy/cmd_vel", 0.3, seconds=0.5)
    engaged_ns = time.monotonic_ns() - 300_000_000
    assert all(linear_x(m.data) == 0.0 for m in probe.messages("/cmd_vel", engaged_ns))
    response = probe.call(SetBool, "/command_guard/set_estop", SetBool.Request(data=False))
    assert response.success, response.message
    drive(probe, "/rl_deploy/cmd_vel", 0.3, seconds=0.8)
    assert latest_after(0) == pytest.approx(0.3)
    # Teleop wins while it talks, even when it says "stand still".
    teleop_ns = time.monotonic_ns()
    end = time.monotonic() + 0.8
    while time.monotonic() < end:
        probe.publish("/rl_deploy/cmd_vel", Twist, twist_bytes(0.3))
        probe.publish("/cmd_vel_teleop", Twist, twist_bytes(-0.1))
        time.sleep(0.1)
    assert latest_after(teleop_ns) == pytest.approx(-0.1)
    response = probe.call(SetBool, "/command_guard/set_estop", SetBool.Request(data=True))
    assert response.success
    time.sleep(0.2)
    assert latest_after(time.monotonic_ns() - 100_000_000) == 0.0


def test_a_latched_estop_sent_before_the_guard_started_holds_it(start_node, probe):
    # An e-stop bridge that latches its state instead of repeating it: with ros.qos.estop
    # transient_local the guard hears the stop it sent before the guard came up.
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    probe.publish("/estop", Bool, bool_bytes(True), qos=latched)
    probe.listen("/cmd_vel", Twist)
    probe.listen("/diagnostics", DiagnosticArray)
    start_node("command_guard", [*GUARD_ARGS, "-p", "ros.qos.estop:=transient_local"])
    wait_for(lambda: guard_reports(probe, "estop") == "true", 20, "the latched e-stop heard")
    driving_ns = time.monotonic_ns()
    drive(probe, "/rl_deploy/cmd_vel", 0.3, seconds=1.0)
    assert {linear_x(m.data) for m in probe.messages("/cmd_vel", driving_ns)} == {0.0}
    probe.publish("/estop", Bool, bool_bytes(False))  # the same latched publisher, released
    drive(probe, "/rl_deploy/cmd_vel", 0.3, seconds=1.0)
    assert linear_x(probe.messages("/cmd_vel")[-1].data) == pytest.approx(0.3)


def guard_reports(probe, key: str) -> str | None:
    """The value of `key` in the guard's latest diagnostics report."""
    for message in reversed(probe.messages("/diagnostics")):
        for status in codec.decode(message.data, DIAGNOSTIC_ARRAY).status:
            if status.name == "rl_deploy: command_guard":
                return {kv.key: kv.value for kv in status.values}.get(key)
    return None


def get_state(probe) -> int:
    return probe.call(GetState, "/command_guard/get_state", GetState.Request()).current_state.id


def change_state(probe, transition: int) -> bool:
    request = ChangeState.Request()
    request.transition.id = transition
    return probe.call(ChangeState, "/command_guard/change_state", request).success


def test_lifecycle_transitions(start_node, probe):
    probe.listen("/cmd_vel", Twist)
    start_node("command_guard", [*GUARD_ARGS, "-p", "ros.autostart:=false"])
    wait_for(lambda: get_state(probe) == State.PRIMARY_STATE_UNCONFIGURED, 20, "unconfigured")
    assert change_state(probe, Transition.TRANSITION_CONFIGURE)
    assert get_state(probe) == State.PRIMARY_STATE_INACTIVE
    time.sleep(0.3)
    assert probe.messages("/cmd_vel") == [], "an inactive guard publishes nothing"
    assert change_state(probe, Transition.TRANSITION_ACTIVATE)
    assert get_state(probe) == State.PRIMARY_STATE_ACTIVE
    wait_for(lambda: len(probe.messages("/cmd_vel")) > 5, 5, "outputs once active")
    drive(probe, "/rl_deploy/cmd_vel", 0.2, seconds=0.6)
    assert change_state(probe, Transition.TRANSITION_DEACTIVATE)
    deactivated_ns = time.time_ns()  # the guard answered: its transition is done
    time.sleep(0.3)
    # The last word of a deactivating guard is a zero command, then silence: by its send stamps
    # (on a loaded machine a command sent before the answer may reach the probe after it).
    last = max(probe.messages("/cmd_vel"), key=lambda m: m.sent_ns)
    assert linear_x(last.data) == 0.0
    assert probe.sent("/cmd_vel", deactivated_ns) == []
    assert change_state(probe, Transition.TRANSITION_CLEANUP)
    assert get_state(probe) == State.PRIMARY_STATE_UNCONFIGURED


def test_an_engaged_estop_outlives_cleanup_and_configure(start_node, probe):
    probe.listen("/cmd_vel", Twist)
    start_node("command_guard", GUARD_ARGS)
    wait_for(lambda: probe.messages("/cmd_vel"), 20, "the guard's first output")
    response = probe.call(SetBool, "/command_guard/set_estop", SetBool.Request(data=True))
    assert response.success
    for transition in (
        Transition.TRANSITION_DEACTIVATE,
        Transition.TRANSITION_CLEANUP,
        Transition.TRANSITION_CONFIGURE,
        Transition.TRANSITION_ACTIVATE,
    ):
        assert change_state(probe, transition), transition
    active_ns = time.monotonic_ns()
    drive(probe, "/rl_deploy/cmd_vel", 0.3, seconds=0.8)
    outputs = [linear_x(m.data) for m in probe.messages("/cmd_vel", active_ns)]
    assert outputs and all(v == 0.0 for v in outputs), "the reconfigured guard kept the e-stop"
    response = probe.call(SetBool, "/command_guard/set_estop", SetBool.Request(data=False))
    assert response.success
    drive(probe, "/rl_deploy/cmd_vel", 0.3, seconds=0.8)
    assert linear_x(probe.messages("/cmd_vel")[-1].data) == pytest.approx(0.3)


def test_bad_parameter_rejected_with_its_name(start_node, probe):
    probe.listen("/cmd_vel", Twist)
    start_node("command_guard", GUARD_ARGS)
    value = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=-1.0)
    request = SetParameters.Request(parameters=[Parameter(name="input_timeout_s", value=value)])
    wait_for(lambda: get_state(probe) == State.PRIMARY_STATE_ACTIVE, 20, "active guard")
    (result,) = probe.call(SetParameters, "/command_guard/set_parameters", request).results
    assert not result.successful
    assert "input_timeout_s" in result.reason

    def refused(name: str, value: ParameterValue) -> str:
        request = SetParameters.Request(parameters=[Parameter(name=name, value=value)])
        (result,) = probe.call(SetParameters, "/command_guard/set_parameters", request).results
        assert not result.successful, name
        return str(result.reason)

    # A timeout that would make the guard wait for ever is not a timeout.
    forever = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=1e9)
    assert "input_timeout_s must be at most" in refused("input_timeout_s", forever)
    # A name too long for the file system: a reason, not a dead guard.
    long_name = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value="p" * 300)
    assert "too long" in refused("robot_profile", long_name)
    # Its timer runs on the clock it was activated on: the other would silence it.
    sim_time = ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=True)
    assert "unconfigured" in refused("use_sim_time", sim_time)
    assert get_state(probe) == State.PRIMARY_STATE_ACTIVE
    since_ns = time.monotonic_ns()
    wait_for(lambda: len(probe.messages("/cmd_vel", since_ns)) >= 5, 5, "the guard still talks")


def test_bad_params_file_stops_startup_with_its_name(start_node, tmp_path):
    params = tmp_path / "guard.yaml"
    params.write_text(
        "command_guard:\n  ros__parameters:\n    robot_profile: config/robots/nowhere.yaml\n"
    )
    guard = start_node("command_guard", ["--params-file", str(params)])
    guard.process.wait(timeout=30)
    assert guard.process.returncode == 1
    assert "nowhere.yaml" in guard.log()


@pytest.mark.parametrize(
    "signals",
    [[signal.SIGINT], [signal.SIGTERM], [signal.SIGINT, signal.SIGTERM]],
    ids=["SIGINT", "SIGTERM", "SIGINT-then-SIGTERM"],
)
def test_a_signal_leaves_the_base_a_zero_command(start_node, probe, signals):
    # ros2 launch stops its nodes with SIGINT, then SIGTERM: the guard's last word is a zero
    # even while the policy still drives, and a second signal does not cut it short.
    probe.listen("/cmd_vel", Twist)
    guard = start_node("command_guard", GUARD_ARGS)
    wait_for(lambda: probe.messages("/cmd_vel"), 20, "the guard's first output")
    drive(probe, "/rl_deploy/cmd_vel", 0.2, seconds=1.0, rate_hz=20.0)
    signalled_ns = time.monotonic_ns()
    for signum in signals:
        guard.process.send_signal(signum)
        time.sleep(0.01)
    drive(probe, "/rl_deploy/cmd_vel", 0.2, seconds=0.3, rate_hz=20.0)  # still driving
    assert guard.process.wait(timeout=10) == 0, guard.log()
    before = [linear_x(m.data) for m in probe.messages("/cmd_vel") if m.monotonic_ns < signalled_ns]
    assert before[-1] == pytest.approx(0.2), "the guard forwarded the drive up to the signal"
    last = wait_for(
        lambda: next(
            (m for m in probe.messages("/cmd_vel", signalled_ns) if linear_x(m.data) == 0.0),
            None,
        ),
        2,
        "a zero command after the signal",
    )
    assert probe.messages("/cmd_vel")[-1] is last, "nothing after the zero"
