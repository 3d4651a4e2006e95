"""The pipeline on the shipped example policy: CDR in, safe CDR commands out, zero on any fault."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from onnx import TensorProto, helper

from rl_deploy import codec
from rl_deploy.codec import typestore as msgtypes
from rl_deploy.config import PipelineConfig, TopicsConfig
from rl_deploy.errors import ConfigError
from rl_deploy.geometry import Pose2D
from rl_deploy.pipeline import Pipeline
from rl_deploy.replay.synthetic import (
    SyntheticBagSpec,
    _joint_state,
    _pose_messages,
    _render,
    _tf,
)

MS = 1_000_000
T0 = 1_700_000_000_000_000_000
TOPICS = TopicsConfig()
SPEC = SyntheticBagSpec(width=160, height=120, start_ns=T0)


@pytest.fixture
def config(repo: Path) -> PipelineConfig:
    return PipelineConfig.from_mapping({"cmd_vel_stamped": True}, base_dir=repo)


@pytest.fixture
def pipeline(config: PipelineConfig) -> Pipeline:
    return Pipeline.from_config(config)


def feed_world(pipeline: Pipeline, now_ns: int, *, camera=True, joints=True, pose=True):
    """Feed one set of messages stamped `now_ns`, as a robot would publish them."""
    rng = np.random.default_rng(0)
    pose2d = Pose2D(1.0, 0.5, 0.0)
    if camera:
        depth_m, class_ids = _render(SPEC, pose2d, rng)
        depth = codec.array_to_image(
            np.round(depth_m * 1000).astype(np.uint16), "16UC1", now_ns, "camera_depth"
        )
        seg = codec.array_to_image(class_ids, "mono8", now_ns, "camera_depth")
        pipeline.feed(TOPICS.depth, codec.encode(depth, msgtypes.IMAGE), now_ns)
        pipeline.feed(TOPICS.segmentation, codec.encode(seg, msgtypes.IMAGE), now_ns)
    if joints:
        msg = _joint_state(SPEC, now_ns)
        pipeline.feed(TOPICS.joint_states, codec.encode(msg, msgtypes.JOINT_STATE), now_ns)
    if pose:
        for _, topic, msgtype, msg in _pose_messages(SPEC, TOPICS, pose2d, now_ns):
            pipeline.feed(topic, codec.encode(msg, msgtype), now_ns)


def decode_outputs(outputs):
    return {o.topic: codec.decode(o.data, o.msgtype) for o in outputs}


def test_commands_carry_the_camera_header_and_respect_limits(pipeline: Pipeline):
    assert pipeline.control_period_ns == 100 * MS  # the example card runs at 10 Hz
    for step in range(20):
        now = T0 + step * pipeline.control_period_ns
        feed_world(pipeline, now - 5 * MS)
        out = decode_outputs(pipeline.tick(now))
        twist = out[TOPICS.cmd_vel]
        assert codec.stamp_to_ns(twist.header.stamp) == now - 5 * MS
        assert twist.header.frame_id == "base_link"
        assert abs(twist.twist.linear.x) <= 0.3 + 1e-9
        assert abs(twist.twist.angular.z) <= 0.8 + 1e-9
        mask = out[TOPICS.mask_out]
        assert mask.header.frame_id == "camera_depth"
        assert mask.encoding == "mono8"
        assert set(np.unique(mask.data)) <= {0, 255}
        arm = out[TOPICS.arm_command]
        assert list(arm.joint_names) == ["joint_lift", "joint_arm", "joint_wrist_yaw"]
        assert np.isfinite(arm.points[0].positions).all()
    assert pipeline.last_tick is not None
    assert pipeline.last_tick.zero_reason is None
    assert pipeline.stats.zero_commands["stale"] == 0


def test_stale_joint_states_zero_the_command(pipeline: Pipeline):
    feed_world(pipeline, T0)
    pipeline.tick(T0 + 50 * MS)
    assert pipeline.last_tick.zero_reason is None
    # camera and pose keep coming, joint states stop: after 0.5 s the command must be zero
    feed_world(pipeline, T0 + 600 * MS, joints=False)
    out = decode_outputs(pipeline.tick(T0 + 650 * MS))
    assert pipeline.last_tick.zero_reason == "stale"
    twist = out[TOPICS.cmd_vel].twist
    assert (twist.linear.x, twist.linear.y, twist.angular.z) == (0.0, 0.0, 0.0)
    assert "/joint_states" in pipeline.last_tick.detail


def test_camera_stop_zeroes_and_recovers(pipeline: Pipeline):
    feed_world(pipeline, T0)
    feed_world(pipeline, T0 + 700 * MS, camera=False)
    pipeline.tick(T0 + 700 * MS)
    assert pipeline.last_tick.zero_reason == "stale"
    feed_world(pipeline, T0 + 800 * MS)
    pipeline.tick(T0 + 810 * MS)
    assert pipeline.last_tick.zero_reason is None


def test_estop_zeroes_until_released(pipeline: Pipeline):
    bool_msg = codec.message_class(msgtypes.BOOL)
    feed_world(pipeline, T0)
    pipeline.feed(TOPICS.estop, codec.encode(bool_msg(data=True), msgtypes.BOOL), T0)
    pipeline.tick(T0 + 10 * MS)
    assert pipeline.last_tick.zero_reason == "estop"
    assert pipeline.last_tick.command.base.linear_x == 0.0
    pipeline.feed(TOPICS.estop, codec.encode(bool_msg(data=False), msgtypes.BOOL), T0)
    pipeline.tick(T0 + 20 * MS)
    assert pipeline.last_tick.zero_reason is None


def test_garbage_estop_engages_it_until_a_readable_false(pipeline: Pipeline):
    bool_msg = codec.message_class(msgtypes.BOOL)
    feed_world(pipeline, T0)
    pipeline.feed(TOPICS.estop, b"\x00\x01\x00\x00", T0)  # header, no payload
    assert pipeline.stats.decode_errors[TOPICS.estop] == 1
    pipeline.tick(T0 + 10 * MS)
    assert pipeline.last_tick.zero_reason == "estop"
    pipeline.feed(TOPICS.estop, codec.encode(bool_msg(data=False), msgtypes.BOOL), T0 + 15 * MS)
    pipeline.tick(T0 + 20 * MS)
    assert pipeline.last_tick.zero_reason is None


def test_diagnostics_go_on_after_the_clock_goes_back(pipeline: Pipeline):
    topic = pipeline.config.topics.diagnostics
    assert topic in [o.topic for o in pipeline.tick(T0)]
    # /clock restarted with nothing held from after it: reports do not wait to get back to T0.
    assert topic in [o.topic for o in pipeline.tick(T0 - 100 * 10**9)]


def test_garbage_is_counted_and_zeroes_without_raising(pipeline: Pipeline):
    feed_world(pipeline, T0)
    pipeline.tick(T0 + 10 * MS)
    assert pipeline.last_tick.zero_reason is None
    pipeline.feed(TOPICS.depth, b"\x00\x01\x00\x00garbage", T0 + 20 * MS)
    wrong = codec.array_to_image(np.zeros((4, 4, 3), np.uint8), "rgb8", T0, "cam")
    pipeline.feed(TOPICS.depth, codec.encode(wrong, msgtypes.IMAGE), T0 + 20 * MS)
    pipeline.tick(T0 + 30 * MS)
    assert pipeline.stats.decode_errors[TOPICS.depth] == 2
    assert pipeline.last_tick.zero_reason == "no_frames"
    assert pipeline.last_tick.command.base.linear_x == 0.0


def test_missing_joint_is_not_a_decode_error_but_the_tick_names_it(pipeline: Pipeline):
    msg = _joint_state(SPEC, T0)
    msg.name = [n if n != "joint_arm" else "joint_elbow" for n in msg.name]
    pipeline.feed(TOPICS.joint_states, codec.encode(msg, msgtypes.JOINT_STATE), T0)
    assert TOPICS.joint_states not in pipeline.stats.decode_errors  # one driver's share is valid
    pipeline.tick(T0)
    assert pipeline.last_tick.zero_reason == "invalid_input"
    assert pipeline.last_tick.detail == "no joint_arm on /joint_states yet"


# Two drivers on /joint_states, each with its own joints (the card needs lift, arm, wrist yaw).
ARM_DRIVER = {"joint_arm": 0.1, "joint_wrist_yaw": 0.0}
BASE_DRIVER = {"wheel_left": 12.0, "wheel_right": -3.0, "joint_lift": 0.5}


def feed_joints(pipeline: Pipeline, positions: dict[str, float], now_ns: int) -> None:
    """One driver's JointState: only the joints it drives."""
    msg = codec.message_class(msgtypes.JOINT_STATE)(
        header=codec.make_header(now_ns, ""),
        name=list(positions),
        position=np.array(list(positions.values()), dtype=np.float64),
        velocity=np.zeros(0),
        effort=np.zeros(0),
    )
    pipeline.feed(TOPICS.joint_states, codec.encode(msg, msgtypes.JOINT_STATE), now_ns)


