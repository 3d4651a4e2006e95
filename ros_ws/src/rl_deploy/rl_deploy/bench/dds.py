"""The DDS half of `bench e2e`: policy_node in its own process, fed and heard over Fast DDS.

This process plays the robot (camera, joint states, pose, on the same schedule as the
in-process run) and listens to the stamped command; rclpy is imported here only.
"""

from __future__ import annotations

import bisect
import importlib
import importlib.util
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rl_deploy import codec
from rl_deploy.bench.measure import summary
from rl_deploy.bench.schedule import period_jitter_ms, run_schedule, stream_rates_ns
from rl_deploy.bench.world import SyntheticWorld
from rl_deploy.codec.typestore import DIAGNOSTIC_ARRAY, TWIST_STAMPED
from rl_deploy.config import PipelineConfig
from rl_deploy.errors import ConfigError
from rl_deploy.replay.synthetic import SyntheticBagSpec

NODE_SOURCE = Path("ros_ws/src/rl_deploy_ros")  # used when rl_deploy_ros is not installed
START_TIMEOUT_S = 90.0  # model loading and discovery on a busy 2-core machine
_NODE_MAIN = "import sys; from rl_deploy_ros.policy_node import main; sys.exit(main())"


def unavailable() -> str | None:
    """Why the DDS run cannot happen here, or None."""
    if importlib.util.find_spec("rclpy") is None:
        return "rclpy is not installed (requirements/ros.txt)"
    if importlib.util.find_spec("rl_deploy_ros") is None and not NODE_SOURCE.is_dir():
        return f"rl_deploy_ros is neither installed nor at {NODE_SOURCE} (run from the repo root)"
    return None


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
    """Stamp → command over DDS, p50/p99, and the intervals between commands as heard."""
    problem = unavailable()
    if problem is not None:
        if required:
            raise ConfigError(f"bench e2e --dds on: {problem}")
        return {"skipped": problem}
    domain_id = random.Random(os.getpid()).randrange(201, 232)  # tests use 1..200
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id), ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    env.pop("ROS_LOCALHOST_ONLY", None)
    if importlib.util.find_spec("rl_deploy_ros") is None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(NODE_SOURCE), env.get("PYTHONPATH")]))
    overrides = {
        "cmd_vel_stamped": "true",
        "masks.source": config.masks.source,
        "diagnostics_period_s": str(config.diagnostics_period_s),
        "ros.qos.camera": camera_qos,
    }
    command = [sys.executable, "-c", _NODE_MAIN, "--ros-args"]
    if params_file is not None:
        command += ["--params-file", str(params_file)]
    for key, value in overrides.items():
        command += ["-p", f"{key}:={value}"]
    world = SyntheticWorld(spec, config.topics, rgb=config.masks.source == "detector")
    node = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    driver = _Driver(domain_id, config, world, reliable_camera=camera_qos != "sensor_data")
    try:
        driver.play_until(driver.heard_policy_command, START_TIMEOUT_S, node)
        measured_from_ns = time.time_ns()
        driver.play(seconds)
        commands = driver.policy_commands(measured_from_ns)
        heard_ns = driver.heard_ns(measured_from_ns)
    finally:
        driver.close()
        log = _stop(node)
    if not commands:
        raise ConfigError(f"policy_node gave no policy-driven command over DDS; its log:\n{log}")
    return {
        "domain_id": domain_id,
        "node": "policy_node (own process), masks " + config.masks.source,
        "camera_qos": camera_qos,
        "seconds": seconds,
        "policy_commands": len(commands),
        "total_ms": summary([(c.heard_ns - c.stamp_ns) / 1e6 for c in commands]),
        "frame_age_at_tick_ms": summary([(c.tick_ns - c.stamp_ns) / 1e6 for c in commands]),
        "tick_to_heard_ms": summary([(c.heard_ns - c.tick_ns) / 1e6 for c in commands]),
        "command_interval_jitter_ms": summary(period_jitter_ms(heard_ns, control_period_ns)),
    }


def _stop(node: subprocess.Popen[bytes]) -> str:
    if node.poll() is None:
        node.send_signal(signal.SIGINT)
        try:
            node.wait(timeout=10)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait(timeout=10)
    output = node.stdout.read() if node.stdout else b""
    return output.decode(errors="replace")[-4000:]


def message_class(msgtype: str) -> Any:
    """rclpy's class for a rosbags type name: sensor_msgs/msg/Image → sensor_msgs.msg.Image."""
    package, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


@dataclass(frozen=True)
class HeardCommand:
    stamp_ns: int  # camera frame it answers
    tick_ns: int  # the node's control tick that computed it
    heard_ns: int  # when it arrived here


