"""bag_play: publish a rosbag2 (mcap or sqlite3) on its recorded topics, as raw CDR, in time.

For machines without `ros2 bag`: `--clock` drives use_sim_time nodes, `--restamp` live ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import struct
import sys
import time
from collections.abc import Callable, Iterator

import rclpy
import rclpy.exceptions
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.utilities import remove_ros_args

from rl_deploy import codec
from rl_deploy.codec.typestore import CLOCK, HEADER, TF_MESSAGE, message_class
from rl_deploy.errors import RlDeployError
from rl_deploy.replay.bag import Bag, BagMessage, without_long_silences
from rl_deploy_ros import host

_STAMP = struct.Struct("<iI"), struct.Struct(">iI")  # builtin_interfaces/Time, LE and BE CDR


def header_first(msgtype: str) -> bool:
    """True when the message starts with a std_msgs/Header (its stamp sits at a fixed offset)."""
    try:
        first = dataclasses.fields(message_class(msgtype))[0]
    except (RlDeployError, IndexError):
        return False
    return first.name == "header" and HEADER.rsplit("/", 1)[-1] in str(first.type)


def restamp_header(data: bytes, stamp_map: Callable[[int], int]) -> bytes:
    """The same CDR message (header first) with its stamp mapped by `stamp_map`; a stamp of 0
    (not stamped) stays 0."""
    layout = _STAMP[0] if data[1] & 1 else _STAMP[1]  # encapsulation: odd ids are little-endian
    sec, nanosec = layout.unpack_from(data, 4)
    if sec == 0 and nanosec == 0:
        return data
    out = bytearray(data)
    layout.pack_into(out, 4, *divmod(stamp_map(sec * 1_000_000_000 + nanosec), 1_000_000_000))
    return bytes(out)


def restamp_tf(data: bytes, stamp_map: Callable[[int], int]) -> bytes:
    """A tf2_msgs/TFMessage with each transform's stamp mapped by `stamp_map` (0 stays 0)."""
    message = codec.decode(data, TF_MESSAGE)
    for transform in message.transforms:
        stamp_ns = codec.stamp_to_ns(transform.header.stamp)
        if stamp_ns:
            transform.header.stamp = codec.ns_to_stamp(stamp_map(stamp_ns))
    return codec.encode(message, TF_MESSAGE)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bag_play", description=__doc__)
    parser.add_argument("bag", help="rosbag2 directory or .mcap file")
    parser.add_argument("--rate", type=float, default=1.0, help="playback speed factor")
    parser.add_argument("--loop", action="store_true", help="start over at the end")
    parser.add_argument("--clock", type=float, default=0.0, metavar="HZ", help="publish /clock")
    parser.add_argument(
        "--restamp", action="store_true", help="move header stamps to the current time"
    )
    parser.add_argument("--topics", nargs="*", help="play only these topics")
    parser.add_argument(
        "--qos", default="reliable:10", help="QoS of every publisher (see the nodes' qos.*)"
    )
    parser.add_argument("--delay", type=float, default=0.0, help="s to wait before playing")
    args = parser.parse_args(argv)
    if not (math.isfinite(args.rate) and args.rate > 0):
        parser.error(f"--rate must be a finite number > 0, got {args.rate}")
    for name in ("clock", "delay"):
        value = getattr(args, name)
        if not (math.isfinite(value) and value >= 0):
            parser.error(f"--{name} must be a finite number >= 0, got {value}")
    if args.loop and args.clock > 0:
        parser.error("--loop with --clock would run the clock backwards; loop with --restamp")
    return args