def test_joints_split_over_two_publishers_drive_every_tick(pipeline: Pipeline):
    feed_joints(pipeline, BASE_DRIVER, T0)
    for step in range(1, 21):
        now = T0 + step * pipeline.control_period_ns
        feed_world(pipeline, now - 5 * MS, joints=False)
        feed_joints(pipeline, ARM_DRIVER if step % 2 else BASE_DRIVER, now - 5 * MS)
        pipeline.tick(now)
        assert pipeline.last_tick.zero_reason is None, pipeline.last_tick.detail
    assert TOPICS.joint_states not in pipeline.stats.decode_errors
    arm = pipeline.last_tick.command.arm
    assert arm is not None and arm.names == ("joint_lift", "joint_arm", "joint_wrist_yaw")


def test_a_joint_that_never_arrives_is_named(pipeline: Pipeline):
    feed_world(pipeline, T0, joints=False)
    feed_joints(pipeline, BASE_DRIVER, T0)
    feed_joints(pipeline, {"joint_wrist_yaw": 0.0}, T0)
    pipeline.tick(T0 + 10 * MS)
    assert pipeline.last_tick.zero_reason == "invalid_input"
    assert pipeline.last_tick.detail == "no joint_arm on /joint_states yet"
    assert pipeline.last_tick.command.base.linear_x == 0.0


