"""The DDS half of `bench e2e`: policy_node in its own process, on the in-process schedule.

Commands are stamped with the camera frame they answer; the node's diagnostics, published
every tick, carry the tick's time, which splits the latency into frame age and the rest.
"""

from __future__ import annotations

import bisect
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rl_deploy import codec
from rl_deploy.bench.dds import (
    RobotSide,
    dds_profile,
    launch,
    new_domain_id,
    parameters,
    ros_env,
    unavailable,
)
from rl_deploy.bench.measure import summary
from rl_deploy.bench.schedule import period_jitter_ms
from rl_deploy.bench.world import SyntheticWorld
from rl_deploy.codec.typestore import DIAGNOSTIC_ARRAY, TWIST_STAMPED
from rl_deploy.config import PipelineConfig
from rl_deploy.errors import ConfigError
from rl_deploy.replay.synthetic import SyntheticBagSpec


@dataclass(frozen=True)
class HeardCommand:
    stamp_ns: int  # camera frame it answers
    tick_ns: int  # the node's control tick that computed it
    heard_ns: int  # when it arrived here


def measure_dds(
    config: PipelineConfig,
    params_file: Path | None,
    control_period_ns: int,
    seconds: float,
    spec: SyntheticBagSpec,
    *,
    required: bool,
    camera_qos: str = "sensor_data",
) -> dict[str, Any]:
    """Stamp → command heard over DDS, p50/p99, split at the node's tick."""
    problem = unavailable()
    if problem is not None:
        if required:
            raise ConfigError(f"bench e2e --dds on: {problem}")
        return {"skipped": problem}
    domain_id = new_domain_id()
    ros_args = ["--params-file", str(params_file)] if params_file else []
    ros_args += parameters(
        {
            "cmd_vel_stamped": "true",
            "masks.source": config.masks.source,
            "diagnostics_period_s": str(config.diagnostics_period_s),
            "detector.intra_op_threads": str(config.detector.intra_op_threads),
            "ros.qos.camera": camera_qos,
        }
    )
    on_rgb = config.masks.source == "detector"
    world = SyntheticWorld(spec, config.topics, rgb=on_rgb, detector_scenes=on_rgb)
    with tempfile.TemporaryDirectory(prefix="rl_deploy_bench_dds_") as logs:
        node = launch("policy_node", ros_args, ros_env(domain_id), Path(logs))
        robot = RobotSide(
            domain_id, config, world, reliable_camera=camera_qos.startswith("reliable")
        )
        try:
            robot.listen(config.topics.cmd_vel, TWIST_STAMPED)
            robot.listen(config.topics.diagnostics, DIAGNOSTIC_ARRAY)
            robot.play_until(lambda: bool(_commands(robot, config, 0)), [node], "a command")
            measured_from_ns = time.time_ns()
            robot.play(seconds)
            commands = _commands(robot, config, measured_from_ns)
            heard_ns = [t for t, _ in robot.heard(config.topics.cmd_vel, measured_from_ns)]
        finally:
            robot.close()
            node.stop()
    return {
        "domain_id": domain_id,
        "node": f"policy_node (own process), masks {config.masks.source}",
        "camera_qos": camera_qos,
        "dds_profile": str(profile) if (profile := dds_profile()) else "Fast DDS defaults",
        "seconds": seconds,
        "policy_commands": len(commands),
        "total_ms": summary([(c.heard_ns - c.stamp_ns) / 1e6 for c in commands]),
        "frame_age_at_tick_ms": summary([(c.tick_ns - c.stamp_ns) / 1e6 for c in commands]),
        "tick_to_heard_ms": summary([(c.heard_ns - c.tick_ns) / 1e6 for c in commands]),
        "command_interval_jitter_ms": summary(period_jitter_ms(heard_ns, control_period_ns)),
    }


def _commands(robot: RobotSide, config: PipelineConfig, since_ns: int) -> list[HeardCommand]:
    """Commands that answer a camera frame (a zero command carries its tick time instead),
    each with the tick that computed it."""
    ticks = sorted(
        codec.stamp_to_ns(codec.decode(data, DIAGNOSTIC_ARRAY).header.stamp)
        for _, data in robot.heard(config.topics.diagnostics)
    )
    found = []
    for heard_ns, data in robot.heard(config.topics.cmd_vel, since_ns):
        stamp_ns = codec.stamp_to_ns(codec.decode(data, TWIST_STAMPED).header.stamp)
        index = bisect.bisect_right(ticks, heard_ns) - 1
        if stamp_ns in robot.camera_stamps and index >= 0:
            found.append(HeardCommand(stamp_ns, ticks[index], heard_ns))
    return found
