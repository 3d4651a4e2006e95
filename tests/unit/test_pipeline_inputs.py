"""The pipeline when its inputs mislead: readings re-sent under their old stamps, a clock that
steps back under a tf tree, a blind depth camera, and what the arm is sent then."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from test_pipeline import (
    MS,
    SPEC,
    T0,
    TOPICS,
    card_with_model,
    constant,
    decode_outputs,
    drive_on_tf_at_x5,
    feed_tf,
    feed_world,
    pipeline_on,
)

from rl_deploy import codec
from rl_deploy.codec import typestore as msgtypes
from rl_deploy.config import PipelineConfig
from rl_deploy.geometry import Pose2D
from rl_deploy.pipeline import Pipeline
from rl_deploy.replay.synthetic import _joint_state, _pose_messages


@pytest.fixture
def pipeline(repo: Path) -> Pipeline:
    return Pipeline.from_config(
        PipelineConfig.from_mapping({"cmd_vel_stamped": True}, base_dir=repo)
    )


@pytest.fixture
def tf_pipeline(repo: Path) -> Pipeline:
    values = {"cmd_vel_stamped": True, "pose_source": "tf", "topics": {"pose": "/tf"}}
    return Pipeline.from_config(PipelineConfig.from_mapping(values, base_dir=repo))


def test_arm_trajectories_start_on_receipt_and_last_a_control_period(pipeline: Pipeline) -> None:
    """Stamped with the camera frame, a trajectory would start in the past: the controller
    would run the step allowed per period in what is left of it after the frame's latency."""
    feed_world(pipeline, T0 - 80 * MS)
    out = decode_outputs(pipeline.tick(T0))
    arm = out[TOPICS.arm_command]
    assert codec.stamp_to_ns(arm.header.stamp) == codec.TRAJECTORY_STARTS_ON_RECEIPT == 0
    assert codec.duration_to_ns(arm.points[0].time_from_start) == pipeline.control_period_ns
    assert codec.stamp_to_ns(out[TOPICS.cmd_vel].header.stamp) == T0 - 80 * MS


def resend(pipeline: Pipeline, messages: list[tuple[str, str, object]], now_ns: int) -> None:
    for topic, msgtype, message in messages:
        pipeline.feed(topic, codec.encode(message, msgtype), now_ns)


@pytest.mark.parametrize("frozen", ["pose", "joints", "camera"])
def test_a_reading_re_sent_under_its_old_stamp_goes_stale(pipeline: Pipeline, frozen: str) -> None:
    """A driver or relay stuck re-sending its last message: new arrivals, the same stamp and
    value. They must not keep the robot moving on that reading."""
    feed_world(pipeline, T0)
    pipeline.tick(T0 + 10 * MS)
    assert pipeline.last_tick.zero_reason is None
    if frozen == "pose":
        last = [
            (t, m, msg) for _, t, m, msg in _pose_messages(SPEC, TOPICS, Pose2D(1.0, 0.5, 0.0), T0)
        ]
    elif frozen == "joints":
        last = [(TOPICS.joint_states, msgtypes.JOINT_STATE, _joint_state(SPEC, T0))]
    else:  # depth and segmentation, as a stuck camera driver re-sends them
        depth = codec.array_to_image(np.full((120, 160), 1500, np.uint16), "16UC1", T0, "cam")
        segmentation = codec.array_to_image(np.zeros((120, 160), np.uint8), "mono8", T0, "cam")
        last = [
            (TOPICS.depth, msgtypes.IMAGE, depth),
            (TOPICS.segmentation, msgtypes.IMAGE, segmentation),
        ]
        resend(pipeline, last, T0)  # the frame that will be re-sent, once as news
    for k in range(1, 11):
        now = T0 + k * 100 * MS
        feed_world(pipeline, now, **{frozen: False})
        resend(pipeline, last, now)
    pipeline.tick(T0 + 1010 * MS)
    assert pipeline.last_tick.zero_reason == "stale", pipeline.last_tick.detail


