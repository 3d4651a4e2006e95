"""vision_msgs/Detection2DArray CDR written field by field, the bytes the typestore gives.

A frame's detections differ only in a class name, a score and a box; the header, the identity
pose and the zero covariance of every hypothesis are the same. Building the rosbags message and
walking its generated serializer cost 0.16 ms a frame in the perception step, writing the
bytes 0.05 ms.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from rl_deploy.codec.header import stamp_fields
from rl_deploy.codec.typestore import EncodeError

_LITTLE = sys.byteorder == "little"
_ORDER = "<" if _LITTLE else ">"  # the typestore writes the host's byte order
_ENCAPSULATION = bytes((0, int(_LITTLE), 0, 0))  # CDR, little or big endian
_STAMP = struct.Struct(f"{_ORDER}iI")
_U32 = struct.Struct(f"{_ORDER}I")
_F64 = struct.Struct(f"{_ORDER}d")
_BOX = struct.Struct(f"{_ORDER}5d")  # centre x, y, theta, size x, y
_ONE = _U32.pack(1)  # each detection has one hypothesis
# PoseWithCovariance of a 2-D detection: position 0, orientation identity, covariance 0.
_IDENTITY_POSE = struct.pack(f"{_ORDER}7d", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0) + bytes(36 * 8)
_POSE_AND_BOX = _F64.size + len(_IDENTITY_POSE) + _BOX.size  # score, pose, box: float64s
_PADDING = tuple(bytes(n) for n in range(8))


@lru_cache(maxsize=1024)
def _string(text: str) -> bytes:
    """A CDR string: uint32 length with the terminating NUL, UTF-8 bytes, NUL."""
    data = text.encode("utf-8")
    return _U32.pack(len(data) + 1) + data + b"\x00"


def detection2d_array(
    stamp_ns: int,
    frame_id: str,
    class_ids: Sequence[str],
    scores: npt.NDArray[np.floating],
    boxes_xyxy: npt.NDArray[np.floating],
) -> bytes:
    """Detection2DArray CDR: per detection the array's header, one hypothesis (class id and
    score, identity pose), the box's centre and size, and its index as `id`."""
    count = len(class_ids)
    if len(scores) != count or boxes_xyxy.shape != (count, 4):
        raise EncodeError(
            f"Detection2DArray: {count} class ids, {len(scores)} scores and boxes of shape "
            f"{boxes_xyxy.shape} do not describe the same detections"
        )
    header = _STAMP.pack(*stamp_fields(stamp_ns)) + _string(frame_id)
    boxes = np.asarray(boxes_xyxy, np.float64)
    centres, sizes = (boxes[:, :2] + boxes[:, 2:]) / 2, boxes[:, 2:] - boxes[:, :2]
    # Offsets count from the payload's start (after the encapsulation), as CDR aligns them.
    parts = [_ENCAPSULATION, header, _PADDING[-len(header) % 4], _U32.pack(count)]
    at = len(header) + -len(header) % 4 + 4
    for index in range(count):
        padding = _PADDING[-at % 4]  # a detection starts 4-aligned (its stamp)
        head = _detection_head(header, class_ids[index], (at + len(padding)) % 8)
        tail = _string(str(index))
        parts += (padding, head, _F64.pack(float(scores[index])), _IDENTITY_POSE)
        cx, cy = centres[index]
        sx, sy = sizes[index]
        parts += (_BOX.pack(cx, cy, 0.0, sx, sy), tail)
        at += len(padding) + len(head) + _POSE_AND_BOX + len(tail)
    return b"".join(parts)


def _detection_head(header: bytes, class_id: str, phase: int) -> bytes:
    """A detection's bytes up to its score, for a start `phase` (0 or 4) modulo 8: header,
    padding to 4, one hypothesis, the class id, padding to 8."""
    head = header + _PADDING[-len(header) % 4] + _ONE + _string(class_id)
    return head + _PADDING[-(phase + len(head)) % 8]
