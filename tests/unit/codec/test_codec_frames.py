"""decode_image: an Image read straight from CDR gives what the message path gives, or refuses
what it refuses, with the field named."""

from __future__ import annotations

import re
import struct
from typing import Any

import numpy as np
import pytest
from test_codec_images import CASES, _pixels, _raw_image

from rl_deploy import codec
from rl_deploy.codec import typestore as ts
from rl_deploy.errors import DecodeError

STAMP_NS = 1_700_000_000_123_456_789


def _cdr(msg: Any, *, little_endian: bool = True) -> bytes:
    return bytes(ts.TYPESTORE.serialize_cdr(msg, ts.IMAGE, little_endian=little_endian))


def _message_path(data: bytes) -> tuple[int, str, str, np.ndarray]:
    msg = codec.decode(data, ts.IMAGE)
    pixels = codec.image_to_array(msg)
    return codec.stamp_to_ns(msg.header.stamp), msg.header.frame_id, msg.encoding, pixels


def _image(frame_id: str = "camera_color_optical_frame", encoding: str = "rgb8") -> Any:
    msg = codec.array_to_image(_pixels(np.uint8, 3, 4, 6), "rgb8", STAMP_NS, frame_id)
    msg.encoding = encoding
    return msg


# (CDR little endian, pixel data big endian): the two byte orders are independent fields.
ORDERS = [(True, False), (True, True), (False, False), (False, True)]


@pytest.mark.parametrize("orders", ORDERS, ids=["le", "le-data-be", "be", "be-data-be"])
@pytest.mark.parametrize("pad", [0, 5])
@pytest.mark.parametrize(("encoding", "dtype", "channels"), CASES)
def test_every_encoding_reads_as_the_message_path_does(encoding, dtype, channels, pad, orders):
    little_endian, big_endian_data = orders
    pixels = _pixels(dtype, channels)
    msg = _raw_image(pixels, encoding, pad=pad, big_endian=big_endian_data)
    data = _cdr(msg, little_endian=little_endian)
    frame = codec.decode_image(data)
    stamp_ns, frame_id, expected_encoding, expected = _message_path(data)
    assert (frame.stamp_ns, frame.frame_id, frame.encoding) == (5, "cam", encoding)
    assert (stamp_ns, frame_id, expected_encoding) == (5, "cam", encoding)
    assert frame.pixels.dtype == expected.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(frame.pixels, expected)
    np.testing.assert_array_equal(frame.pixels, pixels)


def test_pixels_are_a_read_only_view_on_the_bytes():
    data = codec.encode(_image(), ts.IMAGE)
    frame = codec.decode_image(data)
    assert np.shares_memory(frame.pixels, np.frombuffer(data, np.uint8))
    assert not frame.pixels.flags.writeable


def test_strings_of_any_length_and_script_keep_the_fields_aligned():
    for frame_id in ("", "c", "cam", "came", "kamera_für_tiefe", "相机"):
        data = codec.encode(_image(frame_id), ts.IMAGE)
        frame = codec.decode_image(data)
        assert frame.frame_id == frame_id
        assert frame.stamp_ns == STAMP_NS
        np.testing.assert_array_equal(frame.pixels, _message_path(data)[3])


def test_bytes_after_the_message_are_ignored_as_rclpy_pads_them():
    data = codec.encode(_image(), ts.IMAGE)
    padded = codec.decode_image(data + b"\x00" * 7)
    np.testing.assert_array_equal(padded.pixels, codec.decode_image(data).pixels)


def test_every_truncation_is_refused_as_the_message_path_refuses_it():
    data = codec.encode(_image(), ts.IMAGE)
    for end in range(len(data)):
        with pytest.raises(DecodeError):
            codec.decode_image(data[:end])
        with pytest.raises(DecodeError):
            _message_path(data[:end])


def _with_u32(data: bytes, at: int, value: int) -> bytes:
    return data[:at] + struct.pack("<I", value) + data[at + 4 :]


