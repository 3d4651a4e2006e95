"""sensor_msgs/Image read straight from its CDR bytes into pixels, without a message object.

Images are most of the stack's input bytes, and what a handler wants of one is its stamp, its
frame and a view of its pixels. Reading those fields here touches a fraction of the code and
objects that the generated deserializer and the message-based converters do, which matters
most where the step runs cold, right after a network. The checks are the same: the string
rules of rosbags' reader, then image_pixels' sizes; every failure is a DecodeError.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from rl_deploy.codec.header import ns_from_fields
from rl_deploy.codec.images import depth_from_pixels, image_pixels, rgb_from_pixels
from rl_deploy.codec.typestore import IMAGE, cdr_view, decode
from rl_deploy.depth import DepthImage
from rl_deploy.errors import DecodeError

# CDR aligns each primitive to its size, counted from the end of the 4-byte encapsulation.
_ORIGIN = 4
_TIME = {True: struct.Struct("<iI"), False: struct.Struct(">iI")}  # sec, nanosec
_U32 = {True: struct.Struct("<I"), False: struct.Struct(">I")}
_TWO_U32 = {True: struct.Struct("<II"), False: struct.Struct(">II")}  # height, width; step, size


@dataclass(frozen=True, slots=True)
class ImageFrame:
    """What the stack reads of an Image: its header's stamp and frame, and its pixels.

    `pixels` is what image_to_array gives: a view on the CDR bytes (read-only when they are
    `bytes`) with row padding as a stride, or a native-order copy of big-endian pixel data.
    """

    stamp_ns: int
    frame_id: str
    encoding: str
    pixels: npt.NDArray[Any]

    def rgb(self) -> npt.NDArray[np.uint8]:
        """(H, W, 3) uint8 RGB of a colour or mono frame (rgb8: the view itself)."""
        return rgb_from_pixels(self.encoding, self.pixels)

    def depth(self) -> DepthImage:
        """A 16UC1/mono16/32FC1 frame as DepthImage; other encodings are refused."""
        return depth_from_pixels(self.encoding, self.pixels)


def decode_image(data: bytes | bytearray | memoryview) -> ImageFrame:
    """CDR bytes of a sensor_msgs/Image → ImageFrame. Bytes after the message are ignored."""
    view = cdr_view(data, IMAGE)
    little = view[1] == 1
    u32 = _U32[little]
    try:
        sec, nanosec = _TIME[little].unpack_from(view, _ORIGIN)
        frame_id, pos = _string(view, _ORIGIN + 8, u32, "header.frame_id")
        pos = _aligned(pos)
        height, width = _TWO_U32[little].unpack_from(view, pos)
        encoding, pos = _string(view, pos + 8, u32, "encoding")
        is_bigendian = view[pos]
        pos = _aligned(pos + 1)
        step, size = _TWO_U32[little].unpack_from(view, pos)
    except (struct.error, IndexError) as err:
        raise DecodeError(f"cannot decode {IMAGE!r} from {len(view)} bytes: truncated") from err
    start = pos + 8
    if start + size > len(view):
        raise DecodeError(
            f"cannot decode {IMAGE!r}: data holds {size} bytes but only {len(view) - start} follow"
        )
    pixels = image_pixels(
        view[start : start + size],
        encoding,
        height=height,
        width=width,
        step=step,
        is_bigendian=is_bigendian > 0,
    )
    return ImageFrame(ns_from_fields(sec, nanosec), frame_id, encoding, pixels)


def decode_input(data: bytes | bytearray | memoryview, msgtype: str) -> Any:
    """A message as the stack's input handlers take it: an Image as ImageFrame, any other
    type as its decoded message."""
    return decode_image(data) if msgtype == IMAGE else decode(data, msgtype)


def _aligned(pos: int) -> int:
    return pos + (-(pos - _ORIGIN) & 3)


def _string(view: memoryview, pos: int, u32: struct.Struct, field: str) -> tuple[str, int]:
    """A CDR string at `pos` (4-aligned): its text and the position after it."""
    (length,) = u32.unpack_from(view, pos)
    end = pos + 4 + length
    if length < 1 or end > len(view) or view[end - 1] != 0:
        raise DecodeError(
            f"cannot decode {IMAGE!r}: {field} has an invalid length {length} or no terminator"
        )
    try:
        return str(view[pos + 4 : end - 1], "utf-8"), end
    except UnicodeDecodeError as err:
        raise DecodeError(f"cannot decode {IMAGE!r}: {field} is not UTF-8: {err}") from err
