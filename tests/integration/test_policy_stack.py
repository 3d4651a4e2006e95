"""policy_node, command_guard and bag_play as separate processes on real DDS, fed a made-up bag."""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from pathlib import Path

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Twist
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import ParameterType, ParameterValue
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from ros_harness import (
    KILL_BRACKET_NS,
    MAX_UNTIMED,
    check_arm_commands,
    check_control_rate,
    sent_twists,
    set_parameter,
    wait_for,
)
from sensor_msgs.msg import Image
from std_msgs.msg import Bool
from trajectory_msgs.msg import JointTrajectory

from rl_deploy import codec
from rl_deploy.codec.typestore import BOOL, DIAGNOSTIC_ARRAY, IMAGE, TWIST
from rl_deploy.replay.bag import Bag
from rl_deploy.replay.synthetic import SyntheticBagSpec, write_synthetic_bag

pytestmark = pytest.mark.integration

CONTROL_PERIOD_S = 0.1  # models/example_reach.yaml: control_rate_hz 10
GUARD_PERIOD_S = 0.02  # config/command_guard.yaml: period_s
STALLED_S = 2.5 * GUARD_PERIOD_S  # a longer gap in the guard's output: its process was not run
LIMITS = {"linear": 0.5, "angular": 1.5}  # config/robots/diff_drive_arm.yaml
DEPTH = "/camera/depth/image_raw"
POLICY_ARGS = ["--params-file", "config/policy_node.yaml"]
GUARD_ARGS = ["--params-file", "config/command_guard.yaml", "-r", "cmd_vel_in:=/rl_deploy/cmd_vel"]
GUARD_ARGS += ["-r", "arm_command_in:=/rl_deploy/arm_command"]
MS = 1_000_000


BAG_SPEC = SyntheticBagSpec(seconds=4.0, width=160, height=120)


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_bag(tmp_path_factory.mktemp("bag") / "synthetic", BAG_SPEC)


