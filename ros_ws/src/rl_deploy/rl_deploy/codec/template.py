"""CDR of the per-step messages by patching bytes the typestore serialized once.

A command message's layout is fixed by its strings and sequence lengths (frame, joint names),
which do not change between steps; only the stamp and a few float64 values do. Serializing
through the typestore each step builds message objects and walks generated code, several times
the cost of writing twenty bytes, most of it in cache misses after the networks have run. A
mask image of a given size and frame is the same: a stamp, then its pixels, written in place.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from rl_deploy.codec.commands import float64_multi_array, joint_trajectory, twist, twist_stamped
from rl_deploy.codec.header import stamp_fields
from rl_deploy.codec.images import mask_to_image
from rl_deploy.codec.typestore import IMAGE, JOINT_TRAJECTORY, TWIST_STAMPED, EncodeError, encode
from rl_deploy.command import ArmTarget, BaseVelocity

_ORDER = "<" if sys.byteorder == "little" else ">"  # encode writes the host's byte order
_F64 = struct.Struct(f"{_ORDER}d")
_STAMP = struct.Struct(f"{_ORDER}iI")
# Markers written where the values go, found again in the serialized bytes. Odd fractions and
# a large stamp that no string, length or padding of a command message can look like.
_MARKER_STAMP_NS = 1_592_614_637_123_456_789
_MARKER_BASE = 1234.5678901234567


class CommandTemplate:
    """Encodes one message type with fixed strings and lengths: a stamp and `count` float64s.

    `build(stamp_ns, values)` makes the message (the typestore's way); it is called once, with
    markers, to find where the stamp and each value lie in the bytes.
    """

    def __init__(
        self, build: Callable[[int, Sequence[float]], Any], msgtype: str, count: int
    ) -> None:
        markers = [_MARKER_BASE + index / 7 for index in range(count)]
        stamped = build(_MARKER_STAMP_NS, markers)
        self._bytes = encode(stamped, msgtype)
        self._msgtype = msgtype
        self._value_at = [_unique_offset(self._bytes, _F64.pack(m), msgtype) for m in markers]
        marker_stamp = _STAMP.pack(*stamp_fields(_MARKER_STAMP_NS))
        self._stamp_at = (
            _unique_offset(self._bytes, marker_stamp, msgtype)
            if self._bytes.count(marker_stamp)
            else None  # not a stamped message
        )

    def encode(self, stamp_ns: int, values: Sequence[float]) -> bytes:
        """The message's CDR bytes, as `encode(build(stamp_ns, values))` gives them."""
        if len(values) != len(self._value_at):
            raise EncodeError(
                f"{self._msgtype}: {len(self._value_at)} values expected, got {len(values)}"
            )
        buffer = bytearray(self._bytes)
        if self._stamp_at is not None:
            # Range-checked as the typestore's path is.
            _STAMP.pack_into(buffer, self._stamp_at, *stamp_fields(stamp_ns))
        for offset, value in zip(self._value_at, values, strict=True):
            _F64.pack_into(buffer, offset, float(value))
        return bytes(buffer)


def _unique_offset(data: bytes, marker: bytes, msgtype: str) -> int:
    offset = data.find(marker)
    if offset < 0 or data.find(marker, offset + 1) >= 0:
        raise EncodeError(f"{msgtype}: cannot place a value in its template (marker not unique)")
    return offset


class CommandEncoder:
    """CDR of one step's base twist and arm command, for a fixed frame, joints and period."""

    def __init__(
        self,
        twist_type: str,
        arm_type: str,
        base_frame: str,
        arm_joints: tuple[str, ...],
        period_ns: int,
    ) -> None:
        self.twist_type, self.arm_type, self.arm_joints = twist_type, arm_type, arm_joints

        def build_twist(stamp_ns: int, values: Sequence[float]) -> Any:
            velocity = BaseVelocity(*values)
            if twist_type == TWIST_STAMPED:
                return twist_stamped(velocity, stamp_ns, base_frame)
            return twist(velocity)

        def build_arm(stamp_ns: int, values: Sequence[float]) -> Any:
            if arm_type == JOINT_TRAJECTORY:
                target = ArmTarget(arm_joints, np.asarray(values, np.float64))
                return joint_trajectory(target, stamp_ns, base_frame, period_ns)
            return float64_multi_array(values)

        self._twist = CommandTemplate(build_twist, twist_type, 3)
        self._arm = CommandTemplate(build_arm, arm_type, len(arm_joints)) if arm_joints else None

    def base(self, velocity: BaseVelocity, stamp_ns: int) -> bytes:
        values = (velocity.linear_x, velocity.linear_y, velocity.angular_z)
        return self._twist.encode(stamp_ns, values)

    def arm(self, target: ArmTarget, stamp_ns: int) -> bytes:
        if self._arm is None or target.names != self.arm_joints:
            raise EncodeError(
                f"arm command for {list(target.names)}, this encoder is for {list(self.arm_joints)}"
            )
        return self._arm.encode(stamp_ns, target.positions.tolist())


class MaskImageEncoder:
    """mono8 Image CDR of (H, W) 0/1 masks, written as 0/255: the bytes `encode(mask_to_image(
    mask * 255, stamp_ns, frame_id), IMAGE)` gives, from a template of the size and frame.

    A camera's size and frame do not change: one template is kept, made anew when they do (a
    stream of odd frame ids cannot grow it).
    """

    def __init__(self) -> None:
        self._key: tuple[int, int, str] | None = None
        self._template: tuple[bytes, int, int] = (b"", 0, 0)

    def encode(self, mask01: npt.NDArray[np.uint8], stamp_ns: int, frame_id: str) -> bytes:
        if mask01.dtype != np.uint8 or mask01.ndim != 2:
            raise EncodeError(
                f"a mask image needs an (H, W) uint8 mask, got {mask01.dtype} {mask01.shape}"
            )
        height, width = mask01.shape
        if self._key != (height, width, frame_id):
            self._template = self._make_template(height, width, frame_id)
            self._key = (height, width, frame_id)
        template, stamp_at, data_at = self._template
        buffer = bytearray(template)
        _STAMP.pack_into(buffer, stamp_at, *stamp_fields(stamp_ns))
        pixels = np.frombuffer(buffer, np.uint8, height * width, data_at).reshape(height, width)
        np.multiply(mask01, np.uint8(255), out=pixels)
        return bytes(buffer)

    @staticmethod
    def _make_template(height: int, width: int, frame_id: str) -> tuple[bytes, int, int]:
        image = mask_to_image(np.zeros((height, width), np.uint8), _MARKER_STAMP_NS, frame_id)
        data = encode(image, IMAGE)
        stamp_at = _unique_offset(data, _STAMP.pack(*stamp_fields(_MARKER_STAMP_NS)), IMAGE)
        return data, stamp_at, len(data) - height * width  # the pixels end the message
