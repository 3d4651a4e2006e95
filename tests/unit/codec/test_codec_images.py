"""Image and CompressedImage conversions: every encoding, padding, byte order, zero-copy."""

from __future__ import annotations

import array
import struct
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest

from rl_deploy import codec
from rl_deploy.codec import typestore as ts
from rl_deploy.errors import DecodeError

RNG = np.random.default_rng(7)


def _raw_image(pixels: np.ndarray, encoding: str, *, pad: int = 0, big_endian: bool = False) -> Any:
    """An Image built byte by byte (rows padded with 0xEE), independent of array_to_image."""
    order = ">" if big_endian else "<"
    typed = pixels.astype(pixels.dtype.newbyteorder(order))
    height, width = pixels.shape[:2]
    row_bytes = typed[0].nbytes if height else 0
    rows = [typed[row].tobytes() + b"\xee" * pad for row in range(height)]
    return ts.message_class(ts.IMAGE)(
        header=codec.make_header(5, "cam"),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=int(big_endian),
        step=row_bytes + pad,
        data=np.frombuffer(b"".join(rows), dtype=np.uint8),
    )


def _through_cdr(msg: Any) -> tuple[Any, bytes]:
    raw = codec.encode(msg, ts.IMAGE)
    return codec.decode(raw, ts.IMAGE), raw


CASES = [
    ("rgb8", np.uint8, 3),
    ("bgr8", np.uint8, 3),
    ("rgba8", np.uint8, 4),
    ("bgra8", np.uint8, 4),
    ("mono8", np.uint8, 1),
    ("8UC1", np.uint8, 1),
    ("mono16", np.uint16, 1),
    ("16UC1", np.uint16, 1),
    ("32FC1", np.float32, 1),
]


def _pixels(dtype: type, channels: int, height: int = 5, width: int = 7) -> np.ndarray:
    shape = (height, width) if channels == 1 else (height, width, channels)
    if dtype is np.float32:
        return RNG.uniform(0.1, 9.0, size=shape).astype(np.float32)
    return RNG.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True).astype(dtype)


@pytest.mark.parametrize("pad", [0, 3, 16])
@pytest.mark.parametrize(("encoding", "dtype", "channels"), CASES)
def test_every_encoding_decodes_as_a_view_honouring_step(encoding, dtype, channels, pad):
    pixels = _pixels(dtype, channels)
    decoded, raw = _through_cdr(_raw_image(pixels, encoding, pad=pad))
    image = codec.image_to_array(decoded)
    assert image.dtype == np.dtype(dtype)
    assert image.shape == pixels.shape
    np.testing.assert_array_equal(image, pixels)
    assert image.strides[0] == decoded.step  # padding stays a stride, no copy
    assert np.shares_memory(image, np.frombuffer(raw, dtype=np.uint8))
    assert not image.flags.writeable


@pytest.mark.parametrize("pad", [0, 2])
@pytest.mark.parametrize(("encoding", "dtype"), [("16UC1", np.uint16), ("32FC1", np.float32)])
def test_big_endian_data_is_byteswapped_into_native_order(encoding, dtype, pad):
    pixels = _pixels(dtype, 1)
    msg = _raw_image(pixels, encoding, pad=pad, big_endian=True)
    first_big_endian = pixels[:1, :1].astype(pixels.dtype.newbyteorder(">")).tobytes()
    assert bytes(msg.data[: pixels.itemsize]) == first_big_endian
    image = codec.image_to_array(_through_cdr(msg)[0])
    assert image.dtype.isnative
    np.testing.assert_array_equal(image, pixels)