def test_one_publisher_going_stale_names_its_joints(pipeline: Pipeline):
    feed_world(pipeline, T0, joints=False)
    feed_joints(pipeline, ARM_DRIVER, T0)
    feed_joints(pipeline, BASE_DRIVER, T0)
    pipeline.tick(T0 + 10 * MS)
    assert pipeline.last_tick.zero_reason is None
    # the base driver keeps publishing, the arm driver stops: past 0.5 s the command is zero
    feed_world(pipeline, T0 + 600 * MS, joints=False)
    feed_joints(pipeline, BASE_DRIVER, T0 + 600 * MS)
    pipeline.tick(T0 + 650 * MS)
    assert pipeline.last_tick.zero_reason == "stale"
    assert pipeline.last_tick.detail == "joint_arm, joint_wrist_yaw on /joint_states: 0.650 s old"
    feed_joints(pipeline, ARM_DRIVER, T0 + 700 * MS)
    pipeline.tick(T0 + 710 * MS)
    assert pipeline.last_tick.zero_reason is None


def test_a_bad_joint_state_voids_only_the_joints_it_names(pipeline: Pipeline):
    feed_world(pipeline, T0, joints=False)
    feed_joints(pipeline, ARM_DRIVER, T0)
    feed_joints(pipeline, BASE_DRIVER, T0)
    feed_joints(pipeline, {**BASE_DRIVER, "joint_lift": math.nan}, T0 + 10 * MS)
    assert pipeline.stats.decode_errors[TOPICS.joint_states] == 1
    pipeline.tick(T0 + 20 * MS)
    assert pipeline.last_tick.zero_reason == "invalid_input"
    assert pipeline.last_tick.detail == "no joint_lift on /joint_states yet"
    feed_joints(pipeline, BASE_DRIVER, T0 + 30 * MS)
    pipeline.tick(T0 + 40 * MS)
    assert pipeline.last_tick.zero_reason is None
    # A non-finite joint the stack does not use is no error; bytes that do not decode void all.
    feed_joints(pipeline, {**BASE_DRIVER, "wheel_left": math.nan}, T0 + 50 * MS)
    assert pipeline.stats.decode_errors[TOPICS.joint_states] == 1
    pipeline.feed(TOPICS.joint_states, b"\x00\x01garbage", T0 + 60 * MS)
    pipeline.tick(T0 + 70 * MS)
    assert pipeline.last_tick.zero_reason == "invalid_input"
    assert "joint_lift, joint_arm, joint_wrist_yaw" in pipeline.last_tick.detail


