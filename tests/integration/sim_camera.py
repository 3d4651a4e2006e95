"""Camera bags for the perception tests, rendered by the project's MuJoCo simulator.

The robot stands still in a held-out episode whose target object the shipped detector finds;
the bag holds what the simulator publishes for it (RGB, depth, camera info, joints, pose).
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_harness import ROOT, Probe

from rl_deploy import codec
from rl_deploy.codec.typestore import DIAGNOSTIC_ARRAY, IMAGE
from rl_deploy.io import Output
from rl_deploy.perception.runner import YoloSegRunner, load_runner
from rl_deploy.replay.bag import Bag
from rl_deploy.replay.writer import McapWriter
from rl_deploy.sim.evaluate import HELD_OUT_SEED
from rl_deploy.sim.host import HostOptions, MujocoSimHost
from rl_deploy.sim.scene import load_scene
from rl_deploy.sim.spec import SceneSpec

DETECTOR = ROOT / "models" / "detector" / "detector.onnx"
SCENE = ROOT / "config" / "scenes" / "example_room.yaml"
# Well above the detector's 0.25 threshold, so that the node's run of the same network on the
# same frame cannot fall on the other side of it.
MIN_SCORE = 0.4
SEEDS_TRIED = 40
STEP_S = 0.01


@dataclass(frozen=True)
class CameraBag:
    path: Path  # one .mcap file
    seed: int
    target_class: str  # the episode's target, found by the detector in the first frame
    width: int
    height: int
    frame_id: str
    topics: tuple[str, ...]


def small_camera_scene(width: int, height: int) -> SceneSpec:
    """The example room with the head camera rendered at width x height (same field of view)."""
    scene = load_scene(SCENE)
    camera = dataclasses.replace(scene.robot.camera, width=width, height=height)
    return dataclasses.replace(scene, robot=dataclasses.replace(scene.robot, camera=camera))


def target_found(runner: YoloSegRunner, rgb_cdr: bytes, target_class: str) -> bool:
    detections = runner.detect(codec.rgb_from_image(codec.decode(rgb_cdr, IMAGE)))
    return any(
        runner.names[class_id] == target_class and score >= MIN_SCORE
        for class_id, score in zip(detections.class_ids, detections.scores, strict=True)
    )


def write_camera_bag(
    path: Path, seconds: float = 2.0, width: int = 320, height: int = 240
) -> CameraBag:
    """Record `seconds` of the first held-out episode whose target the detector finds."""
    scene = small_camera_scene(width, height)
    runner = load_runner(DETECTOR)
    host = MujocoSimHost(scene, HostOptions(segmentation=False))
    topics = scene.topics
    wanted = {topics.rgb, topics.depth, topics.camera_info, topics.joint_states, topics.pose}
    try:
        for seed in range(HELD_OUT_SEED, HELD_OUT_SEED + SEEDS_TRIED):
            layout = host.reset(seed)
            first = host.step(1 / scene.robot.camera.rate_hz)
            rgb = next(o.data for o in first if o.topic == topics.rgb)
            if target_found(runner, rgb, layout.target_class):
                break
        else:
            raise AssertionError(f"the detector finds no target in seeds from {HELD_OUT_SEED}")
        writer = McapWriter(path)
        try:
            record(writer, host, first, wanted, seconds)
        finally:
            writer.close()
    finally:
        host.close()
    return CameraBag(
        path, seed, layout.target_class, width, height, scene.robot.camera.frame_id, tuple(wanted)
    )


def record(
    writer: McapWriter, host: MujocoSimHost, first: list[Output], topics: set[str], seconds: float
) -> None:
    """Step the standing robot in 10 ms slices; each slice's outputs are logged at its end."""
    outputs, steps = first, round(seconds / STEP_S)
    for _ in range(steps):
        for output in outputs:
            if output.topic in topics:
                writer.add_topic(output.topic, output.msgtype)
                writer.write(output.topic, host.now_ns, output.data)
        outputs = host.step(STEP_S)


# ---------------------------------------------------------------- what the probe received

# Reliable, as bag_play publishes, and deep enough that a busy test process loses no frame: the
# header checks look every output's frame up among the frames received.
EVERY_FRAME = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)


def first_message(bag: CameraBag, topic: str) -> Any:
    """The first message on `topic` in the bag, decoded."""
    message = next(Bag(bag.path).messages([topic]))
    return codec.decode(message.data, Bag(bag.path).topics[topic].msgtype)


def rclpy_class(msgtype: str) -> type | None:
    """The rclpy class of "pkg/msg/Name", or None where that package is not installed."""
    package, _, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.msg"), name)  # type: ignore[no-any-return]
    except ImportError:
        return None


def headers(probe: Probe, topic: str, since_ns: int = 0) -> list[tuple[int, str]]:
    """(stamp_ns, frame_id) of every Image received on `topic`."""
    return [image_header(m.data) for m in probe.messages(topic, since_ns)]


def image_header(data: bytes) -> tuple[int, str]:
    header = codec.decode(data, IMAGE).header
    return codec.stamp_to_ns(header.stamp), str(header.frame_id)


def statuses(probe: Probe, name: str, since_ns: int = 0) -> list[Any]:
    """DiagnosticStatus entries called `name` on /diagnostics."""
    found = []
    for message in probe.messages("/diagnostics", since_ns):
        array = codec.decode(message.data, DIAGNOSTIC_ARRAY)
        found += [status for status in array.status if status.name == name]
    return found


def values(status: Any) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def advertised(probe: Probe, node: str) -> set[str]:
    """Topics `node` (in the root namespace) publishes, as the ROS graph reports them."""
    return _graph(probe.node.get_publisher_names_and_types_by_node, node)


def subscribed(probe: Probe, node: str) -> set[str]:
    return _graph(probe.node.get_subscriber_names_and_types_by_node, node)


def _graph(query: Callable[[str, str], list[tuple[str, list[str]]]], node: str) -> set[str]:
    from rclpy.node import NodeNameNonExistentError

    try:
        return {name for name, _ in query(node, "/")}
    except NodeNameNonExistentError:  # not discovered yet
        return set()