def test_rclpy_style_message_with_array_array_data_is_read_without_copy():
    pixels = _pixels(np.uint16, 1, 3, 4)
    data = array.array("B", pixels.tobytes())  # rclpy stores uint8[] as array.array('B')
    msg = SimpleNamespace(encoding="16UC1", height=3, width=4, step=8, is_bigendian=0, data=data)
    image = codec.image_to_array(msg)
    np.testing.assert_array_equal(image, pixels)
    assert np.shares_memory(image, np.frombuffer(data, dtype=np.uint8))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"encoding": "yuv422"}, r"encoding 'yuv422' is not supported"),
        ({"step": 20}, r"step=20 is smaller than width\*bytes_per_pixel=7\*3"),
        ({"height": 6}, r"data has 105 bytes but step\*height=21\*6=126"),
        ({"height": 4}, r"data has 105 bytes but step\*height=21\*4=84"),
        ({"data": np.zeros(104, np.uint8)}, r"data has 104 bytes"),
        ({"data": np.zeros(105, np.int64)}, r"data must hold uint8, got int64"),
        ({"data": [300] * 105}, r"data is not a byte buffer"),
    ],
)
def test_inconsistent_images_raise_a_clear_decode_error(change, message):
    msg = _raw_image(_pixels(np.uint8, 3), "rgb8")
    for field, value in change.items():
        setattr(msg, field, value)
    with pytest.raises(DecodeError, match=message):
        codec.image_to_array(msg)


def test_empty_image_gives_an_empty_array():
    msg = codec.array_to_image(np.zeros((0, 4), np.uint16), "16UC1", 0, "cam")
    assert codec.image_to_array(_through_cdr(msg)[0]).shape == (0, 4)


def test_depth_in_millimetres_becomes_metres_and_zero_stays_invalid():
    depth_mm = np.array([[0, 1, 1000], [1234, 65535, 0]], dtype=np.uint16)
    for encoding in ("16UC1", "mono16"):
        msg = _raw_image(depth_mm, encoding, pad=2)
        depth_m = codec.depth_to_metres(_through_cdr(msg)[0])
        assert depth_m.dtype == np.float32
        expected = np.array([[0, 0.001, 1.0], [1.234, 65.535, 0]], dtype=np.float32)
        np.testing.assert_array_equal(depth_m, expected)
        assert depth_m.flags.writeable and depth_m.flags.c_contiguous


def test_float_depth_keeps_nan_zero_and_inf():
    depth = np.array([[0.0, np.nan, 1.5], [np.inf, 2.25, 0.3]], dtype=np.float32)
    depth_m = codec.depth_to_metres(_through_cdr(_raw_image(depth, "32FC1", pad=4))[0])
    np.testing.assert_array_equal(depth_m, depth)  # NaN compares equal position-wise here
    assert depth_m.flags.writeable


def test_depth_of_a_colour_image_is_refused():
    with pytest.raises(DecodeError, match="'rgb8' is not a depth encoding"):
        codec.depth_to_metres(_raw_image(_pixels(np.uint8, 3), "rgb8"))


def test_rgb_from_every_colour_and_mono_encoding():
    rgb = _pixels(np.uint8, 3)
    alpha = _pixels(np.uint8, 1)
    gray = _pixels(np.uint8, 1)
    sources = {
        "rgb8": rgb,
        "bgr8": rgb[..., ::-1],
        "rgba8": np.dstack([rgb, alpha]),
        "bgra8": np.dstack([rgb[..., ::-1], alpha]),
    }
    for encoding, pixels in sources.items():
        out = codec.rgb_from_image(_through_cdr(_raw_image(pixels, encoding, pad=1))[0])
        assert out.dtype == np.uint8 and out.shape == rgb.shape
        np.testing.assert_array_equal(out, rgb, err_msg=encoding)
    for encoding in ("mono8", "8UC1"):
        out = codec.rgb_from_image(_raw_image(gray, encoding))
        np.testing.assert_array_equal(out, np.repeat(gray[..., None], 3, axis=2))
    gray16 = gray.astype(np.uint16) * 256 + 77
    out = codec.rgb_from_image(_raw_image(gray16, "mono16"))
    np.testing.assert_array_equal(out, np.repeat(gray[..., None], 3, axis=2))


def test_rgb8_to_rgb_is_zero_copy():
    decoded, raw = _through_cdr(_raw_image(_pixels(np.uint8, 3), "rgb8", pad=5))
    assert np.shares_memory(codec.rgb_from_image(decoded), np.frombuffer(raw, np.uint8))


@pytest.mark.parametrize("encoding", ["16UC1", "32FC1"])
def test_rgb_from_depth_is_refused(encoding):
    dtype = np.uint16 if encoding == "16UC1" else np.float32
    with pytest.raises(DecodeError, match=f"{encoding}' cannot be shown as RGB"):
        codec.rgb_from_image(_raw_image(_pixels(dtype, 1), encoding))


