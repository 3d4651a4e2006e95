"""Real ROS 2 for the integration tests: a colcon-built workspace, nodes started the way
`ros2 run` starts them, and an in-test rclpy probe that publishes, listens and calls services."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "rl_deploy_ros"


# Loopback UDP rather than Fast DDS's shared memory: the tests SIGKILL nodes, and a killed
# reader's shared-memory port keeps slowing its writers down until its lease runs out (20 s).
DDS_TRANSPORT = {"FASTDDS_BUILTIN_TRANSPORTS": "UDPv4"}


def colcon_build(out: Path) -> Path:
    """`colcon build` of ros_ws into `out`; returns the install prefix."""
    colcon = Path(sys.executable).with_name("colcon")
    command = [
        str(colcon),
        "--log-base",
        str(out / "log"),
        "build",
        "--base-paths",
        str(ROOT / "ros_ws" / "src"),
        "--build-base",
        str(out / "build"),
        "--install-base",
        str(out / "install"),
    ]
    result = subprocess.run(command, cwd=out, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"colcon build failed:\n{result.stdout}\n{result.stderr}")
    return out / "install"


def workspace_env(install: Path, domain_id: int) -> dict[str, str]:
    """What sourcing install/setup.sh gives, plus DDS isolation for one test."""
    packages = sorted(p for p in install.iterdir() if (p / "share").is_dir())
    site = f"lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"
    env = dict(os.environ)
    env["AMENT_PREFIX_PATH"] = os.pathsep.join(str(p) for p in packages)
    env["PYTHONPATH"] = os.pathsep.join(str(p / site) for p in packages)
    env["ROS_DOMAIN_ID"] = str(domain_id)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["RCUTILS_LOGGING_BUFFERED_STREAM"] = "0"
    env.update(DDS_TRANSPORT)
    env.pop("ROS_LOCALHOST_ONLY", None)  # deprecated in Jazzy; the range above replaces it
    return env


def executable(env: dict[str, str], package: str, name: str) -> Path:
    """`ros2 run`'s lookup: <prefix>/lib/<package>/<name> on the AMENT_PREFIX_PATH."""
    for prefix in env["AMENT_PREFIX_PATH"].split(os.pathsep):
        candidate = Path(prefix) / "lib" / package / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(f"no executable {name} of {package} on AMENT_PREFIX_PATH")


@dataclass
class NodeProcess:
    """One node process; its output goes to a log file shown when a test fails."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to send anything more."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def kill_timed(self) -> tuple[int, int]:
        """SIGKILL, between two readings of the wall clock (time.time_ns): the kill happened in
        [before, after]. A pause of the test process there widens the bracket, so a wide one
        tells the caller the time is not worth using."""
        before = time.time_ns()
        os.kill(self.process.pid, signal.SIGKILL)
        after = time.time_ns()
        self.process.wait(timeout=10)
        return before, after

    def stop(self) -> int:
        if self.alive():
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return int(self.process.returncode)


def ros_run(
    env: dict[str, str], log_dir: Path, name: str, ros_args: list[str], args: list[str] = ()
) -> NodeProcess:
    """`ros2 run rl_deploy_ros NAME ARGS --ros-args ROS_ARGS`, from the repository root."""
    exe = executable(env, PACKAGE, name)
    log_path = log_dir / f"{name}-{time.monotonic_ns()}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(exe), *args, "--ros-args", *ros_args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return NodeProcess(name, process, log_path)


@dataclass
class Received:
    monotonic_ns: int  # the probe's clock when its callback ran
    data: bytes
    # The writer's wall clock when it sent the message (the DDS source timestamp): the time a
    # node acted, which a pause of the test process (a full collection of its large heap in
    # the whole suite takes 0.3 s) cannot shift as it shifts the callback's time.
    sent_ns: int


# A kill whose wall-clock bracket is wider than this happened at an unknown moment in it (the
# test process paused there: a full collection of its heap in the whole suite takes 0.3 s).
KILL_BRACKET_NS = 10_000_000
MAX_UNTIMED = 3  # trials a SIGKILL test may re-run because the machine, not the node, was slow
MIN_TICK_SHARE = 0.8  # of the control steps in a window that must have sent a command

LISTEN_DEPTH = 100  # samples a reader keeps until its callback takes them (reliable)

RESPONSE_DISCOVERY_S = 0.5  # for the server to match a new client's response reader


@dataclass
class Probe:
    """An rclpy node in the test process, with its own context, spun in a thread."""

    domain_id: int
    received: dict[str, list[Received]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self._lock = threading.Lock()
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=self.domain_id)
        self.node = rclpy.create_node("test_probe", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()
        self._publishers: dict[str, Any] = {}
        self._clients: dict[str, Any] = {}

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        with contextlib.suppress(ExternalShutdownException):
            self.executor.spin()

    def listen(self, topic: str, msg_class: type, qos: Any = LISTEN_DEPTH) -> None:
        """Record every message on `topic`. The default queue is deep: while this process
        pauses, a short one drops samples (a 50 Hz stream outruns ten in 0.2 s), and a test
        that reads consecutive samples or the first of a kind would read the wrong ones."""
        self.received.setdefault(topic, [])

        def on_message(data: bytes, info: dict[str, int]) -> None:
            received = Received(time.monotonic_ns(), data, info["source_timestamp"])
            with self._lock:
                self.received[topic].append(received)

        self.node.create_subscription(msg_class, topic, on_message, qos, raw=True)

    def messages(self, topic: str, since_ns: int = 0) -> list[Received]:
        """Messages received at or after `since_ns` (time.monotonic_ns) by the probe's clock."""
        with self._lock:
            return [m for m in self.received.get(topic, []) if m.monotonic_ns >= since_ns]

    def sent(self, topic: str, since_wall_ns: int) -> list[Received]:
        """Messages their writer sent at or after `since_wall_ns` (time.time_ns)."""
        with self._lock:
            return [m for m in self.received.get(topic, []) if m.sent_ns >= since_wall_ns]

    def publish(self, topic: str, msg_class: type, data: bytes, qos: Any = 10) -> None:
        if topic not in self._publishers:
            self._publishers[topic] = self.node.create_publisher(msg_class, topic, qos)
        self._publishers[topic].publish(data)

    def call(self, srv_class: type, name: str, request: Any, timeout_s: float = 10.0) -> Any:
        """The service's response. A client is made once per service and kept: each new one
        has a response reader the server must discover too, and Fast DDS drops a response
        whose reader it has not matched yet ("failed to send response (timeout)"), which
        `wait_for_service` (the request side only) does not cover on a loaded machine."""
        client = self._clients.get(name)
        if client is None:
            client = self.node.create_client(srv_class, name)
            if not client.wait_for_service(timeout_sec=timeout_s):
                self.node.destroy_client(client)
                raise TimeoutError(f"service {name} did not appear in {timeout_s} s")
            time.sleep(RESPONSE_DISCOVERY_S)
            self._clients[name] = client
        future = client.call_async(request)
        deadline = time.monotonic() + timeout_s
        while not future.done():
            if time.monotonic() > deadline:
                raise TimeoutError(f"service {name} did not answer in {timeout_s} s")
            time.sleep(0.01)
        return future.result()

    def close(self) -> None:
        import rclpy

        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)
        self._thread.join(timeout=5)