@pytest.fixture(scope="module")
def long_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Played once with its own stamps, which the test then reads back from the file."""
    spec = dataclasses.replace(BAG_SPEC, seconds=40.0)
    return write_synthetic_bag(tmp_path_factory.mktemp("long_bag") / "synthetic", spec)


def bag_depth_headers(bag: Path) -> dict[int, str]:
    """Stamp → frame_id of every depth frame in the bag."""
    headers = (codec.decode(m.data, IMAGE).header for m in Bag(bag).messages([DEPTH]))
    return {codec.stamp_to_ns(h.stamp): str(h.frame_id) for h in headers}


def twists(probe, topic: str, since_ns: int = 0) -> list[tuple[int, float, float]]:
    out = []
    for message in probe.messages(topic, since_ns):
        twist = codec.decode(message.data, TWIST)
        out.append((message.monotonic_ns, float(twist.linear.x), float(twist.angular.z)))
    return out


def statuses(probe, name: str, since_ns: int = 0) -> list:
    found = []
    for message in probe.messages("/diagnostics", since_ns):
        array = codec.decode(message.data, DIAGNOSTIC_ARRAY)
        found += [status for status in array.status if status.name == name]
    return found


def moving(probe, since_ns: int) -> bool:
    return any(lin != 0.0 or ang != 0.0 for _, lin, ang in twists(probe, "/cmd_vel", since_ns))


def test_commands_at_card_rate_within_limits_with_headers(start_node, probe, long_bag):
    probe.listen("/rl_deploy/cmd_vel", Twist)
    probe.listen("/rl_deploy/arm_command", JointTrajectory)
    probe.listen("/rl_deploy/target_mask", Image)
    probe.listen("/diagnostics", DiagnosticArray)
    start_node("policy_node", POLICY_ARGS)
    # The bag's own stamps (no --restamp: staleness is judged by arrival time), so the headers
    # the outputs carry are checked against the file rather than against frames a busy
    # loopback may have lost on the way to this probe.
    start_node("bag_play", [], [str(long_bag)])
    wait_for(lambda: statuses(probe, "rl_deploy: pipeline"), 30, "pipeline diagnostics")
    wait_for(
        lambda: any(s.level == 0 for s in statuses(probe, "rl_deploy: pipeline")),
        15,
        "the pipeline running on all inputs",
    )
    window_start, window_wall_ns = time.monotonic_ns(), time.time_ns()
    time.sleep(3.0)
    window = twists(probe, "/rl_deploy/cmd_vel", window_start)
    check_control_rate(probe, "/rl_deploy/cmd_vel", window_wall_ns, CONTROL_PERIOD_S, 3.0)
    assert all(math.isfinite(lin) and math.isfinite(ang) for _, lin, ang in window)
    assert all(
        abs(lin) <= LIMITS["linear"] and abs(ang) <= LIMITS["angular"] for _, lin, ang in window
    )
    assert any(lin != 0.0 or ang != 0.0 for _, lin, ang in window), "the policy drove"
    # Outputs carry the header (stamp and frame) of the depth frame they were computed from.
    masks = [
        codec.decode(m.data, IMAGE) for m in probe.messages("/rl_deploy/target_mask", window_start)
    ]
    assert len(masks) >= 10
    depth = bag_depth_headers(long_bag)
    for mask in masks:
        stamp_ns = codec.stamp_to_ns(mask.header.stamp)
        assert depth.get(stamp_ns) == mask.header.frame_id, f"mask stamp {stamp_ns} not in bag"
    assert {m.encoding for m in masks} == {"mono8"}
    check_arm_commands(probe, "/rl_deploy/arm_command", window_wall_ns, CONTROL_PERIOD_S, 3.0)


def test_target_mask_is_published_while_someone_listens(start_node, probe, bag):
    """The camera-sized debug mask costs a frame's encoding each step: only for a listener."""
    probe.listen("/diagnostics", DiagnosticArray)
    start_node("policy_node", [*POLICY_ARGS, "-p", "diagnostics_period_s:=0.2"])
    start_node("bag_play", [], [str(bag), "--loop", "--restamp"])

    def mask_state(since_ns: int) -> list[str]:
        found = statuses(probe, "rl_deploy: pipeline", since_ns)
        values = [kv for status in found if status.level == 0 for kv in status.values]
        return [kv.value for kv in values if kv.key == "target_mask"]

    wait_for(lambda: "off: no listener" in mask_state(0), 30, "the mask off without a listener")
    listened_ns = time.monotonic_ns()
    probe.listen("/rl_deploy/target_mask", Image)
    wait_for(lambda: probe.messages("/rl_deploy/target_mask"), 15, "masks once listened to")
    wait_for(lambda: "published" in mask_state(listened_ns), 15, "diagnostics saying so")
    mask = codec.decode(probe.messages("/rl_deploy/target_mask")[-1].data, IMAGE)
    assert (mask.height, mask.width, mask.encoding) == (BAG_SPEC.height, BAG_SPEC.width, "mono8")