class _Driver:
    """The robot side: publishes the world's streams as raw CDR and records stamped commands."""

    def __init__(
        self, domain_id: int, config: PipelineConfig, world: SyntheticWorld, reliable_camera: bool
    ) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import qos_profile_sensor_data

        from rl_deploy.pipeline import POSE_SOURCE_MSGTYPES

        self.world, self.config = world, config
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain_id)
        self.node = rclpy.create_node("rl_deploy_bench_robot", context=self.context)
        topics = config.topics
        camera = [topics.depth, topics.segmentation] + ([topics.rgb] if world.rgb else [])
        image = message_class("sensor_msgs/msg/Image")
        camera_qos = 10 if reliable_camera else qos_profile_sensor_data
        self._publishers = {
            topic: self.node.create_publisher(image, topic, camera_qos) for topic in camera
        }
        state = {
            topics.joint_states: "sensor_msgs/msg/JointState",
            topics.pose: POSE_SOURCE_MSGTYPES[config.pose_source],
        }
        for topic, msgtype in state.items():
            self._publishers[topic] = self.node.create_publisher(message_class(msgtype), topic, 10)
        self._lock = threading.Lock()
        self._heard: list[tuple[int, bytes]] = []
        self._camera_stamps: set[int] = set()
        self._ticks: list[tuple[int, bytes]] = []
        self.node.create_subscription(
            message_class(TWIST_STAMPED), topics.cmd_vel, self._on_command, 10, raw=True
        )
        # The node stamps its diagnostics with the tick's time: when each command was computed.
        self.node.create_subscription(
            message_class(DIAGNOSTIC_ARRAY), topics.diagnostics, self._on_diagnostics, 10, raw=True
        )
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spinner = threading.Thread(target=self._spin, daemon=True)
        self._spinner.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        try:
            self.executor.spin()
        except ExternalShutdownException:
            return

    def _on_command(self, data: bytes) -> None:
        heard_ns = time.time_ns()
        with self._lock:
            self._heard.append((heard_ns, data))

    def _on_diagnostics(self, data: bytes) -> None:
        heard_ns = time.time_ns()
        with self._lock:
            self._ticks.append((heard_ns, data))

    def _publish(self, kind: str, _deadline_ns: int, woke_ns: int) -> None:
        if kind == "camera":
            self._camera_stamps.add(woke_ns)
            messages = self.world.camera(woke_ns)
        elif kind == "joints":
            messages = [self.world.joints(woke_ns)]
        else:
            messages = self.world.pose(woke_ns)
        for topic, data in messages:
            self._publishers[topic].publish(data)

    def play(self, seconds: float) -> None:
        start_ns = time.time_ns()
        rates = stream_rates_ns(self.world.spec)
        run_schedule(
            rates, dict.fromkeys(rates, start_ns), start_ns + round(seconds * 1e9), self._publish
        )

    def play_until(
        self, ready: Callable[[], bool], timeout_s: float, node: subprocess.Popen[bytes]
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():
            if node.poll() is not None:
                raise ConfigError(f"policy_node exited with {node.returncode}: {_stop(node)}")
            if time.monotonic() > deadline:
                raise ConfigError(f"no policy command over DDS in {timeout_s} s: {_stop(node)}")
            self.play(0.5)

    def policy_commands(self, since_ns: int) -> list[HeardCommand]:
        """Commands that answer a camera frame (a zero command carries its tick time instead),
        each with the tick that computed it."""
        with self._lock:
            heard = [(t, data) for t, data in self._heard if t >= since_ns]
            ticks = sorted(
                codec.stamp_to_ns(codec.decode(data, DIAGNOSTIC_ARRAY).header.stamp)
                for _, data in self._ticks
            )
        found = []
        for heard_ns, data in heard:
            stamp_ns = codec.stamp_to_ns(codec.decode(data, TWIST_STAMPED).header.stamp)
            index = bisect.bisect_right(ticks, heard_ns) - 1
            if stamp_ns in self._camera_stamps and index >= 0:
                found.append(HeardCommand(stamp_ns, ticks[index], heard_ns))
        return found

    def heard_policy_command(self) -> bool:
        return bool(self.policy_commands(0))

    def heard_ns(self, since_ns: int) -> list[int]:
        """When each command was heard, policy-driven or zero."""
        with self._lock:
            return [t for t, _ in self._heard if t >= since_ns]

    def close(self) -> None:
        import rclpy

        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()  # type: ignore[no-untyped-call]
        rclpy.shutdown(context=self.context)
        self._spinner.join(timeout=5)