def test_clock_going_back_drops_the_joints_that_arrived_after_now(pipeline: Pipeline):
    before_reset = T0 + 60_000 * MS
    feed_joints(pipeline, ARM_DRIVER, before_reset)
    # /clock restarts: the base driver publishes on the new clock, the arm driver not yet.
    after_reset = T0 + 1000 * MS
    feed_world(pipeline, after_reset, joints=False)
    feed_joints(pipeline, BASE_DRIVER, after_reset)
    pipeline.tick(after_reset + 10 * MS)
    assert pipeline.last_tick.zero_reason == "invalid_input"
    assert pipeline.last_tick.detail == "no joint_arm, joint_wrist_yaw on /joint_states yet"
    # Back at their arrival time, the arm joints from before the reset do not return.
    pipeline.tick(before_reset + 10 * MS)
    assert pipeline.last_tick.detail == "no joint_arm, joint_wrist_yaw on /joint_states yet"


def card_with_model(repo: Path, tmp_path: Path, name: str, nodes: list) -> Path:
    """The example card, pointed at a model with its inputs whose graph is `nodes` (they make
    `action`, [1, 5])."""
    card = yaml.safe_load((repo / "models/example_reach.yaml").read_text())
    inputs = [
        helper.make_tensor_value_info(spec["name"], TensorProto.FLOAT, spec["shape"])
        for spec in card["inputs"]
    ]
    graph = helper.make_graph(
        nodes, name, inputs, [helper.make_tensor_value_info("action", TensorProto.FLOAT, [1, 5])]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)
    onnx.save(model, tmp_path / f"{name}.onnx")
    card["onnx"] = f"{name}.onnx"
    (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(card))
    return tmp_path / f"{name}.yaml"


def constant(name: str, dims: list[int], values: list[float]) -> onnx.NodeProto:
    tensor = helper.make_tensor(name, TensorProto.FLOAT, dims, values)
    return helper.make_node("Constant", [], [name], value=tensor)


def nan_policy(repo: Path, tmp_path: Path) -> Path:
    """A policy whose action is NaN."""
    return card_with_model(
        repo, tmp_path, "nan_policy", [constant("action", [1, 5], [math.nan] * 5)]
    )


def once_nan_policy(repo: Path, tmp_path: Path) -> Path:
    """A policy whose action is 0.1 while the pose relative to the episode start has x >= 0,
    NaN behind it (a sqrt), and NaN whenever prev_action is."""
    nodes = [
        constant("zero", [1], [0.0]),
        constant("base", [1, 5], [0.1] * 5),
        helper.make_node("Sqrt", ["pose"], ["root"]),  # NaN where x (or y) < 0
        helper.make_node("ReduceSum", ["root"], ["root_sum"], keepdims=1),
        helper.make_node("Mul", ["root_sum", "zero"], ["pose_term"]),
        helper.make_node("Mul", ["prev_action", "zero"], ["prev_term"]),
        helper.make_node("Add", ["prev_term", "pose_term"], ["terms"]),
        helper.make_node("Add", ["terms", "base"], ["action"]),
    ]
    return card_with_model(repo, tmp_path, "once_nan_policy", nodes)


def pipeline_on(repo: Path, card: Path) -> Pipeline:
    """A pipeline of the default config running the policy of `card`."""
    config = PipelineConfig.from_mapping(
        {
            "policy": {"card": str(card)},
            "robot_profile": str(repo / "config/robots/diff_drive_arm.yaml"),
        }
    )
    return Pipeline.from_config(config)


