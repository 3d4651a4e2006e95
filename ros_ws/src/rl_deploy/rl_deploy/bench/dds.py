"""Real processes on real DDS for the benchmarks: nodes started as `ros2 run` would, and this
process playing the robot (camera, joint states, pose) and listening to what the nodes publish.

rclpy is imported here only, inside functions: the runtime never imports it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rl_deploy.bench.schedule import run_schedule, stream_rates_ns
from rl_deploy.bench.world import SyntheticWorld
from rl_deploy.config import PipelineConfig
from rl_deploy.errors import ConfigError

NODE_SOURCE = Path("ros_ws/src/rl_deploy_ros")  # used when rl_deploy_ros is not installed
START_TIMEOUT_S = 90.0  # model loading and discovery on a busy 2-core machine
TRANSPORTS = "FASTDDS_BUILTIN_TRANSPORTS"
PROFILE = "FASTRTPS_DEFAULT_PROFILES_FILE"
# The shipped Fast DDS profile for camera-sized messages (config/dds/, from the repo root).
LARGE_FRAMES_PROFILE = Path("config/dds/fastdds_large_frames.xml")
_MAIN = "import sys; from rl_deploy_ros.{node} import main; sys.exit(main())"


def unavailable() -> str | None:
    """Why nodes cannot be run here, or None."""
    if importlib.util.find_spec("rclpy") is None:
        return "rclpy is not installed (requirements/ros.txt)"
    if importlib.util.find_spec("rl_deploy_ros") is None and not NODE_SOURCE.is_dir():
        return f"rl_deploy_ros is neither installed nor at {NODE_SOURCE} (run from the repo root)"
    return None


def new_domain_id() -> int:
    return random.Random(os.getpid() ^ time.time_ns()).randrange(201, 232)  # tests: 1..200


def dds_profile() -> Path | None:
    """The Fast DDS profile of the runs' participants: $FASTRTPS_DEFAULT_PROFILES_FILE when set
    (set empty: Fast DDS's defaults), else the shipped large-frames profile when found."""
    chosen = os.environ.get(PROFILE)
    if chosen is not None:
        return Path(chosen).resolve() if chosen else None
    return LARGE_FRAMES_PROFILE.resolve() if LARGE_FRAMES_PROFILE.is_file() else None


def dds_variables(domain_id: int, *, udp_only: bool = False) -> dict[str, str | None]:
    """DDS settings of the nodes of one run (None: unset).

    udp_only: loopback UDP instead of Fast DDS's shared memory, for runs that SIGKILL nodes (a
    killed reader's shared-memory port slows its writers until its lease runs out).
    """
    profile = None if udp_only else dds_profile()
    return {
        "ROS_DOMAIN_ID": str(domain_id),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        "ROS_LOCALHOST_ONLY": None,  # deprecated in Jazzy; the range above replaces it
        TRANSPORTS: "UDPv4" if udp_only else os.environ.get(TRANSPORTS),
        PROFILE: str(profile) if profile else None,
    }


def ros_env(domain_id: int, *, udp_only: bool = False) -> dict[str, str]:
    """The environment of a node process, isolated on one DDS domain of this machine."""
    env = dict(os.environ)
    _update(env, dds_variables(domain_id, udp_only=udp_only))
    # The child must import the same rl_deploy_ros this process would: an installed one, or
    # the source tree (absolute, and even when only this process's sys.path knows it).
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_node_root()), env.get("PYTHONPATH")]))
    return env


def _update(env: MutableMapping[str, str], variables: Mapping[str, str | None]) -> None:
    for key, value in variables.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value


@contextmanager
def _process_environment(variables: Mapping[str, str | None]) -> Iterator[None]:
    """`variables` in os.environ for the block (rcl and Fast DDS read them at init)."""
    saved = {key: os.environ.get(key) for key in variables}
    _update(os.environ, variables)
    try:
        yield
    finally:
        _update(os.environ, saved)


def _node_root() -> Path:
    """The directory that holds the rl_deploy_ros package to run."""
    spec = importlib.util.find_spec("rl_deploy_ros")
    if spec is not None and spec.origin is not None:
        return Path(spec.origin).resolve().parent.parent
    return NODE_SOURCE.resolve()


@dataclass
class NodeProcess:
    """One node in its own process; its output goes to a log file (a full pipe would block it)."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> int:
        """SIGKILL; returns the wall clock (time.time_ns) read just before it was sent.

        os.kill straight after the reading: Popen.send_signal first polls the process, more
        steps in which this process could be paused while the victim runs on.
        """
        killed_ns = time.time_ns()
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        return killed_ns

    def stop(self) -> str:
        """SIGINT, then SIGKILL if it hangs; the tail of its log."""
        if self.alive():
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.log_path.read_text(errors="replace")[-4000:]


def launch(node: str, ros_args: Sequence[str], env: dict[str, str], log_dir: Path) -> NodeProcess:
    """rl_deploy_ros.<node>.main with `--ros-args ROS_ARGS`, from the working directory."""
    log_path = log_dir / f"{node}-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", _MAIN.format(node=node), "--ros-args", *ros_args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return NodeProcess(node, process, log_path)


def parameters(values: dict[str, str]) -> list[str]:
    return [item for key, value in values.items() for item in ("-p", f"{key}:={value}")]


def message_class(msgtype: str) -> Any:
    """rclpy's class for a rosbags type name: sensor_msgs/msg/Image → sensor_msgs.msg.Image."""
    package, _, name = msgtype.split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


BEST_EFFORT_DEPTH = 100  # samples: over a second of the guard's 50 Hz output


@dataclass(frozen=True)
class _Heard:
    heard_ns: int  # this process's wall clock when its callback ran
    sent_ns: int  # the writer's wall clock when it sent the message (DDS source timestamp)
    data: bytes


