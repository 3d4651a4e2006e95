"""command_guard logic without ROS: quiet input, e-stop, teleop priority and the hard limits."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from rl_deploy import codec
from rl_deploy.codec.typestore import (
    BOOL,
    FLOAT64_MULTI_ARRAY,
    JOINT_STATE,
    JOINT_TRAJECTORY,
    TWIST,
    TWIST_STAMPED,
    message_class,
)
from rl_deploy.command import ArmTarget, BaseVelocity
from rl_deploy.errors import ConfigError
from rl_deploy.guard import ESTOP_OPERATOR, CommandGuard, GuardConfig, GuardIO, GuardStep
from rl_deploy.safety import SafetyLimits

ROOT = Path(__file__).resolve().parents[2]
MS = 1_000_000
PERIOD_NS = 20 * MS


def profile_limits(name: str = "diff_drive_arm") -> SafetyLimits:
    document = yaml.safe_load((ROOT / "config" / "robots" / f"{name}.yaml").read_text())
    return SafetyLimits.from_mapping(document["robot"])


@pytest.fixture
def limits() -> SafetyLimits:
    return profile_limits()


@pytest.fixture
def guard(limits: SafetyLimits) -> CommandGuard:
    return CommandGuard(GuardConfig(limits=limits, period_s=0.02, input_timeout_s=0.15))


def run_ticks(guard: CommandGuard, start_ns: int, ticks: int, policy: BaseVelocity | None = None):
    """Tick every period, feeding `policy` just before each tick when given."""
    decisions = []
    for i in range(ticks):
        now_ns = start_ns + i * PERIOD_NS
        if policy is not None:
            guard.on_policy(policy, now_ns)
        decisions.append(guard.step(now_ns))
    return decisions


def test_zero_before_any_input(guard):
    decision = guard.step(0)
    assert decision.source == "quiet"
    assert decision.base == BaseVelocity()


def test_forwards_fresh_policy_within_limits(guard, limits):
    wanted = BaseVelocity(linear_x=0.2, angular_z=0.5)
    decisions = run_ticks(guard, 0, 50, wanted)
    assert all(d.source == "policy" for d in decisions)
    assert decisions[-1].base == wanted


def test_zero_once_policy_goes_quiet(guard):
    wanted = BaseVelocity(linear_x=0.2)
    run_ticks(guard, 0, 50, wanted)
    last_input_ns = 49 * PERIOD_NS
    # Still within the timeout: keeps the last command.
    assert guard.step(last_input_ns + 140 * MS).base.linear_x == pytest.approx(0.2)
    quiet = guard.step(last_input_ns + 160 * MS)
    assert quiet.source == "quiet"
    assert quiet.base == BaseVelocity()
    assert guard.counters.quiet_ticks == 1


def test_quiet_zero_is_immediate_not_ramped(guard, limits):
    run_ticks(guard, 0, 100, BaseVelocity(linear_x=limits.max_linear_mps))
    decision = guard.step(99 * PERIOD_NS + 200 * MS)
    assert decision.base.linear_x == 0.0


def test_velocity_clamped_to_profile(guard, limits):
    decisions = run_ticks(guard, 0, 200, BaseVelocity(linear_x=5.0, angular_z=-9.0))
    assert decisions[-1].base.linear_x == pytest.approx(limits.max_linear_mps)
    assert decisions[-1].base.angular_z == pytest.approx(-limits.max_angular_rps)
    assert decisions[-1].clamped
    assert guard.counters.clamped_ticks > 0


def test_acceleration_limited_per_tick(guard, limits):
    decisions = run_ticks(guard, 0, 30, BaseVelocity(linear_x=0.5, angular_z=1.5))
    linear = [0.0] + [d.base.linear_x for d in decisions]
    angular = [0.0] + [d.base.angular_z for d in decisions]
    max_dv = limits.max_linear_accel_mps2 * 0.02
    max_dw = limits.max_angular_accel_rps2 * 0.02
    assert max(np.abs(np.diff(linear))) <= max_dv + 1e-12
    assert max(np.abs(np.diff(angular))) <= max_dw + 1e-12
    # The first tick moves exactly one acceleration step: the ramp starts from zero.
    assert linear[1] == pytest.approx(max_dv)


def test_estop_zeroes_at_once_and_resumes_from_zero(guard, limits):
    wanted = BaseVelocity(linear_x=0.4)
    run_ticks(guard, 0, 60, wanted)
    guard.set_estop(True)
    stopped = run_ticks(guard, 60 * PERIOD_NS, 5, wanted)
    assert all(d.source == "estop" and d.base == BaseVelocity() for d in stopped)
    guard.set_estop(False)
    resumed = run_ticks(guard, 65 * PERIOD_NS, 1, wanted)[0]
    assert resumed.source == "policy"
    assert resumed.base.linear_x == pytest.approx(limits.max_linear_accel_mps2 * 0.02)


def test_teleop_has_priority_until_its_timeout(guard):
    policy = BaseVelocity(linear_x=0.3)
    teleop = BaseVelocity(angular_z=0.0)  # a joystick held at rest stops the robot
    run_ticks(guard, 0, 40, policy)
    now_ns = 40 * PERIOD_NS
    guard.on_teleop(teleop, now_ns)
    taken = run_ticks(guard, now_ns, 20, policy)  # 0.4 s < teleop_timeout_s 0.5
    assert all(d.source == "teleop" for d in taken)
    assert taken[-1].base.linear_x == pytest.approx(0.0)
    released = run_ticks(guard, now_ns + 600 * MS, 1, policy)[0]
    assert released.source == "policy"


def test_teleop_obeys_limits_and_estop(guard, limits):
    for i in range(100):
        guard.on_teleop(BaseVelocity(linear_x=10.0), i * PERIOD_NS)
        decision = guard.step(i * PERIOD_NS)
    assert decision.base.linear_x == pytest.approx(limits.max_linear_mps)
    guard.set_estop(True)
    assert guard.step(100 * PERIOD_NS).base == BaseVelocity()


def test_non_finite_policy_twist_zeroes_immediately(guard):
    run_ticks(guard, 0, 10, BaseVelocity(linear_x=0.2))
    guard.on_policy(BaseVelocity(linear_x=math.nan), 10 * PERIOD_NS)
    decision = guard.step(10 * PERIOD_NS)
    assert decision.source == "quiet"
    assert decision.base == BaseVelocity()
    assert guard.counters.rejected_base == 1


def test_clock_going_back_zeroes_and_the_old_command_never_returns(guard):
    s = 1_000_000_000
    guard.on_policy(BaseVelocity(linear_x=0.2), 100 * s)
    guard.on_teleop(BaseVelocity(angular_z=0.3), 100 * s)
    guard.on_joints({"joint_lift": 0.4}, 100 * s)
    assert guard.step(100 * s).source == "teleop"
    # /clock restarts (sim reset, bag loop): a negative age is stale, not fresh.
    assert guard.step(1 * s).source == "quiet"
    assert guard.limit_arm(arm(0.4, names=("joint_lift",)), 0.5, 1 * s) is None
    # Back at the old arrival time, the commands from before the reset stay gone.
    assert guard.step(100 * s + 10 * MS).source == "quiet"
    assert guard.limit_arm(arm(0.4, names=("joint_lift",)), 0.5, 100 * s + 10 * MS) is None


def test_a_small_step_back_of_the_clock_is_noise(guard):
    guard.on_policy(BaseVelocity(linear_x=0.2), 100 * MS)
    assert guard.step(100 * MS).source == "policy"
    assert guard.step(80 * MS).source == "policy"  # NTP stepped the clock back 20 ms


NAMES = ("joint_lift", "joint_arm", "joint_wrist_yaw")


def arm(*positions: float, names: tuple[str, ...] = NAMES) -> ArmTarget:
    return ArmTarget(names=names, positions=np.array(positions, dtype=np.float64))


def test_arm_clamped_to_range_and_speed(guard, limits):
    guard.on_joints({"joint_lift": 0.4, "joint_arm": 0.1, "joint_wrist_yaw": 0.0}, 0)
    # 1 s to get there: lift may move 0.2 m, wrist 1.5 rad; the arm target is beyond its max.
    limited = guard.limit_arm(arm(0.5, 9.0, -3.0), duration_s=1.0, now_ns=10 * MS)
    assert limited is not None
    assert limited.names == NAMES
    np.testing.assert_allclose(limited.positions, [0.5, 0.3, -1.5])
    joint_arm = limits.joints["joint_arm"]
    assert joint_arm.min <= limited.positions[1] <= joint_arm.max


def test_arm_zero_duration_moves_one_tick(guard):
    guard.on_joints({"joint_lift": 0.4, "joint_arm": 0.1, "joint_wrist_yaw": 0.0}, 0)
    limited = guard.limit_arm(arm(0.8, 0.1, 0.0), duration_s=0.0, now_ns=0)
    assert limited is not None
    assert limited.positions[0] == pytest.approx(0.4 + 0.2 * 0.02)


@pytest.mark.parametrize(
    ("target", "joints_age_ns", "estop"),
    [
        (arm(0.1, 0.1, math.nan), 0, False),
        (arm(0.1, names=("joint_elbow",)), 0, False),
        (arm(0.1, 0.1, 0.1), 600 * MS, False),
        (arm(0.1, 0.1, 0.1), 0, True),
    ],
    ids=["nan", "unknown-joint", "stale-joints", "estop"],
)
def test_arm_refused(guard, target, joints_age_ns, estop):
    guard.on_joints(dict.fromkeys(NAMES, 0.1), 0)
    guard.set_estop(estop)
    assert guard.limit_arm(target, duration_s=0.5, now_ns=joints_age_ns) is None
    assert guard.counters.rejected_arm == 1


def test_arm_refused_without_measurement(guard):
    assert guard.limit_arm(arm(0.1, 0.1, 0.1), duration_s=0.5, now_ns=0) is None
    guard.on_joints({"joint_lift": 0.1}, 0)  # the other joints were never measured
    assert guard.limit_arm(arm(0.1, 0.1, 0.1), duration_s=0.5, now_ns=0) is None
    assert guard.counters.rejected_arm == 2


def test_joints_measured_by_two_drivers_are_merged(guard):
    guard.on_joints({"joint_arm": 0.1, "joint_wrist_yaw": 0.0}, 0)  # the arm driver
    guard.on_joints({"wheel_left": 3.0, "joint_lift": 0.4}, 10 * MS)  # the base driver
    limited = guard.limit_arm(arm(0.4, 0.1, 0.0), duration_s=0.5, now_ns=20 * MS)
    assert limited is not None
    np.testing.assert_allclose(limited.positions, [0.4, 0.1, 0.0])


def test_one_driver_going_stale_refuses_only_targets_for_its_joints(guard):
    guard.on_joints({"joint_arm": 0.1, "joint_wrist_yaw": 0.0}, 0)
    guard.on_joints({"joint_lift": 0.4}, 600 * MS)  # the arm driver went quiet at 0
    assert guard.limit_arm(arm(0.4, 0.1, 0.0), duration_s=0.5, now_ns=610 * MS) is None
    lift_only = guard.limit_arm(arm(0.4, names=("joint_lift",)), duration_s=0.5, now_ns=610 * MS)
    assert lift_only is not None


def test_clock_going_back_drops_only_the_joints_measured_after_now(guard):
    s = 1_000_000_000
    guard.on_joints({"joint_arm": 0.1}, 100 * s)
    guard.on_joints({"joint_lift": 0.4}, 2 * s)  # /clock restarted (sim reset, bag loop)
    assert guard.limit_arm(arm(0.4, names=("joint_lift",)), 0.5, 2 * s) is not None
    assert guard.limit_arm(arm(0.1, names=("joint_arm",)), 0.5, 2 * s) is None
    assert guard.limit_arm(arm(0.1, names=("joint_arm",)), 0.5, 100 * s + 10 * MS) is None


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("period_s", 0.0),
        ("input_timeout_s", math.inf),
        ("teleop_timeout_s", -1.0),
        ("teleop_timeout_s", 3600.0),  # the operator's last twist would hold for an hour
        ("joints_timeout_s", 6.0),
    ],
)
def test_config_rejects_bad_values_by_name(limits, key, value):
    with pytest.raises(ConfigError, match=key):
        GuardConfig(limits=limits, **{key: value})


def test_config_rejects_timeout_shorter_than_period(limits):
    with pytest.raises(ConfigError, match="input_timeout_s"):
        GuardConfig(limits=limits, period_s=0.1, input_timeout_s=0.05)


finite = st.floats(-20.0, 20.0, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(
    commands=st.lists(
        st.tuples(
            st.sampled_from(["policy", "teleop", "estop", "release", "none"]),
            finite,
            finite,
            st.integers(1, 15),  # ticks until the next event
        ),
        min_size=1,
        max_size=40,
    ),
    profile=st.sampled_from(["diff_drive_arm", "stretch_like"]),
)
def test_outputs_always_within_limits(commands, profile):
    limits = profile_limits(profile)
    guard = CommandGuard(GuardConfig(limits=limits, period_s=0.02, input_timeout_s=0.15))
    now_ns = 0
    previous = BaseVelocity()
    for kind, linear, angular, ticks in commands:
        velocity = BaseVelocity(linear_x=linear, angular_z=angular)
        if kind == "policy":
            guard.on_policy(velocity, now_ns)
        elif kind == "teleop":
            guard.on_teleop(velocity, now_ns)
        elif kind in ("estop", "release"):
            guard.set_estop(kind == "estop")
        for _ in range(ticks):
            decision = guard.step(now_ns)
            base = decision.base
            assert abs(base.linear_x) <= limits.max_linear_mps + 1e-12
            assert abs(base.angular_z) <= limits.max_angular_rps + 1e-12
            if decision.source in ("quiet", "estop"):
                assert base == BaseVelocity()
            else:
                dv = limits.max_linear_accel_mps2 * 0.02 + 1e-12
                dw = limits.max_angular_accel_rps2 * 0.02 + 1e-12
                assert abs(base.linear_x - previous.linear_x) <= dv
                assert abs(base.angular_z - previous.angular_z) <= dw
            previous = base
            now_ns += PERIOD_NS


# ---------------------------------------------------------------- CDR layer (what the node runs)


@pytest.fixture
def step(limits: SafetyLimits) -> GuardStep:
    config = GuardConfig(limits=limits, period_s=0.02, input_timeout_s=0.15)
    return GuardStep(config, GuardIO())


def twist_bytes(linear_x: float, angular_z: float = 0.0) -> bytes:
    return codec.encode(codec.twist(BaseVelocity(linear_x=linear_x, angular_z=angular_z)), TWIST)


def joint_state_bytes(positions: dict[str, float], stamp_ns: int = 0) -> bytes:
    msg = message_class(JOINT_STATE)(
        header=codec.make_header(stamp_ns, ""),
        name=list(positions),
        position=np.array(list(positions.values()), dtype=np.float64),
        velocity=np.zeros(0),
        effort=np.zeros(0),
    )
    return codec.encode(msg, JOINT_STATE)


def decoded_twist(outputs, topic: str = "cmd_vel"):
    (output,) = [o for o in outputs if o.topic == topic]
    assert output.msgtype == TWIST
    return codec.decode(output.data, TWIST)


def test_step_topics(step):
    assert step.subscriptions == {
        "cmd_vel_in": TWIST,
        "cmd_vel_teleop": TWIST,
        "estop": BOOL,
        "joint_states": JOINT_STATE,
        "arm_command_in": JOINT_TRAJECTORY,
    }
    assert set(step.publications) == {"cmd_vel", "arm_command", "/diagnostics"}


def test_step_forwards_then_zeroes_on_garbage(step):
    for i in range(40):
        assert step.feed("cmd_vel_in", twist_bytes(0.3), i * PERIOD_NS) == []
        outputs = step.tick(i * PERIOD_NS)
    assert decoded_twist(outputs).linear.x == pytest.approx(0.3)
    assert step.feed("cmd_vel_in", b"\x00\x01garbage", 40 * PERIOD_NS) == []
    assert step.decode_errors == {"cmd_vel_in": 1}
    assert decoded_twist(step.tick(40 * PERIOD_NS)).linear.x == 0.0


def test_step_garbage_teleop_stands_the_robot_still_until_teleop_is_quiet(step):
    step.feed("cmd_vel_in", twist_bytes(0.1), 0)
    step.feed("cmd_vel_teleop", twist_bytes(0.0, 0.3), 0)
    assert step.guard.step(0).source == "teleop"
    assert step.feed("cmd_vel_teleop", b"\x00\x01garbage", PERIOD_NS) == []
    assert step.decode_errors == {"cmd_vel_teleop": 1}
    # The operator's command is unreadable: zero from teleop, not the policy taking over.
    for tick in range(2, 20):
        step.feed("cmd_vel_in", twist_bytes(0.1), tick * PERIOD_NS)
        decision = step.guard.step(tick * PERIOD_NS)
        assert decision.source == "teleop"
    assert decision.base == BaseVelocity()  # ramped down to a standstill
    quiet_ns = PERIOD_NS + round(step.guard.config.teleop_timeout_s * 1e9) + PERIOD_NS
    step.feed("cmd_vel_in", twist_bytes(0.1), quiet_ns)
    assert step.guard.step(quiet_ns).source == "policy"


def test_the_operators_estop_is_not_released_by_the_topic(step):
    step.feed("cmd_vel_in", twist_bytes(0.1), 0)
    step.set_estop(True, ESTOP_OPERATOR)
    release = codec.encode(message_class(BOOL)(data=False), BOOL)
    step.feed("estop", release, 0)  # an e-stop bridge repeating "all clear"
    assert step.guard.step(0).source == "estop"
    step.feed("estop", codec.encode(message_class(BOOL)(data=True), BOOL), 0)
    step.set_estop(False, ESTOP_OPERATOR)  # the operator's reset ends every stop
    step.feed("cmd_vel_in", twist_bytes(0.1), PERIOD_NS)
    assert step.guard.step(PERIOD_NS).source == "policy"


def test_step_estop_topic_and_diagnostics(step):
    step.feed("cmd_vel_in", twist_bytes(0.3), 0)
    step.feed("estop", codec.encode(message_class(BOOL)(data=True), BOOL), 0)
    outputs = step.tick(0)
    assert decoded_twist(outputs).linear.x == 0.0
    (diagnostics,) = [o for o in outputs if o.topic == "/diagnostics"]
    status = codec.decode(diagnostics.data, diagnostics.msgtype).status[0]
    assert status.level == codec.DiagnosticLevel.WARN
    assert "e-stop" in status.message
    assert {kv.key: kv.value for kv in status.values}["estop"] == "true"
    # Diagnostics come once per period, not every tick.
    assert [o.topic for o in step.tick(PERIOD_NS)] == ["cmd_vel"]


def test_step_limits_single_point_trajectory(step):
    step.feed("joint_states", joint_state_bytes({"joint_lift": 0.4, "joint_arm": 0.1}), 0)
    target = ArmTarget(names=("joint_lift", "joint_arm"), positions=np.array([0.9, 0.15]))
    trajectory = codec.joint_trajectory(target, 123_000_000_000, "base_link", 500 * MS)
    data = codec.encode(trajectory, JOINT_TRAJECTORY)
    (output,) = step.feed("arm_command_in", data, 10 * MS)
    assert output.topic == "arm_command"
    forwarded = codec.decode(output.data, output.msgtype)
    # Lift: range max 0.8, but 0.2 m/s for 0.5 s from 0.4 allows only 0.5.
    np.testing.assert_allclose(forwarded.points[0].positions, [0.5, 0.15])
    assert codec.stamp_to_ns(forwarded.header.stamp) == 123_000_000_000
    assert forwarded.header.frame_id == "base_link"


def test_a_trajectory_started_in_the_past_is_limited_over_what_is_left_of_it(step):
    """Stamped 0.45 s ago with 0.5 s to go, the controller reaches the point in 0.05 s: the
    guard limits the motion over that and hands it on as starting on receipt."""
    now = 1_000 * MS
    step.feed("joint_states", joint_state_bytes({"joint_lift": 0.4}), now)
    target = ArmTarget(names=("joint_lift",), positions=np.array([0.8]))
    trajectory = codec.joint_trajectory(target, now - 450 * MS, "base_link", 500 * MS)
    (output,) = step.feed("arm_command_in", codec.encode(trajectory, JOINT_TRAJECTORY), now)
    forwarded = codec.decode(output.data, output.msgtype)
    np.testing.assert_allclose(forwarded.points[0].positions, [0.41])  # 0.2 m/s · 0.05 s
    assert codec.stamp_to_ns(forwarded.header.stamp) == codec.TRAJECTORY_STARTS_ON_RECEIPT
    assert codec.duration_to_ns(forwarded.points[0].time_from_start) == 50 * MS


def trajectory_bytes(positions: dict[str, float]) -> bytes:
    target = ArmTarget(names=tuple(positions), positions=np.array(list(positions.values())))
    return codec.encode(codec.joint_trajectory(target, 0, "base_link", 500 * MS), JOINT_TRAJECTORY)


def test_step_merges_joint_states_of_two_drivers(step):
    target = trajectory_bytes({"joint_lift": 0.4, "joint_arm": 0.1, "joint_wrist_yaw": 0.0})
    step.feed("joint_states", joint_state_bytes({"wheel_left": 3.0, "joint_lift": 0.4}), 0)
    for i in range(1, 7):
        now = i * 10 * MS
        driver = (
            {"joint_arm": 0.1, "joint_wrist_yaw": 0.0}
            if i % 2
            else {"wheel_left": 3.0, "wheel_right": -1.0, "joint_lift": 0.4}
        )
        step.feed("joint_states", joint_state_bytes(driver, now), now)
        assert len(step.feed("arm_command_in", target, now)) == 1
    assert step.decode_errors == {}
    assert step.guard.counters.rejected_arm == 0


def test_step_bad_joint_state_voids_only_the_joints_it_names(step):
    step.feed("joint_states", joint_state_bytes({"joint_lift": 0.4, "joint_arm": 0.1}), 0)
    # A non-finite wheel is no joint the guard commands: no error.
    step.feed("joint_states", joint_state_bytes({"wheel_left": math.nan, "joint_lift": 0.4}), 0)
    assert step.decode_errors == {}
    step.feed("joint_states", joint_state_bytes({"joint_lift": math.nan}), 10 * MS)
    assert step.decode_errors == {"joint_states": 1}
    assert step.feed("arm_command_in", trajectory_bytes({"joint_lift": 0.4}), 20 * MS) == []
    assert len(step.feed("arm_command_in", trajectory_bytes({"joint_arm": 0.1}), 20 * MS)) == 1
    # Bytes that do not decode name no joints: all are voided.
    step.feed("joint_states", b"\x00\x01garbage", 30 * MS)
    assert step.feed("arm_command_in", trajectory_bytes({"joint_arm": 0.1}), 40 * MS) == []


def test_step_stamped_and_forward_controller(limits):
    io = GuardIO(
        stamped_in=True,
        stamped_out=True,
        arm_command_type="float64_multi_array",
        arm_joint_names=("joint_lift", "joint_arm"),
        frame_id="base_footprint",
    )
    step = GuardStep(GuardConfig(limits=limits), io)
    stamped = codec.twist_stamped(BaseVelocity(linear_x=0.01), 0, "base_link")
    step.feed("cmd_vel_in", codec.encode(stamped, TWIST_STAMPED), 0)
    (command, _diagnostics) = step.tick(0)
    message = codec.decode(command.data, command.msgtype)
    assert command.msgtype == TWIST_STAMPED
    assert message.header.frame_id == "base_footprint"
    assert message.twist.linear.x == pytest.approx(0.01)
    step.feed("joint_states", joint_state_bytes({"joint_lift": 0.4, "joint_arm": 0.1}), 0)
    array = codec.float64_multi_array([0.41, 0.3])
    (output,) = step.feed("arm_command_in", codec.encode(array, FLOAT64_MULTI_ARRAY), 0)
    assert output.msgtype == FLOAT64_MULTI_ARRAY
    # First command: one tick of motion (0.2 m/s · 0.02 s) at most.
    np.testing.assert_allclose(codec.decode(output.data, FLOAT64_MULTI_ARRAY).data, [0.404, 0.104])
    wrong_size = codec.encode(codec.float64_multi_array([0.4]), FLOAT64_MULTI_ARRAY)
    assert step.feed("arm_command_in", wrong_size, 0) == []
    assert step.decode_errors == {"arm_command_in": 1}


def test_io_needs_joint_names_for_forward_controller():
    with pytest.raises(ConfigError, match="arm_joint_names"):
        GuardIO(arm_command_type="float64_multi_array")


def test_step_zero_on_stop_restarts_the_ramp(step, limits):
    for i in range(40):
        step.feed("cmd_vel_in", twist_bytes(0.3), i * PERIOD_NS)
        step.tick(i * PERIOD_NS)
    (output,) = step.zero(40 * PERIOD_NS)
    assert decoded_twist([output]).linear.x == 0.0
    step.feed("cmd_vel_in", twist_bytes(0.3), 41 * PERIOD_NS)
    resumed = decoded_twist(step.tick(41 * PERIOD_NS)).linear.x
    assert resumed == pytest.approx(limits.max_linear_accel_mps2 * 0.02)


def test_step_garbage_estop_engages_it_until_a_readable_false(step):
    step.feed("cmd_vel_in", twist_bytes(0.3), 0)
    assert step.feed("estop", b"\x00\x01\x00\x00", 0) == []  # a header, no payload
    assert step.decode_errors == {"estop": 1}
    assert step.guard.step(0).source == "estop"
    step.feed("estop", codec.encode(message_class(BOOL)(data=False), BOOL), PERIOD_NS)
    step.feed("cmd_vel_in", twist_bytes(0.3), PERIOD_NS)
    assert step.guard.step(PERIOD_NS).source == "policy"


def test_step_diagnostics_go_on_after_the_clock_goes_back(step):
    s = 1_000_000_000
    assert "/diagnostics" in [o.topic for o in step.tick(100 * s)]
    # /clock restarted (sim reset, bag loop): reports do not wait for it to get back to 100 s.
    assert "/diagnostics" in [o.topic for o in step.tick(1 * s)]
    assert "/diagnostics" not in [o.topic for o in step.tick(1 * s + PERIOD_NS)]