def test_one_nonfinite_step_does_not_poison_the_next(repo: Path, tmp_path: Path):
    pipeline = pipeline_on(repo, once_nan_policy(repo, tmp_path))
    feed_world(pipeline, T0)  # the episode starts at x = 1.0, y = 0.5
    pipeline.tick(T0 + 10 * MS)
    assert pipeline.last_tick.zero_reason is None
    feed_world(pipeline, T0 + 100 * MS)
    behind = Pose2D(0.5, 0.5, 0.0)  # half a metre behind the start: NaN out of the model
    for _, topic, msgtype, msg in _pose_messages(SPEC, TOPICS, behind, T0 + 100 * MS):
        pipeline.feed(topic, codec.encode(msg, msgtype), T0 + 100 * MS)
    pipeline.tick(T0 + 110 * MS)
    assert pipeline.last_tick.zero_reason == "nonfinite"
    feed_world(pipeline, T0 + 200 * MS)  # a good pose again
    out = decode_outputs(pipeline.tick(T0 + 210 * MS))
    assert pipeline.last_tick.zero_reason is None, pipeline.last_tick.detail
    assert out[TOPICS.cmd_vel].linear.x > 0.0


def test_nonfinite_policy_output_gives_zero(repo: Path, tmp_path: Path):
    pipeline = pipeline_on(repo, nan_policy(repo, tmp_path))
    feed_world(pipeline, T0)
    out = decode_outputs(pipeline.tick(T0 + 10 * MS))
    assert pipeline.last_tick.zero_reason == "nonfinite"
    assert out[TOPICS.cmd_vel].linear.x == 0.0
    # the arm holds where it is measured instead of following NaN
    held = out[TOPICS.arm_command].points[0].positions
    assert np.allclose(held, [0.5, 0.1, 0.0])


def test_zero_outputs_stop_the_base_and_hold_the_arm_where_measured(pipeline: Pipeline):
    feed_world(pipeline, T0)
    out = decode_outputs(pipeline.tick(T0 + 10 * MS))
    assert out[TOPICS.cmd_vel].twist.linear.x != 0.0, "the policy drives"
    stop = decode_outputs(pipeline.zero_outputs(T0 + 20 * MS))
    twist = stop[TOPICS.cmd_vel].twist
    assert (twist.linear.x, twist.linear.y, twist.angular.z) == (0.0, 0.0, 0.0)
    assert np.allclose(stop[TOPICS.arm_command].points[0].positions, [0.5, 0.1, 0.0])


def test_diagnostics_report_zero_reasons(pipeline: Pipeline):
    out = decode_outputs(pipeline.tick(T0))
    status = out[TOPICS.diagnostics].status[0]
    assert status.level == codec.DiagnosticLevel.WARN
    assert "zero command" in status.message
    values = {kv.key: kv.value for kv in status.values}
    assert values["zero_invalid_input"] == "1"


def test_unknown_target_class_is_refused(repo: Path):
    config = PipelineConfig.from_mapping({"policy": {"target_class": "sofa"}}, base_dir=repo)
    with pytest.raises(ConfigError, match="'sofa' is not one of the card's target_classes"):
        Pipeline.from_config(config)


@pytest.mark.parametrize(
    ("values", "detector_in_process", "expected"),
    [
        ({}, False, 0),  # segmentation masks: nothing else here, onnxruntime's default (0)
        ({"masks": {"source": "detector"}}, False, 1),  # no workers spinning beside its run
        ({"masks": {"source": "topics"}}, True, 1),  # stack_node: the detector in another node
        ({"masks": {"source": "detector"}, "policy": {"intra_op_threads": 0}}, False, 0),
        ({"policy": {"intra_op_threads": 2}}, True, 2),
    ],
)
def test_policy_session_threads_follow_where_the_detector_runs(
    repo: Path, values, detector_in_process, expected
):
    config = PipelineConfig.from_mapping(values, base_dir=repo)
    pipeline = Pipeline.from_config(config, detector_in_process=detector_in_process)
    options = pipeline.policy.runner.session.get_session_options()
    assert options.intra_op_num_threads == expected


