"""sim_node: the MuJoCo simulator as a ROS 2 node, the stand-in for Gazebo where it cannot run.

Publishes the camera, joint states, odometry, tf, the SLAM-like pose and /clock (the stack runs
with use_sim_time), applies cmd_vel and arm commands, and runs seeded episodes paced on the wall
clock. With `result_path` set it writes the finished episodes there and exits.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

import rclpy
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile

from rl_deploy.errors import ConfigError, RlDeployError
from rl_deploy.io import Output
from rl_deploy.sim.closed_loop import EpisodeRecorder, save_results
from rl_deploy.sim.evaluate import MAX_TILT_DEG
from rl_deploy.sim.host import HostOptions, MujocoSimHost
from rl_deploy.sim.scene import load_scene
from rl_deploy.sim.session import SimSession
from rl_deploy_ros import host
from rl_deploy_ros.params import ParamSpec

SPECS = [
    ParamSpec("scene", "config/scenes/example_room.yaml", "string", "Scene YAML to simulate."),
    ParamSpec("seed", 0, "integer", "Seed of the first episode; the next ones count up."),
    ParamSpec("episodes", 1, "integer", "Episodes to run; 0: endlessly."),
    ParamSpec(
        "start_time_s",
        1.0,
        "double",
        "Sim clock at the start (s); keep it increasing "
        "across restarts so that use_sim_time nodes never see time jump back.",
    ),
    ParamSpec("realtime_factor", 1.0, "double", "Sim seconds per wall second (at most)."),
    ParamSpec("step_s", 0.02, "double", "Sim time advanced per wall-clock timer tick (s)."),
    ParamSpec("rgb", True, "bool", "Render and publish the colour image (the detector's input)."),
    ParamSpec("segmentation", True, "bool", "Publish the ground-truth class-id image."),
    ParamSpec("depth_noise_std_m", 0.0, "double", "Fault: Gaussian noise on depth (m)."),
    ParamSpec("camera_tilt_deg", 0.0, "double", "Fault: camera pitched further down (deg)."),
    ParamSpec(
        "mask_topic",
        "/rl_deploy/target_mask",
        "string",
        "The policy's target mask, kept for the image strip of the results; empty: none.",
    ),
    ParamSpec(
        "wait_for_publishers",
        [],
        "string[]",
        "Topics that must have a publisher before the first episode starts (the stack is up).",
    ),
    ParamSpec(
        "max_stack_lag_s",
        0.0,
        "double",
        "Hold the sim clock while the stack's newest target mask is from a camera frame older "
        "than this (s of sim time): results independent of how busy the machine is; 0: off.",
    ),
    ParamSpec("hold_timeout_s", 1.0, "double", "Longest hold (wall s) before the sim moves on."),
    ParamSpec("result_path", "", "string", "Write the episodes here (.npz) and exit when done."),
    ParamSpec("bag_dir", "", "string", "Record each episode as a .mcap here; empty: off."),
]


ENDLESS_EPISODES = 10**9  # episodes: 0


def check_values(values: dict[str, Any]) -> None:
    """ConfigError naming the first parameter a simulation cannot run with."""
    for name in ("seed", "episodes"):
        if values[name] < 0:
            raise ConfigError(f"{name} must be >= 0, got {values[name]}")
    for name in ("realtime_factor", "step_s", "hold_timeout_s"):
        if not (math.isfinite(values[name]) and values[name] > 0):
            raise ConfigError(f"{name} must be a finite number > 0, got {values[name]}")
    for name in ("start_time_s", "max_stack_lag_s", "depth_noise_std_m"):
        if not (math.isfinite(values[name]) and values[name] >= 0):
            raise ConfigError(f"{name} must be a finite number >= 0, got {values[name]}")
    if not abs(values["camera_tilt_deg"]) <= MAX_TILT_DEG:
        raise ConfigError(
            f"camera_tilt_deg must be within ±{MAX_TILT_DEG}, got {values['camera_tilt_deg']}"
        )


class SimNode(Node):
    def __init__(self) -> None:
        super().__init__("sim_node")
        host.declare(self, SPECS, check_values)  # type: ignore[arg-type]
        self.values = host.values(self, SPECS)  # type: ignore[arg-type]
        v = self.values
        check_values(v)
        options = HostOptions(
            rgb=v["rgb"],
            segmentation=v["segmentation"],
            start_time_ns=round(v["start_time_s"] * 1e9),
            depth_noise_std_m=v["depth_noise_std_m"],
            camera_pitch_offset_rad=math.radians(v["camera_tilt_deg"]),
        )
        scene = load_scene(host.resolve_path(v["scene"]))
        self.sim = MujocoSimHost(scene, options)
        count = v["episodes"] or ENDLESS_EPISODES
        recorder = EpisodeRecorder(Path(v["bag_dir"])) if v["bag_dir"] else None
        self.session = SimSession(
            self.sim,
            range(v["seed"], v["seed"] + count),
            mask_topic=v["mask_topic"],
            recorder=recorder,
        )
        reliable = host.qos_profile("reliable:10", "state")
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.publishers_: dict[str, Any] = {}
        for topic, msgtype in self.sim.output_topics().items():
            cls = host.message_class(msgtype)
            if cls is None:
                self.get_logger().warning(f"{msgtype} is not installed: {topic} is off")
                continue
            qos = latched if topic == scene.topics.tf_static else reliable
            self.publishers_[topic] = self.create_publisher(cls, topic, qos)
        for topic, msgtype in self.session.subscriptions().items():
            cls = host.message_class(msgtype)
            qos = host.qos_profile("reliable:10", topic)
            self.create_subscription(cls, topic, self._receiver(topic, msgtype), qos, raw=True)
        self.started = False
        self.done = False
        self._held_since: float | None = None
        self.create_timer(v["step_s"] / v["realtime_factor"], self._tick)

    def _receiver(self, topic: str, msgtype: str) -> Any:
        def on_message(data: bytes) -> None:
            if self.started:
                try:
                    self.session.handle(topic, data, msgtype)
                except RlDeployError as err:
                    self.get_logger().warning(f"dropped message on {topic}: {err}")

        return on_message

    def _publish(self, outputs: list[Output]) -> None:
        for output in outputs:
            publisher = self.publishers_.get(output.topic)
            if publisher is not None:
                publisher.publish(output.data)

    def _tick(self) -> None:
        if self.done:
            return
        if not self.started:
            waiting = [
                t for t in self.values["wait_for_publishers"] if not self.count_publishers(t)
            ]
            if waiting:
                return
            self.started = True
            self._publish(self.session.begin())
            self.get_logger().info("stack is up: episodes start")
        if self._hold():
            return
        self._publish(self.session.step(self.values["step_s"]))
        if self.session.finished:
            self.done = True
            if self.values["result_path"]:
                save_results(self.session.results, Path(self.values["result_path"]))
            raise SystemExit(0)

    def _hold(self) -> bool:
        """True while the sim should wait for the stack (see max_stack_lag_s)."""
        max_lag_s = self.values["max_stack_lag_s"]
        if max_lag_s <= 0 or self.session.stack_lag_s() <= max_lag_s:
            self._held_since = None
            return False
        now = time.monotonic()
        if self._held_since is None:
            self._held_since = now
        # After a timeout the sim runs on for as long again before it may hold once more.
        if now - self._held_since > self.values["hold_timeout_s"]:
            if now - self._held_since > 2 * self.values["hold_timeout_s"]:
                self._held_since = None
            return False
        return True


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=args if args is not None else sys.argv)
    node = None
    try:
        node = SimNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, SystemExit):
        pass
    except RlDeployError as err:
        print(f"sim_node: {err}", file=sys.stderr)
        return 1
    finally:
        if node is not None:
            node.sim.close()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0