def test_guard_zeroes_within_two_periods_after_policy_sigkill(start_node, probe, bag):
    trials = 10
    # Best effort: a reliable reader holds every later sample back until a lost one is repaired
    # (seen: one trial at 1.0 s on a busy CI machine), while the guard repeats its zero at 50 Hz
    # anyway. Deep: a pause of this process (0.3 s for a full collection of its heap in the whole
    # suite) must not let later samples overwrite the first zero, as the sensor profile's five
    # did (50 Hz).
    probe.listen(
        "/cmd_vel", Twist, qos=QoSProfile(depth=100, reliability=ReliabilityPolicy.BEST_EFFORT)
    )
    start_node("command_guard", GUARD_ARGS)
    latencies_s: list[float] = []
    untimed: list[str] = []  # trials that measured the machine, not the guard (at most MAX_UNTIMED)
    while len(latencies_s) < trials and len(untimed) < MAX_UNTIMED:
        trial = len(latencies_s)
        started_ns = time.monotonic_ns()
        # A fresh player per trial: a writer that outlived several SIGKILLed best-effort readers
        # (until their DDS leases ran out) sometimes reached none of the next node's camera
        # subscriptions. The guard, the subject here, runs through all trials.
        player = start_node("bag_play", [], [str(bag), "--loop", "--restamp"])
        policy = start_node("policy_node", POLICY_ARGS)
        wait_for(lambda t0=started_ns: moving(probe, t0), 30, f"motion in trial {trial}")
        time.sleep(0.05 + 0.1 * trial / trials)  # kill at different phases of the control period
        killed_ns, bracket_end_ns = policy.kill_timed()
        # When the guard sent its zero (its own stamp), not when this process got round to it.
        zero = wait_for(
            lambda t0=killed_ns: next(
                (t for t, lin, ang in sent_twists(probe, "/cmd_vel", t0) if lin == ang == 0.0),
                None,
            ),
            2,
            f"a zero command after SIGKILL in trial {trial}",
        )
        player.stop()
        # The guard sends every GUARD_PERIOD_S: a longer silence in its own send stamps means its
        # process was not running (the VM's other work), which no code of the guard can beat.
        sent = [t for t, _, _ in sent_twists(probe, "/cmd_vel", killed_ns - 100 * MS) if t <= zero]
        silence_s = max((b - a for a, b in itertools.pairwise(sent)), default=0) / 1e9
        if bracket_end_ns - killed_ns > KILL_BRACKET_NS:
            untimed.append("this process held up at the kill")
        elif silence_s > STALLED_S:
            untimed.append(f"the guard silent {silence_s:.3f} s, {(zero - killed_ns) / 1e9:.3f} s")
        else:
            latencies_s.append((zero - killed_ns) / 1e9)
    print(
        f"guard zero after SIGKILL, {trials} trials: {[round(x, 3) for x in latencies_s]} s; "
        f"not timed: {untimed}"
    )
    assert len(latencies_s) == trials, untimed
    assert max(latencies_s) < 2 * CONTROL_PERIOD_S


def get_state(probe) -> int:
    return probe.call(GetState, "/policy_node/get_state", GetState.Request()).current_state.id


def change_state(probe, transition: int) -> bool:
    request = ChangeState.Request()
    request.transition.id = transition
    return probe.call(ChangeState, "/policy_node/change_state", request).success


def test_policy_lifecycle(start_node, probe, bag):
    probe.listen("/rl_deploy/cmd_vel", Twist)
    start_node("policy_node", [*POLICY_ARGS, "-p", "ros.autostart:=false"])
    start_node("bag_play", [], [str(bag), "--loop", "--restamp"])
    wait_for(lambda: get_state(probe) == State.PRIMARY_STATE_UNCONFIGURED, 30, "unconfigured")
    assert change_state(probe, Transition.TRANSITION_CONFIGURE)
    assert get_state(probe) == State.PRIMARY_STATE_INACTIVE
    time.sleep(0.5)
    assert probe.messages("/rl_deploy/cmd_vel") == [], "inactive: no commands"
    assert change_state(probe, Transition.TRANSITION_ACTIVATE)
    wait_for(lambda: len(probe.messages("/rl_deploy/cmd_vel")) >= 5, 10, "commands once active")

    def driving() -> bool:
        return any(lin or ang for _, lin, ang in sent_twists(probe, "/rl_deploy/cmd_vel", 0))

    wait_for(driving, 10, "a command that drives")  # the first ones wait for the bag's inputs
    assert change_state(probe, Transition.TRANSITION_DEACTIVATE)
    deactivated_ns = time.time_ns()  # the node answered: its transition is done
    time.sleep(0.5)
    # By the node's send stamps: none after deactivation (one sent before it may arrive late),
    # and the last one a zero, so that the guard stops the base at once.
    assert sent_twists(probe, "/rl_deploy/cmd_vel", deactivated_ns) == []
    assert max(sent_twists(probe, "/rl_deploy/cmd_vel", 0))[1:] == (0.0, 0.0)
    # Activating again loads the model again (it was freed on deactivate).
    assert change_state(probe, Transition.TRANSITION_ACTIVATE)
    reactivated_ns = time.monotonic_ns()
    wait_for(lambda: probe.messages("/rl_deploy/cmd_vel", reactivated_ns), 10, "commands again")
    assert change_state(probe, Transition.TRANSITION_DEACTIVATE)
    assert change_state(probe, Transition.TRANSITION_CLEANUP)
    assert get_state(probe) == State.PRIMARY_STATE_UNCONFIGURED