def test_masks_from_a_perception_node_topic(repo: Path):
    config = PipelineConfig.from_mapping({"masks": {"source": "topics"}}, base_dir=repo)
    pipeline = Pipeline.from_config(config)
    assert "/rl_deploy/masks/cup" in pipeline.subscriptions
    assert TOPICS.segmentation not in pipeline.subscriptions
    feed_world(pipeline, T0, camera=False)
    depth_m, class_ids = _render(SPEC, Pose2D(1.0, 0.5, 0.0), np.random.default_rng(0))
    depth = codec.array_to_image(depth_m, "32FC1", T0, "cam")
    mask = codec.mask_to_image((class_ids == 1).astype(np.uint8) * 255, T0 + MS, "cam")
    pipeline.feed(TOPICS.depth, codec.encode(depth, msgtypes.IMAGE), T0)
    pipeline.feed("/rl_deploy/masks/cup", codec.encode(mask, msgtypes.IMAGE), T0)
    pipeline.tick(T0 + 10 * MS)
    assert pipeline.last_tick.zero_reason is None
    assert np.array_equal(pipeline.last_tick.mask_u8, (class_ids == 1).astype(np.uint8))
    # a mask that does not line up with depth is refused, and the robot stops
    small = codec.mask_to_image(np.zeros((10, 10), np.uint8), T0 + 50 * MS, "cam")
    depth = codec.array_to_image(depth_m, "32FC1", T0 + 50 * MS, "cam")
    pipeline.feed(TOPICS.depth, codec.encode(depth, msgtypes.IMAGE), T0 + 2 * MS)
    pipeline.feed("/rl_deploy/masks/cup", codec.encode(small, msgtypes.IMAGE), T0 + 2 * MS)
    pipeline.tick(T0 + 20 * MS)
    assert pipeline.last_tick.zero_reason == "invalid_input"
    assert "not aligned" in pipeline.last_tick.detail


def test_segmentation_table_must_cover_the_target(repo: Path):
    config = PipelineConfig.from_mapping(
        {"masks": {"class_names": ["bottle"], "class_ids": [2]}}, base_dir=repo
    )
    with pytest.raises(ConfigError, match=r"masks.class_names lacks \['cup'\]"):
        Pipeline.from_config(config)


def test_colour_label_map_needs_its_channel_named(repo: Path):
    """Gazebo's segmentation camera publishes rgb8 with the class id in a channel."""
    depth_m, class_ids = _render(SPEC, Pose2D(1.0, 0.5, 0.0), np.random.default_rng(0))
    label_map = np.zeros((*class_ids.shape, 3), np.uint8)
    label_map[:, :, 2] = class_ids
    depth = codec.encode(codec.array_to_image(depth_m, "32FC1", T0, "cam"), msgtypes.IMAGE)
    seg = codec.encode(codec.array_to_image(label_map, "rgb8", T0, "cam"), msgtypes.IMAGE)
    for channel, reason in ((-1, "no_frames"), (2, None)):
        config = PipelineConfig.from_mapping(
            {"masks": {"segmentation_channel": channel}}, base_dir=repo
        )
        pipeline = Pipeline.from_config(config)
        feed_world(pipeline, T0, camera=False)
        pipeline.feed(TOPICS.depth, depth, T0)
        pipeline.feed(TOPICS.segmentation, seg, T0)
        pipeline.tick(T0 + 10 * MS)
        assert pipeline.last_tick.zero_reason == reason
    assert np.array_equal(pipeline.last_tick.mask_u8, (class_ids == 1).astype(np.uint8))


@pytest.mark.parametrize("value", [math.nan, 0.0, math.inf])
def test_depth_without_valid_pixels_zeroes(pipeline: Pipeline, value: float):
    feed_world(pipeline, T0)
    pipeline.tick(T0 + 10 * MS)
    assert pipeline.last_tick.zero_reason is None
    blank = codec.array_to_image(np.full((120, 160), value, np.float32), "32FC1", T0 + 20 * MS, "c")
    pipeline.feed(TOPICS.depth, codec.encode(blank, msgtypes.IMAGE), T0 + 20 * MS)
    pipeline.tick(T0 + 30 * MS)
    assert pipeline.last_tick.zero_reason == "invalid_input"
    assert "0.0% valid pixels" in pipeline.last_tick.detail


def test_target_mask_is_left_out_while_nobody_listens(pipeline: Pipeline):
    pipeline.publish_target_mask = False  # what policy_node sets without a subscriber
    feed_world(pipeline, T0)
    out = decode_outputs(pipeline.tick(T0 + 10 * MS))
    assert TOPICS.mask_out not in out
    assert TOPICS.cmd_vel in out and TOPICS.arm_command in out
    assert pipeline.last_tick.zero_reason is None
    assert pipeline.last_tick.mask_u8 is not None  # still recorded for reports
    diagnostics = {kv.key: kv.value for kv in out[TOPICS.diagnostics].status[0].values}
    assert diagnostics["target_mask"] == "off: no listener"
    pipeline.publish_target_mask = True
    feed_world(pipeline, T0 + 100 * MS)
    assert TOPICS.mask_out in decode_outputs(pipeline.tick(T0 + 110 * MS))


