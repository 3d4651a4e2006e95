"""Conversions between ROS time stamps / headers and integer nanoseconds.

The core keeps every time as `stamp_ns: int` (nanoseconds since the epoch or since sim start).
"""

from __future__ import annotations

from typing import Any

from rl_deploy.codec.typestore import DURATION, HEADER, TIME, EncodeError, message_class
from rl_deploy.errors import DecodeError

_NS_PER_S = 1_000_000_000
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


def stamp_to_ns(stamp: Any) -> int:
    """builtin_interfaces/Time (rosbags or rclpy) → integer nanoseconds."""
    return ns_from_fields(int(stamp.sec), int(stamp.nanosec))


def ns_from_fields(sec: int, nanosec: int) -> int:
    """A Time's (sec, nanosec) → integer nanoseconds; the inverse of stamp_fields."""
    if not 0 <= nanosec < _NS_PER_S:
        raise DecodeError(f"stamp nanosec={nanosec} is outside [0, 1e9) (sec={sec})")
    return sec * _NS_PER_S + nanosec


def stamp_fields(stamp_ns: int) -> tuple[int, int]:
    """Integer nanoseconds → (sec, nanosec) of a Time; floor division keeps nanosec >= 0."""
    sec, nanosec = divmod(int(stamp_ns), _NS_PER_S)
    if not _INT32_MIN <= sec <= _INT32_MAX:
        raise EncodeError(f"stamp_ns={stamp_ns} does not fit builtin_interfaces/Time (int32 sec)")
    return sec, nanosec


def ns_to_stamp(stamp_ns: int) -> Any:
    """Integer nanoseconds → builtin_interfaces/Time."""
    sec, nanosec = stamp_fields(stamp_ns)
    return message_class(TIME)(sec=sec, nanosec=nanosec)


def make_header(stamp_ns: int, frame_id: str) -> Any:
    """std_msgs/Header with the given stamp and frame."""
    return message_class(HEADER)(stamp=ns_to_stamp(stamp_ns), frame_id=frame_id)


def duration_to_ns(duration: Any) -> int:
    """builtin_interfaces/Duration → integer nanoseconds (may be negative)."""
    sec, nanosec = int(duration.sec), int(duration.nanosec)
    if not 0 <= nanosec < _NS_PER_S:
        raise DecodeError(f"duration nanosec={nanosec} is outside [0, 1e9) (sec={sec})")
    return sec * _NS_PER_S + nanosec


def ns_to_duration(duration_ns: int) -> Any:
    """Integer nanoseconds → builtin_interfaces/Duration (nanosec >= 0, as rclpy writes it)."""
    sec, nanosec = divmod(int(duration_ns), _NS_PER_S)
    if not _INT32_MIN <= sec <= _INT32_MAX:
        raise EncodeError(f"duration_ns={duration_ns} does not fit builtin_interfaces/Duration")
    return message_class(DURATION)(sec=sec, nanosec=nanosec)