FRAME_ID_LENGTH_AT = 12  # encapsulation 4, stamp 8


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda d: b"\x01\x00" + d[2:], "not a CDR encapsulation header"),
        (lambda d: _with_u32(d, FRAME_ID_LENGTH_AT, 0), "header.frame_id has an invalid length 0"),
        (lambda d: _with_u32(d, FRAME_ID_LENGTH_AT, 1 << 30), "header.frame_id has an invalid"),
        (lambda d: d[:16] + b"\xff" + d[17:], "header.frame_id is not UTF-8"),
        (lambda d: d[:19] + b"x" + d[20:], "header.frame_id has an invalid length 4 or no term"),
        (lambda d: _with_u32(d, 8, 10**9), "nanosec=1000000000"),
        (lambda d: _with_u32(d, 20, 5), "step*height=18*5=90"),
        (lambda d: _with_u32(d, 44, 1000), "data holds 1000 bytes but only 72 follow"),
        (lambda d: d[:40], "truncated"),
    ],
)
def test_corrupt_fields_are_named(corrupt, message):
    data = codec.encode(_image("cam"), ts.IMAGE)
    # The layout these offsets assume: frame_id "cam" (length 4 at 12), height at 20, width 24,
    # encoding "rgb8" at 28, is_bigendian 37, step 40, data length 44, pixels from 48.
    assert struct.unpack_from("<I", data, 20)[0] == 4
    assert struct.unpack_from("<I", data, 44)[0] == 72
    with pytest.raises(DecodeError, match=re.escape(message)):
        codec.decode_image(corrupt(data))
    with pytest.raises(DecodeError):  # and the message path refuses it too
        _message_path(corrupt(data))


def test_an_unsupported_encoding_is_named():
    data = codec.encode(_image(encoding="yuv422"), ts.IMAGE)
    with pytest.raises(DecodeError, match="encoding 'yuv422' is not supported"):
        codec.decode_image(data)


def test_frames_show_as_rgb_and_depth_as_the_message_converters_do():
    colour = codec.array_to_image(_pixels(np.uint8, 3), "bgr8", STAMP_NS, "cam")
    data = codec.encode(colour, ts.IMAGE)
    np.testing.assert_array_equal(codec.decode_image(data).rgb(), codec.rgb_from_image(colour))
    with pytest.raises(DecodeError, match="not a depth encoding"):
        codec.decode_image(data).depth()
    millimetres = codec.array_to_image(_pixels(np.uint16, 1), "16UC1", STAMP_NS, "cam")
    data = codec.encode(millimetres, ts.IMAGE)
    np.testing.assert_array_equal(
        codec.decode_image(data).depth().metres, codec.depth_to_metres(millimetres)
    )
    with pytest.raises(DecodeError, match="cannot be shown as RGB"):
        codec.decode_image(data).rgb()
    empty = codec.array_to_image(np.zeros((0, 4, 3), np.uint8), "rgb8", STAMP_NS, "cam")
    with pytest.raises(DecodeError, match="has no pixels: 4x0"):
        codec.decode_image(codec.encode(empty, ts.IMAGE)).rgb()


@pytest.mark.parametrize("encoding", ["16UC1", "32FC1"])
@pytest.mark.parametrize("shape", [(0, 0), (0, 4), (3, 0)])
def test_depth_without_pixels_is_a_decode_error(encoding, shape):
    dtype = np.uint16 if encoding == "16UC1" else np.float32
    empty = codec.array_to_image(np.zeros(shape, dtype), encoding, STAMP_NS, "cam")
    no_pixels = f"has no pixels: {shape[1]}x{shape[0]}"
    with pytest.raises(DecodeError, match=no_pixels):
        codec.decode_image(codec.encode(empty, ts.IMAGE)).depth()
    with pytest.raises(DecodeError, match=no_pixels):
        codec.depth_image(empty)


def test_handlers_take_images_as_frames_and_other_types_as_messages():
    image = codec.decode_input(codec.encode(_image(), ts.IMAGE), ts.IMAGE)
    assert isinstance(image, codec.ImageFrame)
    flag = codec.message_class(ts.BOOL)(data=True)
    decoded = codec.decode_input(codec.encode(flag, ts.BOOL), ts.BOOL)
    assert decoded.data is True
