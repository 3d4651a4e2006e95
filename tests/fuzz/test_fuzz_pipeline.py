"""Property tests of the pipeline's feed/tick: bursts of valid, corrupted and misrouted
messages never raise, and every command that leaves is finite and within the robot's limits."""

from __future__ import annotations

import dataclasses
from functools import cache

import numpy as np
import pytest
from fuzz_helpers import FUZZ_SLOW, REPO, corrupted, world
from hypothesis import given
from hypothesis import strategies as st

from rl_deploy import codec
from rl_deploy.bench.e2e import bench_config
from rl_deploy.codec import typestore as msgtypes
from rl_deploy.pipeline import Pipeline

MASK_SOURCES = ("segmentation", "topics", "detector")
MS = 1_000_000
EMPTY_RGB = codec.encode(
    codec.message_class(msgtypes.IMAGE)(
        header=codec.make_header(0, "cam"),
        height=0,
        width=0,
        encoding="bgr8",
        is_bigendian=0,
        step=0,
        data=np.zeros(0, np.uint8),
    ),
    msgtypes.IMAGE,
)


@cache
def pipeline(source: str) -> Pipeline:
    config = bench_config(REPO / "config" / "policy_node.yaml", source)
    return Pipeline.from_config(dataclasses.replace(config, base_dir=str(REPO)))


@pytest.mark.parametrize("source", MASK_SOURCES)
def test_feed_and_tick_never_raise_and_commands_stay_safe(source: str):
    under_test = pipeline(source)
    topics = [t for t in under_test.subscriptions if t != under_test.config.topics.estop]
    clock = {"now_ns": world().spec.start_ns}
    actions = st.sampled_from(["valid", "valid", "corrupt", "misroute", "drop"])

    @FUZZ_SLOW
    @given(st.data())
    def check(data: st.DataObject) -> None:
        limits = under_test.safety.limits
        for _ in range(data.draw(st.integers(1, 6), label="bursts")):
            clock["now_ns"] += data.draw(st.integers(1, 700), label="ms until the next") * MS
            now = clock["now_ns"]
            # the world's messages of this instant, some corrupted, misrouted or lost
            for topic, payload in [*world().camera(now), world().joints(now), *world().pose(now)]:
                action = data.draw(actions)
                if action == "drop":
                    continue
                sent = data.draw(corrupted(payload)) if action == "corrupt" else payload
                to = data.draw(st.sampled_from(topics)) if action == "misroute" else topic
                under_test.feed(to, sent, now)
            if data.draw(st.booleans(), label="an empty colour frame"):
                under_test.feed(under_test.config.topics.rgb, EMPTY_RGB, now)
            outputs = under_test.tick(now)
            command = under_test.last_tick.command
            assert command.is_finite()
            assert abs(command.base.linear_x) <= limits.max_linear_mps
            assert abs(command.base.angular_z) <= limits.max_angular_rps
            for output in outputs:  # what is published decodes and is finite too
                message = codec.decode(output.data, output.msgtype)
                if output.msgtype in (msgtypes.TWIST, msgtypes.TWIST_STAMPED):
                    twist = getattr(message, "twist", message)
                    assert np.isfinite([twist.linear.x, twist.angular.z]).all()

    check()
    stats = under_test.stats
    assert stats.commands_out > 0 and sum(stats.messages_in.values()) > 0