def test_policy_rejects_bad_parameters_by_name(start_node, probe):
    start_node("policy_node", [*POLICY_ARGS, "-p", "ros.autostart:=false"])
    wait_for(lambda: get_state(probe) == State.PRIMARY_STATE_UNCONFIGURED, 30, "node up")
    negative = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=-1.0)
    result = set_parameter(probe, "policy_node", "timeouts.camera_s", negative)
    assert not result.successful
    assert "timeouts.camera_s" in result.reason
    bogus = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value="lidar")
    result = set_parameter(probe, "policy_node", "pose_source", bogus)
    assert not result.successful
    assert "pose_source" in result.reason
    qos = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value="fast:3")
    result = set_parameter(probe, "policy_node", "ros.qos.camera", qos)
    assert not result.successful
    assert "ros.qos.camera" in result.reason
    fine = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=0.3)
    assert set_parameter(probe, "policy_node", "timeouts.camera_s", fine).successful
    forever = ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=1e9)
    result = set_parameter(probe, "policy_node", "timeouts.camera_s", forever)
    assert not result.successful and "timeouts.camera_s must be at most" in result.reason
    # Integer arrays reach the check as rclpy's array.array: a valid one is accepted.
    ids = ParameterValue(
        type=ParameterType.PARAMETER_INTEGER_ARRAY, integer_array_value=[5, 4, 3, 2, 1]
    )
    result = set_parameter(probe, "policy_node", "masks.class_ids", ids)
    assert result.successful, result.reason
    # A card path too long for the file system: a reason, and the node lives on.
    long_name = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value="c" * 300)
    result = set_parameter(probe, "policy_node", "policy.card", long_name)
    assert not result.successful and result.reason
    assert get_state(probe) == State.PRIMARY_STATE_UNCONFIGURED


def test_a_latched_estop_sent_before_the_policy_started_holds_it(start_node, probe):
    latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
    probe.publish("/estop", Bool, codec.encode(Bool(data=True), BOOL), qos=latched)
    probe.listen("/diagnostics", DiagnosticArray)
    args = ["-p", "ros.qos.estop:=transient_local", "-p", "diagnostics_period_s:=0.2"]
    start_node("policy_node", [*POLICY_ARGS, *args])

    def latest_message() -> str | None:
        reports = statuses(probe, "rl_deploy: pipeline")
        return str(reports[-1].message) if reports else None

    wait_for(lambda: latest_message() == "zero command: e-stop engaged", 30, "the latched stop")
    probe.publish("/estop", Bool, codec.encode(Bool(data=False), BOOL))
    # Released: still zero, now for want of inputs (none are sent here).
    wait_for(lambda: "e-stop" not in (latest_message() or "e-stop"), 5, "the release")


# All-NaN depth ("nan" below) decodes fine and is filled by the card's preprocessing; the
# pipeline does not yet refuse a frame with no valid pixel, so it is not in this list.
GARBAGE_DEPTH = ("wrong_encoding", "size_mismatch", "nan")