def _compressed(data: bytes, fmt: str) -> Any:
    msg = ts.message_class(ts.COMPRESSED_IMAGE)(
        header=codec.make_header(9, "cam"),
        format=fmt,
        data=np.frombuffer(data, dtype=np.uint8),
    )
    raw = codec.encode(msg, ts.COMPRESSED_IMAGE)
    return codec.decode(raw, ts.COMPRESSED_IMAGE)


def _encoded(suffix: str, image: np.ndarray, *params: int) -> bytes:
    ok, buffer = cv2.imencode(suffix, image, list(params))
    assert ok
    return buffer.tobytes()


def test_png_in_image_transport_format_is_lossless_in_the_original_encoding():
    rgb = _pixels(np.uint8, 3, 24, 32)
    png = _encoded(".png", rgb[..., ::-1])  # image_transport compresses as bgr8
    for fmt, expected, encoding in [
        ("rgb8; png compressed bgr8", rgb, "rgb8"),
        ("bgr8; png compressed bgr8", rgb[..., ::-1], "bgr8"),
        ("png", rgb[..., ::-1], "bgr8"),  # a bare format gives what the file holds
    ]:
        image, got_encoding = codec.decode_compressed(_compressed(png, fmt))
        assert got_encoding == encoding
        np.testing.assert_array_equal(image, expected, err_msg=fmt)
    np.testing.assert_array_equal(codec.rgb_from_compressed(_compressed(png, "png")), rgb)


