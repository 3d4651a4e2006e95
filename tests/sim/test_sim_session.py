"""The simulator's side of a closed loop over a transport: seeded episodes in order, commands in
as CDR, the stack's lag from its target masks, results out, and a recorded bag per episode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sim_helpers import short_scene

from rl_deploy import codec
from rl_deploy.codec.typestore import IMAGE, TWIST
from rl_deploy.command import BaseVelocity
from rl_deploy.replay import Bag
from rl_deploy.sim import SceneSpec
from rl_deploy.sim.closed_loop import EpisodeRecorder
from rl_deploy.sim.host import HostOptions, MujocoSimHost
from rl_deploy.sim.session import SimSession

MASK_TOPIC = "/rl_deploy/target_mask"


@pytest.fixture
def host(scene: SceneSpec):
    simulator = MujocoSimHost(short_scene(scene, 1.0), HostOptions(segmentation=False))
    yield simulator
    simulator.close()


def _mask_message(stamp_ns: int, shape: tuple[int, int]) -> bytes:
    mask = np.zeros(shape, np.uint8)
    mask[200:240, 300:340] = 255
    return codec.encode(codec.mask_to_image(mask, stamp_ns, "camera"), IMAGE)


def test_episodes_run_in_order_with_commands_and_masks(host: MujocoSimHost, tmp_path: Path):
    session = SimSession(
        host, [7, 8], mask_topic=MASK_TOPIC, recorder=EpisodeRecorder(tmp_path / "bags")
    )
    assert session.subscriptions() == {**host.command_topics(), MASK_TOPIC: IMAGE}
    static = session.begin()
    assert [output.topic for output in static] == [host.scene.topics.tf_static]
    forward = codec.encode(codec.twist(BaseVelocity(linear_x=0.3)), TWIST)
    steps = 0
    while not session.finished:
        session.handle(host.scene.topics.cmd_vel, forward, TWIST)
        outputs = session.step(0.1)
        assert outputs  # the host keeps publishing
        camera = host.scene.robot.camera
        session.handle(MASK_TOPIC, _mask_message(host.now_ns, (camera.height, camera.width)))
        steps += 1
        if not session.finished:
            assert session.stack_lag_s() == pytest.approx(0.0)
    assert steps == 20  # two episodes of 1 s at 0.1 s per step
    assert [r.seed for r in session.results] == [7, 8]
    for result in session.results:
        assert result.path_length_m > 0.1  # driven by the commands it was handed
        assert result.ticks == 10
        assert result.snapshots and result.snapshots[0].mask_u8.max() == 1
    assert session.step(0.1) == []  # finished: nothing more
    bags = session.bag_paths()
    assert [path.name for path in bags] == ["episode_7.mcap", "episode_8.mcap"]
    topics = {message.topic for message in Bag(bags[0]).messages()}
    assert {host.scene.topics.cmd_vel, MASK_TOPIC, host.scene.topics.depth} <= topics


def test_lag_grows_while_the_stack_sends_no_masks(host: MujocoSimHost):
    session = SimSession(host, [3], mask_topic=MASK_TOPIC)
    session.begin()
    for _ in range(4):
        session.step(0.05)
    assert session.stack_lag_s() == pytest.approx(0.2)
    camera = host.scene.robot.camera
    stale_stamp = host.now_ns - 50_000_000
    session.handle(MASK_TOPIC, _mask_message(stale_stamp, (camera.height, camera.width)))
    assert session.stack_lag_s() == pytest.approx(0.05)