class RobotSide:
    """Publishes the world's streams as raw CDR and records what arrives on listened topics."""

    def __init__(
        self,
        domain_id: int,
        config: PipelineConfig,
        world: SyntheticWorld,
        *,
        reliable_camera: bool = False,
        udp_only: bool = False,
    ) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import qos_profile_sensor_data

        from rl_deploy.pipeline import POSE_SOURCE_MSGTYPES

        self.world = world
        self.context = Context()
        # The nodes' transports (read when the participant is created, below). The discovery
        # range stays this process's: with LOCALHOST here too, a perception_node restarted after
        # a SIGKILL was at times not matched again for over a minute (bench faults).
        variables = dds_variables(domain_id, udp_only=udp_only)
        with _process_environment({key: variables[key] for key in (TRANSPORTS, PROFILE)}):
            rclpy.init(context=self.context, domain_id=domain_id)
            self.node = rclpy.create_node("rl_deploy_bench_robot", context=self.context)
        topics = config.topics
        image = message_class("sensor_msgs/msg/Image")
        camera_qos = 10 if reliable_camera else qos_profile_sensor_data
        self._publishers = {
            topic: self.node.create_publisher(image, topic, camera_qos)
            for topic, _ in world.camera(world.spec.start_ns)
        }
        state = {
            topics.joint_states: "sensor_msgs/msg/JointState",
            topics.pose: POSE_SOURCE_MSGTYPES[config.pose_source],
        }
        for topic, msgtype in state.items():
            self._publishers[topic] = self.node.create_publisher(message_class(msgtype), topic, 10)
        self._lock = threading.Lock()
        self._heard: dict[str, list[_Heard]] = {}
        self.camera_stamps: set[int] = set()
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spinner = threading.Thread(target=self._spin, daemon=True)
        self._spinner.start()
        self._player: threading.Thread | None = None
        self._playing = threading.Event()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        try:
            self.executor.spin()
        except ExternalShutdownException:
            return

    def listen(self, topic: str, msgtype: str, *, best_effort: bool = False) -> None:
        """Record every message on `topic` with the time it was heard and the time it was sent.

        best_effort: for timing a stream that repeats itself (the guard's 50 Hz output): a
        reliable reader would hold later samples back until a lost one is repaired. Its queue
        is deep, so that no sample is overwritten while this process is busy elsewhere.
        """
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        self._heard.setdefault(topic, [])

        def on_message(data: bytes, info: Mapping[str, int]) -> None:
            heard = _Heard(time.time_ns(), info["source_timestamp"], data)
            with self._lock:
                self._heard[topic].append(heard)

        qos: QoSProfile | int = 10
        if best_effort:
            qos = QoSProfile(  # type: ignore[no-untyped-call]
                depth=BEST_EFFORT_DEPTH, reliability=ReliabilityPolicy.BEST_EFFORT
            )
        # rclpy hands a two-parameter callback the message info too; its annotation has one.
        callback: Any = on_message
        self.node.create_subscription(message_class(msgtype), topic, callback, qos, raw=True)

    def heard(self, topic: str, since_ns: int = 0) -> list[tuple[int, bytes]]:
        """(heard_ns, data) of the messages heard at or after `since_ns` (time.time_ns)."""
        with self._lock:
            return [(m.heard_ns, m.data) for m in self._heard[topic] if m.heard_ns >= since_ns]

    def sent(self, topic: str, since_ns: int = 0) -> list[tuple[int, bytes]]:
        """(sent_ns, data) of the messages their writer sent at or after `since_ns`: the time
        a node acted, which no pause of this process (its player thread, a collection of its
        heap) can move."""
        with self._lock:
            return [(m.sent_ns, m.data) for m in self._heard[topic] if m.sent_ns >= since_ns]

    def _publish(self, kind: str, _deadline_ns: int, woke_ns: int) -> None:
        if kind == "camera":
            self.camera_stamps.add(woke_ns)
            messages = self.world.camera(woke_ns)
        elif kind == "joints":
            messages = [self.world.joints(woke_ns)]
        else:
            messages = self.world.pose(woke_ns)
        for topic, data in messages:
            self._publishers[topic].publish(data)

    def play(self, seconds: float) -> None:
        """Publish every stream at its rate for `seconds` (stamps = publication time)."""
        start_ns = time.time_ns()
        rates = stream_rates_ns(self.world.spec)
        end_ns = start_ns + round(seconds * 1e9)
        run_schedule(rates, dict.fromkeys(rates, start_ns), end_ns, self._publish)

    def play_until(
        self, ready: Callable[[], bool], nodes: Sequence[NodeProcess], what: str
    ) -> None:
        """Play until `ready()`; ConfigError with the logs if a node dies or time runs out."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready():
            dead = [node for node in nodes if not node.alive()]
            if dead or time.monotonic() > deadline:
                logs = "\n".join(f"--- {n.name}:\n{n.stop()}" for n in nodes)
                cause = f"{dead[0].name} exited" if dead else f"{START_TIMEOUT_S} s passed"
                raise ConfigError(f"waiting for {what}: {cause}\n{logs}")
            self.play(0.25)

    def start_playing(self) -> None:
        """Play in a background thread until stop_playing()."""
        self._playing.set()

        def loop() -> None:
            while self._playing.is_set():
                self.play(0.25)

        self._player = threading.Thread(target=loop, daemon=True)
        self._player.start()

    def stop_playing(self) -> None:
        self._playing.clear()
        if self._player is not None:
            self._player.join(timeout=5)
            self._player = None

    def close(self) -> None:
        import rclpy

        self.stop_playing()
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()  # type: ignore[no-untyped-call]
        rclpy.shutdown(context=self.context)
        self._spinner.join(timeout=5)