def test_rgba_png_and_mono_png():
    rgba = _pixels(np.uint8, 4, 8, 8)
    png = _encoded(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    image = codec.compressed_to_array(_compressed(png, "rgba8; png compressed bgra8"))
    np.testing.assert_array_equal(image, rgba)
    gray = _pixels(np.uint8, 1, 8, 8)
    image, encoding = codec.decode_compressed(_compressed(_encoded(".png", gray), "png"))
    assert encoding == "mono8"
    np.testing.assert_array_equal(image, gray)


def test_jpeg_decodes_close_to_the_source_in_rgb_order():
    ramp = np.linspace(0, 255, 64, dtype=np.float32)
    rgb = np.dstack(
        [np.tile(ramp, (48, 1)), np.tile(ramp[::-1], (48, 1)), np.full((48, 64), 90.0)]
    ).astype(np.uint8)
    jpeg = _encoded(".jpg", rgb[..., ::-1], cv2.IMWRITE_JPEG_QUALITY, 95)
    image = codec.compressed_to_array(_compressed(jpeg, "rgb8; jpeg compressed bgr8"))
    assert image.shape == rgb.shape and image.dtype == np.uint8
    assert np.abs(image.astype(int) - rgb.astype(int)).mean() < 3.0
    bare = codec.rgb_from_compressed(_compressed(jpeg, "jpeg"))
    np.testing.assert_array_equal(bare, image)


def test_sixteen_bit_png_keeps_depth_values():
    depth_mm = _pixels(np.uint16, 1, 10, 12)
    png = _encoded(".png", depth_mm)
    image, encoding = codec.decode_compressed(_compressed(png, "16UC1; png compressed mono16"))
    assert encoding == "16UC1" and image.dtype == np.uint16
    np.testing.assert_array_equal(image, depth_mm)


def test_compressed_depth_16uc1_and_32fc1():
    depth_mm = _pixels(np.uint16, 1, 6, 9)
    header = struct.pack("<iff", 0, 0.0, 0.0)
    msg = _compressed(header + _encoded(".png", depth_mm), "16UC1; compressedDepth png")
    image, encoding = codec.decode_compressed(msg)
    assert encoding == "16UC1"
    np.testing.assert_array_equal(image, depth_mm)

    # 32FC1 is stored as quantised inverse depth: value = quant_a / depth + quant_b.
    quant_a, quant_b = 100.0, 10.0
    depth_m = np.array([[0.5, 1.0, 2.0], [4.0, 5.0, 0.0]], dtype=np.float32)
    inverse = np.where(depth_m > 0, quant_a / np.where(depth_m > 0, depth_m, 1) + quant_b, 0)
    encoded = _encoded(".png", inverse.round().astype(np.uint16))
    msg = _compressed(struct.pack("<iff", 0, quant_a, quant_b) + encoded, "32FC1; compressedDepth")
    image, encoding = codec.decode_compressed(msg)
    assert encoding == "32FC1" and image.dtype == np.float32
    np.testing.assert_allclose(image[0], depth_m[0], rtol=1e-6)
    np.testing.assert_allclose(image[1, :2], depth_m[1, :2], rtol=1e-6)
    assert np.isnan(image[1, 2])


@pytest.mark.parametrize(
    ("data", "fmt", "message"),
    [
        (b"", "jpeg", "0 bytes are not a decodable image"),
        (b"\xff\xd8\xff garbage", "rgb8; jpeg compressed bgr8", "not a decodable image"),
        (b"\x00" * 8, "16UC1; compressedDepth png", "hold no image"),
        (b"\x00" * 40, "16UC1; compressedDepth rvl", "RVL depth is not supported"),
    ],
)
def test_broken_compressed_images_raise_decode_error(data, fmt, message):
    with pytest.raises(DecodeError, match=message):
        codec.compressed_to_array(_compressed(data, fmt))


def test_colour_png_labelled_as_depth_is_refused():
    png = _encoded(".png", _pixels(np.uint8, 3, 4, 4))
    with pytest.raises(DecodeError, match="cannot be given as '16UC1'"):
        codec.compressed_to_array(_compressed(png, "16UC1; png compressed mono16"))


@pytest.mark.parametrize(("encoding", "dtype", "channels"), CASES)
def test_array_to_image_round_trips_through_cdr(encoding, dtype, channels):
    pixels = _pixels(dtype, channels)
    msg = codec.array_to_image(pixels, encoding, 1_500_000_000, "camera_link")
    assert msg.encoding == encoding and msg.header.frame_id == "camera_link"
    assert codec.stamp_to_ns(msg.header.stamp) == 1_500_000_000
    assert msg.step == pixels.shape[1] * pixels.itemsize * channels
    decoded, raw = _through_cdr(msg)
    assert codec.encode(decoded, ts.IMAGE) == raw
    np.testing.assert_array_equal(codec.image_to_array(decoded), pixels)


def test_array_to_image_packs_strided_and_big_endian_arrays():
    pixels = _pixels(np.uint16, 1, 8, 10)
    strided = pixels[:, ::2]
    np.testing.assert_array_equal(
        codec.image_to_array(codec.array_to_image(strided, "16UC1", 0, "c")), strided
    )
    swapped = pixels.astype(">u2")
    np.testing.assert_array_equal(
        codec.image_to_array(codec.array_to_image(swapped, "16UC1", 0, "c")), pixels
    )
    single = codec.array_to_image(pixels[..., None], "mono16", 0, "c")
    assert (single.height, single.width) == (8, 10)


@pytest.mark.parametrize(
    ("values", "encoding", "message"),
    [
        (np.zeros((2, 2), np.float64), "32FC1", "needs float32, got float64"),
        (np.zeros((2, 2, 3), np.uint8), "mono8", r"needs shape \(H, W\)"),
        (np.zeros((2, 2), np.uint8), "rgb8", r"needs shape \(H, W, 3\)"),
        (np.zeros((2, 2), np.uint8), "nv12", "'nv12' is not supported"),
    ],
)
def test_array_to_image_rejects_mismatched_arrays(values, encoding, message):
    with pytest.raises(codec.EncodeError, match=message):
        codec.array_to_image(values, encoding, 0, "c")


def test_mask_to_image_is_mono8_with_the_values_unchanged():
    mask_u8 = (RNG.random((6, 9)) > 0.5).astype(np.uint8) * 255
    msg = codec.mask_to_image(mask_u8, 42, "camera_color_optical_frame")
    assert (msg.encoding, msg.height, msg.width, msg.step) == ("mono8", 6, 9, 9)
    decoded, _ = _through_cdr(msg)
    np.testing.assert_array_equal(codec.image_to_array(decoded), mask_u8)
    with pytest.raises(codec.EncodeError, match="uint8 mask"):
        codec.mask_to_image(mask_u8 > 0, 42, "c")