def sent_twists(probe: Probe, topic: str, since_wall_ns: int) -> list[tuple[int, float, float]]:
    """(sent_ns, linear.x, angular.z) of the Twists on `topic` sent at or after `since_wall_ns`:
    the times a node published them, for latencies that the test process's own pauses would
    otherwise lengthen."""
    from rl_deploy import codec
    from rl_deploy.codec.typestore import TWIST

    out = []
    for message in probe.sent(topic, since_wall_ns):
        twist = codec.decode(message.data, TWIST)
        out.append((message.sent_ns, float(twist.linear.x), float(twist.angular.z)))
    return out


def check_control_rate(
    probe: Probe, topic: str, since_wall_ns: int, period_s: float, window_s: float
) -> None:
    """The node's commands on `topic` since `since_wall_ns` came at its timer's period.

    By the node's own send stamps: the period is the median gap between them (a wrong timer
    fails), and at least MIN_TICK_SHARE of the window's control steps sent a command. A tick
    late now and then on a loaded machine (the bag player, the probe and the nodes share the
    cores) lengthens one gap and costs a tick, not the rate.
    """
    sent_ns = sorted(sent for sent, _, _ in sent_twists(probe, topic, since_wall_ns))
    assert len(sent_ns) >= MIN_TICK_SHARE * window_s / period_s, f"{len(sent_ns)} commands"
    median_gap_s = float(np.median(np.diff(sent_ns))) / 1e9
    assert abs(median_gap_s - period_s) <= 0.1 * period_s, f"median gap {median_gap_s:.4f} s"


def check_arm_commands(
    probe: Probe, topic: str, since_wall_ns: int, period_s: float, window_s: float
) -> None:
    """A step's arm command on `topic` since `since_wall_ns`, for most steps: one point the
    controller reaches a control period after receiving it (stamp 0, start on receipt), so the
    step the safety filter allowed per period is run over a period, not over what is left of
    it after the camera frame's latency."""
    from rl_deploy import codec
    from rl_deploy.codec.typestore import JOINT_TRAJECTORY

    trajectories = [
        codec.decode(m.data, JOINT_TRAJECTORY) for m in probe.sent(topic, since_wall_ns)
    ]
    assert len(trajectories) >= MIN_TICK_SHARE * window_s / period_s, f"{len(trajectories)} arm"
    assert {codec.stamp_to_ns(t.header.stamp) for t in trajectories} == {0}
    due_ns = {codec.duration_to_ns(t.points[0].time_from_start) for t in trajectories}
    assert due_ns == {round(period_s * 1e9)}


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    """Poll until `condition()` is truthy; its value, or AssertionError naming `what`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def run_script_json(env: dict[str, str], script: str, *args: str) -> Any:
    """`python -c script args` with the installed packages; the JSON of its last stdout line."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def set_parameter(probe: Probe, node: str, name: str, value: Any) -> Any:
    """`ros2 param set` through the node's service: its SetParametersResult."""
    from rcl_interfaces.msg import Parameter
    from rcl_interfaces.srv import SetParameters

    request = SetParameters.Request(parameters=[Parameter(name=name, value=value)])
    (result,) = probe.call(SetParameters, f"/{node}/set_parameters", request).results
    return result