class BagPlayer:
    """Publishes messages at their recorded times (scaled by `rate`), optionally with /clock."""

    def __init__(self, node: Node, bag: Bag, args: argparse.Namespace) -> None:
        self.node, self.bag, self.args = node, bag, args
        topics = args.topics or list(bag.topics)
        qos = host.qos_profile(args.qos, "--qos")
        self.publishers = {}
        for name in topics:
            if name not in bag.topics:
                raise RlDeployError(f"topic {name} is not in {bag.path}; it has {list(bag.topics)}")
            msgtype = bag.topics[name].msgtype
            cls = host.message_class(msgtype)
            if cls is None:
                node.get_logger().warning(f"skipping {name}: {msgtype} is not installed")
                continue
            restamp = restamp_tf if msgtype == TF_MESSAGE else None
            if restamp is None and header_first(msgtype):
                restamp = restamp_header
            self.publishers[name] = (node.create_publisher(cls, name, qos), restamp)
        if not self.publishers:
            raise RlDeployError(f"nothing to play in {bag.path}: no topic's type is installed")
        self.clock = None
        if args.clock > 0:
            clock_class = host.message_class(CLOCK)
            self.clock = node.create_publisher(clock_class, "/clock", QoSProfile(depth=1))

    def play(self) -> int:
        """Plays once (or forever with --loop); the number of messages published."""
        published = 0
        while True:
            wall_start = time.monotonic_ns()
            before = published
            stamp_map = self._bag_to_wall(time.time_ns())
            for message, bag_time_ns in self._timed(wall_start):
                entry = self.publishers.get(message.topic)
                if entry is None:
                    continue
                publisher, restamp = entry
                data = message.data
                if self.args.restamp and restamp is not None:
                    data = restamp(data, stamp_map)
                publisher.publish(data)
                published += 1
                self._publish_clock(bag_time_ns)
            if not self.args.loop or not rclpy.ok():
                return published
            if published == before:  # looping over nothing would spin a core for ever
                raise RlDeployError(
                    f"{self.bag.path}: no message to play on {list(self.publishers)}"
                )

    def _bag_to_wall(self, epoch_start_ns: int) -> Callable[[int], int]:
        """--restamp's map of a stamp: bag time to the wall time of this pass, which starts at
        `epoch_start_ns`. One map for every message, so a frame's RGB and depth keep one stamp,
        and stamps keep pace with --rate and go on increasing across loops."""
        bag_start_ns, rate = self.bag.start_ns, self.args.rate
        return lambda stamp_ns: epoch_start_ns + round((stamp_ns - bag_start_ns) / rate)

    def _timed(self, wall_start_ns: int) -> Iterator[tuple[BagMessage, int]]:
        """Messages as their time comes, publishing /clock while waiting."""
        clock_period_ns = round(1e9 / self.args.clock) if self.clock else None
        next_clock_ns = self.bag.start_ns
        for message in without_long_silences(self.bag.messages(self.publishers), self.bag.path):
            due_ns = message.log_time_ns
            while True:
                elapsed_ns = (time.monotonic_ns() - wall_start_ns) * self.args.rate
                bag_now_ns = self.bag.start_ns + int(elapsed_ns)
                if clock_period_ns and bag_now_ns >= next_clock_ns:
                    self._publish_clock(bag_now_ns)
                    next_clock_ns = bag_now_ns + clock_period_ns
                if bag_now_ns >= due_ns:
                    break
                wait_ns = due_ns - bag_now_ns
                if clock_period_ns:
                    wait_ns = min(wait_ns, max(next_clock_ns - bag_now_ns, 0))
                time.sleep(wait_ns / 1e9 / self.args.rate)
            yield message, due_ns

    def _publish_clock(self, stamp_ns: int) -> None:
        if self.clock is not None:
            clock = message_class(CLOCK)(clock=codec.ns_to_stamp(stamp_ns))
            self.clock.publish(codec.encode(clock, CLOCK))


def main(args: list[str] | None = None) -> int:
    argv = sys.argv if args is None else args
    options = parse_args(remove_ros_args(argv)[1:])
    host.init_interruptible(argv)
    node = Node("bag_play")
    try:
        player = BagPlayer(node, Bag(options.bag), options)
        time.sleep(options.delay)
        count = player.play()
        node.get_logger().info(f"published {count} messages from {options.bag}")
    except RlDeployError as err:
        print(f"bag_play: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0