def test_depth_is_kept_in_millimetres_and_read_in_metres(pipeline: Pipeline):
    feed_world(pipeline, T0)
    pipeline.tick(T0 + 10 * MS)
    record = pipeline.last_tick
    assert record.depth is not None and record.depth.raw.dtype == np.uint16
    assert record.depth_m.dtype == np.float32
    np.testing.assert_array_equal(record.depth_m, record.depth.raw / np.float32(1000))


def test_command_is_published_before_what_reports_on_the_step(pipeline: Pipeline):
    def frames_seen() -> int:
        return sum(len(w.frames) for w in pipeline.drift._windows.values())

    published: list[list[str]] = []
    drift_frames_when_published: list[int] = []

    def publish(outputs) -> None:
        published.append([o.topic for o in outputs])
        drift_frames_when_published.append(frames_seen())

    feed_world(pipeline, T0)
    rest = pipeline.tick(T0 + 10 * MS, publish)
    assert published == [[TOPICS.cmd_vel, TOPICS.arm_command]]
    assert {o.topic for o in rest} == {TOPICS.mask_out, TOPICS.diagnostics}
    # The drift statistics took this step in after the command was out.
    assert drift_frames_when_published == [0] and frames_seen() == len(pipeline.drift.inputs) > 0
    stages = pipeline.last_tick.stage_ms
    assert 0 < stages["to_command"] <= stages["total"]
    assert stages["after_command"] > 0
    # Without a publish, the same outputs come back, the command first.
    feed_world(pipeline, T0 + 100 * MS)
    topics = [o.topic for o in pipeline.tick(T0 + 110 * MS)]
    assert topics[:2] == [TOPICS.cmd_vel, TOPICS.arm_command]
    assert set(topics[2:]) <= {TOPICS.mask_out, TOPICS.diagnostics} and TOPICS.mask_out in topics


def test_clock_going_back_zeroes_and_held_inputs_never_return(pipeline: Pipeline):
    before_reset = T0 + 60_000 * MS
    feed_world(pipeline, before_reset)
    pipeline.tick(before_reset + 10 * MS)
    assert pipeline.last_tick.zero_reason is None
    # /clock restarts (sim reset, bag loop): what arrived "later" is not fresh ...
    pipeline.tick(T0 + 1000 * MS)
    assert pipeline.last_tick.zero_reason == "invalid_input"
    # ... and is gone for good: back at its arrival time it does not drive again.
    pipeline.tick(before_reset + 20 * MS)
    assert pipeline.last_tick.zero_reason == "invalid_input"
    feed_world(pipeline, before_reset + 30 * MS)
    pipeline.tick(before_reset + 40 * MS)
    assert pipeline.last_tick.zero_reason is None


def test_a_small_step_back_of_the_clock_is_noise(pipeline: Pipeline, caplog):
    # NTP stepping the host clock back a few ms is not a reset: no zero, the episode goes on.
    feed_world(pipeline, T0)
    pipeline.tick(T0 + 10 * MS)
    pipeline.tick(T0 - 20 * MS)
    assert pipeline.last_tick.zero_reason is None
    assert "time went back" not in caplog.text


@pytest.fixture
def tf_pipeline(repo: Path) -> Pipeline:
    values = {"cmd_vel_stamped": True, "pose_source": "tf", "topics": {"pose": "/tf"}}
    return Pipeline.from_config(PipelineConfig.from_mapping(values, base_dir=repo))


def feed_tf(pipeline: Pipeline, topic: str, links, stamp_ns: int, now_ns: int) -> None:
    """links: (parent, child, Pose2D) of one tf2_msgs/TFMessage stamped `stamp_ns`."""
    message = codec.encode(_tf(links, stamp_ns), msgtypes.TF_MESSAGE)
    pipeline.feed(topic, message, now_ns)


