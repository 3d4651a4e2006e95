"""A synthetic robot for the benchmarks: every stream the pipeline reads, as fresh CDR bytes.

Camera frames are rendered once by the replay tool's generator and re-stamped per message, so
an hour of 30 Hz input costs encoding only, and every message is new bytes as on a robot.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from rl_deploy import codec
from rl_deploy.codec.typestore import IMAGE, JOINT_STATE
from rl_deploy.config import TopicsConfig
from rl_deploy.geometry import Pose2D
from rl_deploy.perception.synthetic import render_scene
from rl_deploy.replay.synthetic import (
    SyntheticBagSpec,
    _colourise,
    _joint_state,
    _pose_messages,
    _render,
    _robot_pose,
)

LOOP_S = 10.0  # the robot's path repeats with this period, so poses stay in a trained range
_CAMERA_FRAME = "camera_color_optical_frame"


@dataclass(frozen=True)
class Message:
    """One message as a host receives it."""

    t_ns: int  # arrival (bag log time)
    topic: str
    data: bytes


class SyntheticWorld:
    """Depth, segmentation and RGB at `spec.camera_hz`; joints and the amcl pose beside them."""

    def __init__(
        self,
        spec: SyntheticBagSpec | None = None,
        topics: TopicsConfig | None = None,
        frames: int = 10,
        rgb: bool = True,
        mask_topics: Mapping[str, int] | None = None,
        *,
        detector_scenes: bool = False,
    ) -> None:
        """`detector_scenes`: RGB frames are renders of the example scene, in which the shipped
        detector finds objects (its target classes in about half of them), instead of the
        depth frame coloured by class: the detector's whole path (NMS, masks) then runs."""
        spec = spec or SyntheticBagSpec()
        self.spec, self.topics, self.rgb = spec, topics or TopicsConfig(), rgb
        # topic → class id: one mono8 mask per topic, as a separate perception_node publishes
        self.mask_topics = dict(mask_topics or {})
        rng = np.random.default_rng(spec.seed)
        self.depth_m: list[npt.NDArray[np.float32]] = []
        self.class_ids: list[npt.NDArray[np.uint8]] = []
        self._depth_mm: list[npt.NDArray[np.uint16]] = []
        self._rgb: list[npt.NDArray[np.uint8]] = []
        for index in range(frames):
            pose = self.pose_at(spec.start_ns + round(index * LOOP_S / frames * 1e9))
            depth_m, class_ids = _render(spec, pose, rng)
            self.depth_m.append(depth_m)
            self.class_ids.append(class_ids)
            self._depth_mm.append(np.round(depth_m * 1000.0).astype(np.uint16))
            self._rgb.append(_colourise(depth_m, class_ids))
        if detector_scenes:
            scenes = np.random.default_rng(spec.seed + 1)
            self._rgb = [render_scene(scenes, spec.width, spec.height).rgb for _ in self._rgb]

    def pose_at(self, stamp_ns: int) -> Pose2D:
        loop_ns = round(LOOP_S * 1e9)
        return _robot_pose(
            self.spec, self.spec.start_ns + (stamp_ns - self.spec.start_ns) % loop_ns
        )

    def frame_index(self, stamp_ns: int) -> int:
        phase_s = ((stamp_ns - self.spec.start_ns) / 1e9) % LOOP_S
        return int(phase_s / LOOP_S * len(self.depth_m)) % len(self.depth_m)

    def camera(self, stamp_ns: int) -> list[tuple[str, bytes]]:
        """Depth (16UC1 mm), segmentation (mono8 class ids) and RGB of the frame at `stamp_ns`."""
        index = self.frame_index(stamp_ns)
        images: list[tuple[str, npt.NDArray[Any], str]] = [
            (self.topics.depth, self._depth_mm[index], "16UC1"),
            (self.topics.segmentation, self.class_ids[index], "mono8"),
        ]
        if self.rgb:
            images.append((self.topics.rgb, self._rgb[index], "rgb8"))
        for topic, class_id in self.mask_topics.items():
            mask_u8 = (self.class_ids[index] == class_id).view(np.uint8) * np.uint8(255)
            images.append((topic, mask_u8, "mono8"))
        return [
            (topic, codec.encode(codec.array_to_image(pixels, enc, stamp_ns, _CAMERA_FRAME), IMAGE))
            for topic, pixels, enc in images
        ]

    def joints(
        self, stamp_ns: int, overrides: Mapping[str, float] | None = None
    ) -> tuple[str, bytes]:
        """Joint states; `overrides` sets some positions (m or rad) by joint name."""
        msg = _joint_state(self.spec, stamp_ns)
        for name, position in (overrides or {}).items():
            msg.position[list(msg.name).index(name)] = position
        return self.topics.joint_states, codec.encode(msg, JOINT_STATE)

    def pose(self, stamp_ns: int) -> list[tuple[str, bytes]]:
        messages = _pose_messages(self.spec, self.topics, self.pose_at(stamp_ns), stamp_ns)
        return [(topic, codec.encode(msg, msgtype)) for _, topic, msgtype, msg in messages]

    def stream(self, start_ns: int, seconds: float) -> Iterator[Message]:
        """Every message of `seconds` from `start_ns`, in arrival order (stamp = arrival)."""
        spec = self.spec
        rates = {"camera": spec.camera_hz, "joints": spec.joints_hz, "pose": spec.pose_hz}
        next_ns = dict.fromkeys(rates, start_ns)
        end_ns = start_ns + round(seconds * 1e9)
        while True:
            kind = min(next_ns, key=lambda name: next_ns[name])
            t_ns = next_ns[kind]
            if t_ns >= end_ns:
                return
            next_ns[kind] = t_ns + round(1e9 / rates[kind])
            if kind == "camera":
                messages = self.camera(t_ns)
            elif kind == "joints":
                messages = [self.joints(t_ns)]
            else:
                messages = self.pose(t_ns)
            for topic, data in messages:
                yield Message(t_ns, topic, data)