def depth_image(kind: str, stamp_ns: int) -> bytes:
    """A depth frame of the bag's size: valid, or broken in one of three ways."""
    frame = "camera_depth_optical_frame"
    if kind == "valid":
        image = codec.array_to_image(np.full((120, 160), 2.0, np.float32), "32FC1", stamp_ns, frame)
    elif kind == "nan":
        image = codec.array_to_image(
            np.full((120, 160), np.nan, np.float32), "32FC1", stamp_ns, frame
        )
    elif kind == "wrong_encoding":
        image = codec.array_to_image(np.zeros((120, 160, 3), np.uint8), "rgb8", stamp_ns, frame)
    else:  # size mismatch: the data is half of what height * step promise
        image = codec.array_to_image(np.ones((120, 160), np.float32), "32FC1", stamp_ns, frame)
        image.data = image.data[: image.data.size // 2]
    return codec.encode(image, IMAGE)


def test_garbage_depth_gives_warn_and_zero_and_nodes_live(start_node, probe, bag):
    probe.listen("/rl_deploy/cmd_vel", Twist)
    probe.listen("/diagnostics", DiagnosticArray)
    others = ["/camera/segmentation", "/joint_states", "/amcl_pose"]
    policy = start_node("policy_node", [*POLICY_ARGS, "-p", "diagnostics_period_s:=0.2"])
    start_node("bag_play", [], [str(bag), "--loop", "--restamp", "--topics", *others])

    def play_depth(kind: str, seconds: float, until=lambda: False) -> int:
        """Publish depth frames at 30 Hz for `seconds` or until `until()`; the start time."""
        start_ns = time.monotonic_ns()
        end = time.monotonic() + seconds
        while time.monotonic() < end and not until():
            probe.publish(DEPTH, Image, depth_image(kind, time.time_ns()), qos_profile_sensor_data)
            time.sleep(1 / 30)
        return start_ns

    for kind in GARBAGE_DEPTH:
        valid_ns = time.monotonic_ns()
        play_depth(
            "valid",
            30,
            until=lambda t0=valid_ns: any(
                s.level == 0 for s in statuses(probe, "rl_deploy: pipeline", t0)
            ),
        )
        assert any(s.level == 0 for s in statuses(probe, "rl_deploy: pipeline", valid_ns)), kind
        broken_ns = play_depth(kind, 1.5)
        late_ns = broken_ns + 700 * MS  # past the camera timeout of the last good frame
        commands = twists(probe, "/rl_deploy/cmd_vel", late_ns)
        assert commands, f"commands keep coming during {kind}"
        assert all(lin == ang == 0.0 for _, lin, ang in commands), kind
        warned = [s for s in statuses(probe, "rl_deploy: pipeline", late_ns) if s.level == 1]
        assert warned, f"diagnostics WARN during {kind}"
        values = {kv.key: kv.value for kv in warned[-1].values}
        assert int(values[f"decode_errors {DEPTH}"]) > 0, values
        assert policy.alive()


def test_replay_on_bag_time_with_use_sim_time(start_node, probe, bag):
    """The replay.launch.py path: the bag's /clock drives a use_sim_time stack."""
    probe.listen("/rl_deploy/target_mask", Image)
    probe.listen("/diagnostics", DiagnosticArray)
    start_node("policy_node", [*POLICY_ARGS, "-p", "use_sim_time:=true"])
    time.sleep(3.0)  # let the node come up before the bag's clock starts
    start_node("bag_play", [], [str(bag), "--clock", "100"])
    wait_for(lambda: probe.messages("/rl_deploy/target_mask"), 30, "masks on bag time")
    bag_end_ns = BAG_SPEC.start_ns + round(BAG_SPEC.seconds * 1e9)
    # The node's clock is the bag's: its diagnostics are stamped in the bag's time range.
    stamps = [
        codec.stamp_to_ns(codec.decode(m.data, DIAGNOSTIC_ARRAY).header.stamp)
        for m in probe.messages("/diagnostics")
    ]
    assert stamps
    assert all(BAG_SPEC.start_ns <= stamp <= bag_end_ns for stamp in stamps), stamps