def test_a_new_value_under_the_same_stamp_is_news(pipeline: Pipeline) -> None:
    feed_world(pipeline, T0)
    moved = Pose2D(1.5, 0.5, 0.0)
    for _, topic, msgtype, msg in _pose_messages(SPEC, TOPICS, moved, T0):
        pipeline.feed(topic, codec.encode(msg, msgtype), T0 + 5 * MS)
    pipeline.tick(T0 + 10 * MS)
    assert pipeline.last_tick.pose == moved


def test_a_clock_step_back_forgets_the_tf_tree_too(tf_pipeline: Pipeline) -> None:
    """Half a second back (a simulator reset) is a reset for the inputs; the tree's links from
    before it would otherwise rebuild the old pose and make it the new episode's start."""
    back = drive_on_tf_at_x5(tf_pipeline) - 500 * MS
    tf_pipeline.tick(back)
    assert tf_pipeline.last_tick.zero_reason is not None
    feed_world(tf_pipeline, back + 10 * MS, pose=False)
    restart = [("odom", "base_link", Pose2D(1.0, 0.5, 0.0))]
    feed_tf(tf_pipeline, "/tf", restart, back + 10 * MS, back + 10 * MS)
    tf_pipeline.tick(back + 20 * MS)
    assert tf_pipeline.last_tick.zero_reason is None, tf_pipeline.last_tick.detail
    assert tf_pipeline.last_tick.pose == Pose2D(1.0, 0.5, 0.0)


def test_a_stop_on_stale_joints_sends_the_arm_nothing(pipeline: Pipeline) -> None:
    """Held at a measurement half a second old, the arm would be sent back to where it was."""
    feed_world(pipeline, T0)
    assert TOPICS.arm_command in decode_outputs(pipeline.tick(T0 + 10 * MS))
    feed_world(pipeline, T0 + 600 * MS, joints=False)
    out = decode_outputs(pipeline.tick(T0 + 650 * MS))
    assert pipeline.last_tick.zero_reason == "stale"
    assert TOPICS.arm_command not in out
    assert TOPICS.arm_command not in decode_outputs(pipeline.zero_outputs(T0 + 660 * MS))


def test_depth_of_the_cards_no_reading_value_is_not_valid(repo: Path, tmp_path: Path) -> None:
    """A card that says 65535 mm is no reading (a blind or saturated sensor) gets zero on a
    frame of nothing else, rather than a policy step on an all-filled image."""
    path = card_with_model(repo, tmp_path, "steady", [constant("action", [1, 5], [0.1] * 5)])
    card = yaml.safe_load(path.read_text())
    card["inputs"][0]["depth"]["invalid_values"] = [0.0, 65.535]
    path.write_text(yaml.safe_dump(card))
    pipeline = pipeline_on(repo, path)
    feed_world(pipeline, T0)
    pipeline.tick(T0 + 10 * MS)
    assert pipeline.last_tick.zero_reason is None
    blind = codec.array_to_image(np.full((120, 160), 65535, np.uint16), "16UC1", T0 + 20 * MS, "c")
    pipeline.feed(TOPICS.depth, codec.encode(blind, msgtypes.IMAGE), T0 + 20 * MS)
    pipeline.tick(T0 + 30 * MS)
    assert pipeline.last_tick.zero_reason == "invalid_input"
    assert (
        "0.0% valid pixels" in pipeline.last_tick.detail and "65.535" in pipeline.last_tick.detail
    )


def test_a_localisation_pose_in_another_frame_is_refused(pipeline: Pipeline) -> None:
    """amcl's pose in odom (a second publisher, a misconfigured frame) would move the origin
    the episode's relative pose is measured from."""
    feed_world(pipeline, T0)
    pipeline.tick(T0 + 10 * MS)
    assert pipeline.last_tick.zero_reason is None
    feed_world(pipeline, T0 + 100 * MS, pose=False)
    for _, topic, msgtype, msg in _pose_messages(
        SPEC, TOPICS, Pose2D(3.0, 0.5, 0.0), T0 + 100 * MS
    ):
        msg.header = codec.make_header(T0 + 100 * MS, "odom")
        pipeline.feed(topic, codec.encode(msg, msgtype), T0 + 100 * MS)
    pipeline.tick(T0 + 110 * MS)
    assert pipeline.last_tick.zero_reason == "invalid_input"
    assert pipeline.stats.decode_errors[TOPICS.pose] == 1
