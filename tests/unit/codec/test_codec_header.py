"""Stamp, duration and header conversions."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from rl_deploy import codec
from rl_deploy.codec import typestore as ts
from rl_deploy.errors import DecodeError


@pytest.mark.parametrize("stamp_ns", [0, 1, 999_999_999, 1_000_000_000, 1_700_000_000_123_456_789])
def test_stamp_round_trip(stamp_ns):
    stamp = codec.ns_to_stamp(stamp_ns)
    assert stamp.sec == stamp_ns // 1_000_000_000
    assert stamp.nanosec == stamp_ns % 1_000_000_000
    assert codec.stamp_to_ns(stamp) == stamp_ns


def test_negative_times_keep_nanosec_positive():
    stamp = codec.ns_to_stamp(-1)
    assert (stamp.sec, stamp.nanosec) == (-1, 999_999_999)
    assert codec.stamp_to_ns(stamp) == -1
    duration = codec.ns_to_duration(-1_500_000_000)
    assert (duration.sec, duration.nanosec) == (-2, 500_000_000)
    assert codec.duration_to_ns(duration) == -1_500_000_000


def test_out_of_range_values_are_refused():
    with pytest.raises(codec.EncodeError, match="int32"):
        codec.ns_to_stamp(2**31 * 1_000_000_000)
    with pytest.raises(DecodeError, match="nanosec=1000000000"):
        codec.stamp_to_ns(SimpleNamespace(sec=3, nanosec=1_000_000_000))


def test_make_header_round_trips_through_cdr():
    header = codec.make_header(12_000_000_345, "base_link")
    raw = codec.encode(header, ts.HEADER)
    decoded = codec.decode(raw, ts.HEADER)
    assert decoded.frame_id == "base_link"
    assert codec.stamp_to_ns(decoded.stamp) == 12_000_000_345
    assert codec.encode(decoded, ts.HEADER) == raw