def test_tf_pose_goes_stale_when_only_other_links_move(tf_pipeline: Pipeline):
    feed_tf(tf_pipeline, "/tf_static", [("map", "odom", Pose2D(0.0, 0.0, 0.0))], T0, T0)
    for k in range(11):  # /tf_static never dates the pose: odometry keeps it fresh
        now = T0 + k * 100 * MS
        feed_world(tf_pipeline, now, pose=False)
        feed_tf(
            tf_pipeline, "/tf", [("odom", "base_link", Pose2D(1.0 + k / 100, 0.5, 0))], now, now
        )
    tf_pipeline.tick(T0 + 1010 * MS)
    assert tf_pipeline.last_tick.zero_reason is None
    assert tf_pipeline.last_tick.pose.x == pytest.approx(1.1)
    # odometry dies; robot_state_publisher keeps publishing the arm's links on /tf
    for k in range(11, 21):
        now = T0 + k * 100 * MS
        feed_world(tf_pipeline, now, pose=False)
        feed_tf(tf_pipeline, "/tf", [("base_link", "arm_link", Pose2D(0.1, 0.0, 0.0))], now, now)
    tf_pipeline.tick(T0 + 2010 * MS)
    assert tf_pipeline.last_tick.zero_reason == "stale"
    assert "/tf" in tf_pipeline.last_tick.detail


def test_tf_pose_follows_fast_odometry_under_a_slow_map_to_odom(tf_pipeline: Pipeline):
    # Localisation (map→odom) at 2 Hz, odometry (odom→base_link) at 10 Hz: the chain's stamp is
    # map→odom's, but the pose must be the newest odometry's, not the one of map→odom's update.
    for k in range(6):
        now = T0 + k * 100 * MS
        feed_world(tf_pipeline, now, pose=False)
        if k % 5 == 0:
            feed_tf(tf_pipeline, "/tf", [("map", "odom", Pose2D(0.0, 0.0, 0.0))], now, now)
        odometry = [("odom", "base_link", Pose2D(1.0 + k / 10, 0.5, 0))]
        feed_tf(tf_pipeline, "/tf", odometry, now, now)
        tf_pipeline.tick(now + 10 * MS)
        assert tf_pipeline.last_tick.zero_reason is None
        assert tf_pipeline.last_tick.pose.x == pytest.approx(1.0 + k / 10)


def drive_on_tf_at_x5(pipeline: Pipeline) -> int:
    """A minute in, the pose from tf at x = 5: the time of that step."""
    feed_tf(pipeline, "/tf_static", [("map", "odom", Pose2D(0.0, 0.0, 0.0))], T0, T0)
    now = T0 + 60_000 * MS
    feed_world(pipeline, now, pose=False)
    feed_tf(pipeline, "/tf", [("odom", "base_link", Pose2D(5.0, 0.0, 0.0))], now, now)
    pipeline.tick(now + 10 * MS)
    assert pipeline.last_tick.pose.x == pytest.approx(5.0)
    return now


def test_tf_pose_follows_stamps_that_go_back(tf_pipeline: Pipeline):
    now = drive_on_tf_at_x5(tf_pipeline)
    # the simulator resets: its stamps restart, this host's clock runs on
    now += 1000 * MS
    feed_world(tf_pipeline, now, pose=False)
    feed_tf(tf_pipeline, "/tf", [("odom", "base_link", Pose2D(0.0, 0.0, 0.0))], T0 + MS, now)
    tf_pipeline.tick(now + 10 * MS)
    assert tf_pipeline.last_tick.zero_reason is None
    assert tf_pipeline.last_tick.pose.x == pytest.approx(0.0)


def test_tf_static_transforms_are_held_as_static(tf_pipeline: Pipeline):
    static = [("map", "odom", Pose2D(0.0, 0.0, 0.0))]
    feed_tf(tf_pipeline, "/tf_static", static, T0 + 500 * MS, T0)
    # a restarted static publisher re-latches another map→odom with an older stamp: it holds
    feed_tf(tf_pipeline, "/tf_static", [("map", "odom", Pose2D(2.0, 0.0, 0.0))], T0, T0)
    feed_world(tf_pipeline, T0 + 100 * MS, pose=False)
    links = [("odom", "base_link", Pose2D(1.0, 0.5, 0.0))]
    feed_tf(tf_pipeline, "/tf", links, T0 + 100 * MS, T0 + 100 * MS)
    tf_pipeline.tick(T0 + 110 * MS)
    assert tf_pipeline.last_tick.zero_reason is None
    assert tf_pipeline.last_tick.pose.x == pytest.approx(3.0)
