"""`rl-deploy bench fuzz --seconds N`: random and corrupted inputs to every parser of the core.

Targets: CDR decoding and the converters behind it, Image fields, policy cards, the
observation builder and the pipeline's feed/tick. A failure is any exception that is not one of
the project's own (RlDeployError) or a non-finite or out-of-limits command.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rl_deploy import codec
from rl_deploy.bench.measure import non_negative_int, positive_float
from rl_deploy.bench.world import SyntheticWorld
from rl_deploy.codec import typestore as msgtypes
from rl_deploy.config import PipelineConfig
from rl_deploy.errors import RlDeployError
from rl_deploy.geometry import Pose2D
from rl_deploy.pipeline import Pipeline
from rl_deploy.policy import ObservationBuilder, RawObservation, load_card, parse_card
from rl_deploy.replay.synthetic import SyntheticBagSpec

CARDS = ("models/example_reach.yaml", "models/ovmm_nav.yaml")
ENCODINGS = (*sorted(codec.SUPPORTED_ENCODINGS), "yuv422", "", "rgb8\x00", "16UC3", "bayer_rggb8")
ODD_NUMBERS = (float("nan"), float("inf"), -float("inf"), -1.0, 0.0, 1e308, -(2**63), 2**64)
ODD_VALUES: tuple[Any, ...] = (*ODD_NUMBERS, None, "", "x", [], {}, [1, "a"], True, [[]])


class CommandFailureError(AssertionError):
    """A command that must never leave the pipeline: non-finite or beyond the robot's limits."""


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    """One to three random corruptions: flips, overwrites, cuts, inserts, huge sequence
    lengths, NaN/inf floats at aligned offsets, a wrong encapsulation header."""
    buffer = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        size = len(buffer)
        op = int(rng.integers(0, 8))
        at = int(rng.integers(0, size)) if size else 0
        if op == 0 and size:
            buffer[at] ^= 1 << int(rng.integers(0, 8))
        elif op == 1 and size:
            buffer[at] = int(rng.integers(0, 256))
        elif op == 2:
            del buffer[at:]
        elif op == 3:
            buffer[at:at] = rng.bytes(int(rng.integers(1, 64)))
        elif op == 4 and size >= 8:
            offset = 4 + 4 * int(rng.integers(0, (size - 4) // 4))
            value = int(rng.choice([0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, size, size + 1]))
            buffer[offset : offset + 4] = value.to_bytes(4, "little")
        elif op == 5 and size >= 12:
            offset = 4 + 8 * int(rng.integers(0, (size - 4) // 8))
            odd = float(rng.choice([math.nan, math.inf, -math.inf, 1e300]))
            buffer[offset : offset + 8] = np.float64(odd).tobytes()
        elif op == 6 and size >= 8:
            offset = 4 + 4 * int(rng.integers(0, (size - 4) // 4))
            buffer[offset : offset + 4] = np.float32(np.nan).tobytes()
        elif op == 7 and size >= 4:
            buffer[:4] = rng.choice([b"\x00\x00\x00\x00", b"\x01\x00\x00\x00", b"\x00\x03\x00\x00"])
    return bytes(buffer)


def seed_messages(world: SyntheticWorld) -> dict[str, list[bytes]]:
    """Valid CDR of every message type the core parses, from the synthetic world."""
    stamp = world.spec.start_ns
    camera = dict(world.camera(stamp))
    topics = world.topics
    seeds: dict[str, list[bytes]] = {
        msgtypes.IMAGE: [camera[topics.depth], camera[topics.segmentation], camera[topics.rgb]],
        msgtypes.JOINT_STATE: [world.joints(stamp)[1]],
        msgtypes.POSE_WITH_COVARIANCE_STAMPED: [data for _, data in world.pose(stamp)],
    }
    rgb = codec.image_to_array(codec.decode(camera[topics.rgb], msgtypes.IMAGE))
    compressed = codec.message_class(msgtypes.COMPRESSED_IMAGE)
    for fmt, extension in (("rgb8; png compressed bgr8", ".png"), ("jpeg", ".jpg")):
        import cv2

        ok, encoded = cv2.imencode(extension, rgb)
        assert ok
        message = compressed(header=codec.make_header(stamp, "cam"), format=fmt, data=encoded)
        seeds.setdefault(msgtypes.COMPRESSED_IMAGE, []).append(
            codec.encode(message, msgtypes.COMPRESSED_IMAGE)
        )
    tf = codec.message_class(msgtypes.TF_MESSAGE)
    seeds[msgtypes.TF_MESSAGE] = [codec.encode(tf(transforms=[]), msgtypes.TF_MESSAGE)]
    seeds[msgtypes.BOOL] = [
        codec.encode(codec.message_class(msgtypes.BOOL)(data=True), msgtypes.BOOL)
    ]
    return seeds


def convert_frame(frame: codec.ImageFrame) -> None:
    """What the stack's image handlers do with an Image read straight from CDR."""
    if frame.encoding in codec.DEPTH_ENCODINGS:
        _ = frame.depth().metres  # for its errors
    else:
        frame.rgb()


def convert(msg: Any, msgtype: str, joint_names: tuple[str, ...]) -> None:
    """Every converter a host would apply to a message of this type."""
    if msgtype == msgtypes.IMAGE:
        codec.image_to_array(msg)
        if msg.encoding in codec.DEPTH_ENCODINGS:
            codec.depth_to_metres(msg)
        else:
            codec.rgb_from_image(msg)
    elif msgtype == msgtypes.COMPRESSED_IMAGE:
        codec.decode_compressed(msg)
    elif msgtype == msgtypes.JOINT_STATE:
        values = codec.joint_positions(msg, joint_names)
        if not np.isfinite(values).all():
            raise CommandFailureError(f"joint_positions returned non-finite {values}")
    elif msgtype in codec.POSE_MSGTYPES:
        pose = codec.pose_from_message(msg, msgtype)
        if not all(math.isfinite(v) for v in (pose.x, pose.y, pose.yaw)):
            raise CommandFailureError(f"pose_from_message returned non-finite {pose}")
    elif msgtype == msgtypes.TF_MESSAGE:
        tree = codec.TransformTree()
        tree.update(msg)
        for frame in tree.frames():
            tree.lookup("map", frame)


@dataclass
class Tally:
    """What one target saw."""

    tried: int = 0
    typed_errors: int = 0
    failures: int = 0
    examples: list[str] = field(default_factory=list)  # the first few failures


@dataclass
class Fuzzer:
    """Every target with its fixed parts built once; `trial(name)` tries one random input."""

    rng: np.random.Generator
    config: PipelineConfig
    world: SyntheticWorld
    seeds: dict[str, list[bytes]] = field(init=False)
    pipelines: list[Pipeline] = field(init=False)
    cards: list[tuple[Path, dict[str, Any]]] = field(init=False)
    builders: list[ObservationBuilder] = field(init=False)
    now_ns: int = field(init=False)

    def __post_init__(self) -> None:
        self.seeds = seed_messages(self.world)
        self.pipelines = [
            Pipeline.from_config(config) for config in _mask_source_configs(self.config)
        ]
        paths = [self.config.resolve(card) for card in CARDS]
        self.cards = [(p, yaml.safe_load(p.read_text(encoding="utf-8"))) for p in paths]
        self.builders = [ObservationBuilder(load_card(p)) for p in paths]
        self.now_ns = self.world.spec.start_ns
        self.targets: dict[str, Callable[[], None]] = {
            "codec": self.codec,
            "image_fields": self.image_fields,
            "card": self.card,
            "observation": self.observation,
            "pipeline": self.feed_and_tick,
        }

    def codec(self) -> None:
        msgtype = list(self.seeds)[int(self.rng.integers(0, len(self.seeds)))]
        options = self.seeds[msgtype]
        data = mutate(options[int(self.rng.integers(0, len(options)))], self.rng)
        if msgtype == msgtypes.IMAGE and self.rng.integers(0, 2):
            convert_frame(codec.decode_image(data))  # the way the stack's handlers read images
            return
        joint_names = self.pipelines[0].policy.card.joint_names
        convert(codec.decode(data, msgtype), msgtype, joint_names)

    def image_fields(self) -> None:
        rng = self.rng
        height, width = int(rng.integers(-2, 40)), int(rng.integers(-2, 40))
        encoding = ENCODINGS[int(rng.integers(0, len(ENCODINGS)))]
        step = int(rng.choice([max(width, 0) * int(rng.integers(0, 9)), int(rng.integers(0, 200))]))
        size = int(rng.choice([max(step * height, 0), int(rng.integers(0, 4000))]))
        msg = codec.message_class(msgtypes.IMAGE)(
            header=codec.make_header(0, ""),
            height=height,
            width=width,
            encoding=encoding,
            is_bigendian=int(rng.integers(0, 2)),
            step=step,
            data=np.frombuffer(rng.bytes(size), np.uint8),
        )
        convert(msg, msgtypes.IMAGE, ())

    def card(self) -> None:
        path, document = self.cards[int(self.rng.integers(0, len(self.cards)))]
        mutated = copy.deepcopy(document)
        for _ in range(int(self.rng.integers(1, 4))):
            _mutate_tree(mutated, self.rng)
        if self.rng.random() < 0.2:
            text = mutate(yaml.safe_dump(mutated).encode(), self.rng).decode(errors="replace")
            parse_card(text, path.parent)
        else:
            parse_card(mutated, path.parent)

    def observation(self) -> None:
        rng = self.rng
        builder = self.builders[int(rng.integers(0, len(self.builders)))]
        card = builder.card
        odd = float(rng.choice((*ODD_NUMBERS[:3], 0.0)))
        shapes = [(48, 64), (4, 4), (48, 64, 1), (0, 64), (2,)]
        shape = shapes[int(rng.integers(0, len(shapes)))]
        dtype = (np.float32, np.float64, np.uint16)[int(rng.integers(0, 3))]
        depth: Any = rng.uniform(0, 12, shape).astype(dtype)  # wrong dtypes on purpose
        if depth.size and rng.random() < 0.5:
            depth.flat[int(rng.integers(0, depth.size))] = odd if depth.dtype.kind == "f" else 0
        mask_shape = shape if rng.random() < 0.7 else (3, 5)
        masks = {
            name: rng.integers(0, 2, mask_shape, dtype=np.uint8) for name in card.target_classes
        }
        joints = rng.normal(0, 1, int(rng.choice([len(card.joint_names), 0, 2, 20])))
        if joints.size and rng.random() < 0.3:
            joints[0] = odd
        raw = RawObservation(
            depth_m=depth if rng.random() < 0.9 else None,
            masks=masks,
            joints=joints,
            pose=Pose2D(float(rng.normal()), odd if rng.random() < 0.2 else 0.0, 0.1),
            target_class=str(rng.choice([*card.target_classes, "sofa"])),
        )
        if rng.random() < 0.1:  # a new episode, its start the next pose or one given
            start = Pose2D(0.0, 0.0, odd if rng.random() < 0.3 else 1e300 * rng.random())
            builder.reset(start if rng.random() < 0.5 else None)
        feeds = builder.build(raw)
        for spec in card.inputs:
            value = feeds[spec.name]
            if value.shape != spec.tensor.shape or value.dtype != np.dtype(spec.tensor.dtype):
                raise CommandFailureError(
                    f"feed {spec.name}: {value.shape} {value.dtype}, card {spec}"
                )
            if not np.isfinite(value).all():
                raise CommandFailureError(f"feed {spec.name} is not finite: {value.ravel()[:8]}")

    def feed_and_tick(self) -> None:
        """A burst of valid and corrupted messages on a pipeline's topics, then a tick."""
        rng = self.rng
        pipeline = self.pipelines[int(rng.integers(0, len(self.pipelines)))]
        self.now_ns += int(rng.integers(1, 120)) * 1_000_000
        messages = list(self.world.camera(self.now_ns))
        messages += [self.world.joints(self.now_ns), *self.world.pose(self.now_ns)]
        # The e-stop would latch on a misrouted message and hide everything else; faults test it.
        topics = [t for t in pipeline.subscriptions if t != pipeline.config.topics.estop]
        for topic, data in messages:
            corrupted = mutate(data, rng) if rng.random() < 0.3 else data
            elsewhere = topics[int(rng.integers(0, len(topics)))] if rng.random() < 0.1 else topic
            pipeline.feed(elsewhere, corrupted, self.now_ns)
        # Without a listener the policy reads masks at its own pixels only; with one, whole.
        pipeline.publish_target_mask = bool(rng.random() < 0.5)
        outputs = pipeline.tick(self.now_ns)
        record = pipeline.last_tick
        assert record is not None
        if record.mask_u8 is not None and record.depth_m is not None:  # made after the step
            assert record.mask_u8.shape == record.depth_m.shape
        base, limits = record.command.base, pipeline.safety.limits
        if not record.command.is_finite():
            raise CommandFailureError(f"non-finite command {record.command}")
        if (
            max(abs(base.linear_x), abs(base.linear_y)) > limits.max_linear_mps
            or abs(base.angular_z) > limits.max_angular_rps
        ):
            raise CommandFailureError(f"command beyond the robot's limits {base}")
        for output in outputs:
            codec.decode(output.data, output.msgtype)

    def trial(self, name: str, tally: Tally) -> None:
        tally.tried += 1
        try:
            self.targets[name]()
        except RlDeployError:
            tally.typed_errors += 1
        except Exception as err:  # anything else is what the fuzzer is here to find
            tally.failures += 1
            if len(tally.examples) < 3:
                where = traceback.extract_tb(err.__traceback__)[-1]
                tally.examples.append(
                    f"{type(err).__name__}: {err} ({Path(where.filename).name}:{where.lineno})"
                )


def _mutate_tree(node: Any, rng: np.random.Generator) -> None:
    """Delete, replace or duplicate one value somewhere in a YAML tree."""
    while True:
        if isinstance(node, dict) and node:
            keys = list(node)
            key = keys[int(rng.integers(0, len(keys)))]
        elif isinstance(node, list) and node:
            key = int(rng.integers(0, len(node)))
        else:
            return
        child = node[key]
        if isinstance(child, dict | list) and child and rng.random() < 0.6:
            node = child
            continue
        choice = rng.random()
        if choice < 0.3:
            del node[key]
        elif choice < 0.8:
            node[key] = ODD_VALUES[int(rng.integers(0, len(ODD_VALUES)))]
        else:
            node[key] = [child, child] if not isinstance(child, list) else child + child
        return


def _mask_source_configs(config: PipelineConfig) -> list[PipelineConfig]:
    """One config per mask source; the detector's only when its model is there."""
    sources = ["segmentation", "topics"]
    if config.resolve(config.detector.model).is_file():
        sources.append("detector")
    return [
        dataclasses.replace(config, masks=dataclasses.replace(config.masks, source=source))  # type: ignore[arg-type]
        for source in sources
    ]


@contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """libpng and libjpeg print every corrupt image to fd 2; mute it while fuzzing."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=positive_float, default=60.0, help="how long to fuzz")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--config", type=Path, help="pipeline config or policy_node params YAML")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from rl_deploy.bench.e2e import bench_config

    config = bench_config(args.config, "segmentation")
    spec = SyntheticBagSpec(width=64, height=48, seed=args.seed)
    fuzzer = Fuzzer(
        np.random.default_rng(args.seed), config, SyntheticWorld(spec, config.topics, 4)
    )
    tallies = {name: Tally() for name in fuzzer.targets}
    names = list(tallies)
    deadline = time.monotonic() + args.seconds
    index = 0
    with _quiet_native_stderr():
        while time.monotonic() < deadline:
            name = names[index % len(names)]
            fuzzer.trial(name, tallies[name])
            index += 1
    failures = sum(t.failures for t in tallies.values())
    return {
        "benchmark": "fuzz",
        "seconds": args.seconds,
        "seed": args.seed,
        "inputs_tried": sum(t.tried for t in tallies.values()),
        "failures": failures,
        "targets": {name: vars(tally) for name, tally in tallies.items()},
        "pipelines": [
            {
                "masks": p.config.masks.source,
                "commands": p.stats.commands_out,
                "zero_commands": p.stats.zero_commands,
            }
            for p in fuzzer.pipelines
        ],
        "ok": failures == 0,
    }
