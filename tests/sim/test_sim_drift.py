"""The drift monitor in closed loop over 20 s of short episodes (the monitor's window): a camera
mounted 10 degrees further down than in training is flagged on depth (WARN on /diagnostics),
the nominal camera is not."""

from __future__ import annotations

import math

from sim_helpers import ROOT, short_scene

from rl_deploy import codec
from rl_deploy.codec.typestore import DIAGNOSTIC_ARRAY
from rl_deploy.drift import DRIFT_STATUS_NAME, DriftMonitor
from rl_deploy.policy import Policy
from rl_deploy.safety import load_robot_limits
from rl_deploy.sim import SceneSpec
from rl_deploy.sim.closed_loop import ClosedLoop
from rl_deploy.sim.evaluate import DEFAULT_ROBOT, HELD_OUT_SEED, default_config, sim_config
from rl_deploy.sim.host import HostOptions, MujocoSimHost

TICKS = 200  # one full window of the monitor (its default)
EPISODE_S = 6.0  # several episodes fill it, as on a robot that keeps working


def drift_after(scene: SceneSpec, seed: int, tilt_deg: float) -> tuple[dict, int]:
    """Closed loop for TICKS steps over episodes from `seed` on (one monitor across them, as in
    a long-running policy node); the scores and the level of the last drift entry on
    /diagnostics."""
    config = sim_config(default_config(str(ROOT)), "gt")
    policy = Policy.load(config.resolve(config.policy.card), providers=["CPUExecutionProvider"])
    host = MujocoSimHost(
        short_scene(scene, EPISODE_S),
        HostOptions(rgb=False, camera_pitch_offset_rad=math.radians(tilt_deg)),
    )
    monitor = DriftMonitor(policy.card, config.drift)
    level = None
    try:
        loop = ClosedLoop(host, config, policy, load_robot_limits(ROOT / DEFAULT_ROBOT))
        for _ in range(TICKS):
            if host.layout is None or host.status().done:
                layout = host.reset(seed)
                seed += 1
                pipeline = loop.make_pipeline(layout.target_class)
                pipeline.drift = monitor  # the node keeps one monitor over its episodes
            for output in host.step(0.1):
                pipeline.feed(output.topic, output.data, host.now_ns)
            for output in pipeline.tick(host.now_ns):
                if output.topic in host.command_topics():
                    host.handle(output.topic, output.data, output.msgtype)
                elif output.topic == config.topics.diagnostics:
                    message = codec.decode(output.data, DIAGNOSTIC_ARRAY)
                    entries = {status.name: status for status in message.status}
                    level = entries[DRIFT_STATUS_NAME].level
    finally:
        host.close()
    return monitor.scores(), level


SEED = HELD_OUT_SEED + 60_000


def test_nominal_camera_is_not_flagged(scene: SceneSpec):
    scores, level = drift_after(scene, SEED, 0.0)
    assert scores["depth"].score < 1.0 and level == codec.DiagnosticLevel.OK, scores


def test_tilted_camera_is_flagged_on_depth(scene: SceneSpec):
    scores, level = drift_after(scene, SEED, 10.0)
    assert scores["depth"].score > 1.0 and level == codec.DiagnosticLevel.WARN, scores
    assert scores["depth"].std_ratio < 0.75  # more floor, less far wall: a narrower spread
