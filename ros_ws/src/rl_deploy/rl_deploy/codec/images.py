"""sensor_msgs Image / CompressedImage ⇄ numpy arrays, without cv_bridge.

Pure functions over field names: they take rosbags dataclasses and rclpy messages alike.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from rl_deploy.codec.header import make_header
from rl_deploy.codec.typestore import IMAGE, EncodeError, message_class
from rl_deploy.depth import DepthImage
from rl_deploy.errors import DecodeError


@dataclass(frozen=True)
class _Layout:
    dtype: np.dtype[Any]  # element type in native byte order
    channels: int


_U8, _U16, _F32 = np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32)
_LAYOUTS: dict[str, _Layout] = {
    "rgb8": _Layout(_U8, 3),
    "bgr8": _Layout(_U8, 3),
    "rgba8": _Layout(_U8, 4),
    "bgra8": _Layout(_U8, 4),
    "mono8": _Layout(_U8, 1),
    "8UC1": _Layout(_U8, 1),
    "mono16": _Layout(_U16, 1),
    "16UC1": _Layout(_U16, 1),
    "32FC1": _Layout(_F32, 1),
}
SUPPORTED_ENCODINGS: frozenset[str] = frozenset(_LAYOUTS)
DEPTH_ENCODINGS: frozenset[str] = frozenset({"16UC1", "mono16", "32FC1"})

# How to reach an RGB image from each colour/mono encoding (None: already RGB).
_TO_RGB: dict[str, int | None] = {
    "rgb8": None,
    "bgr8": cv2.COLOR_BGR2RGB,
    "rgba8": cv2.COLOR_RGBA2RGB,
    "bgra8": cv2.COLOR_BGRA2RGB,
    "mono8": cv2.COLOR_GRAY2RGB,
    "8UC1": cv2.COLOR_GRAY2RGB,
    "mono16": cv2.COLOR_GRAY2RGB,
}

# cv2.imdecode yields gray (1 channel), BGR (3) or BGRA (4); this maps it to the wanted encoding.
_FROM_DECODED: dict[tuple[int, str], int | None] = {
    (1, "mono8"): None,
    (1, "8UC1"): None,
    (1, "mono16"): None,
    (1, "16UC1"): None,
    (1, "rgb8"): cv2.COLOR_GRAY2RGB,
    (1, "bgr8"): cv2.COLOR_GRAY2BGR,
    (1, "rgba8"): cv2.COLOR_GRAY2RGBA,
    (1, "bgra8"): cv2.COLOR_GRAY2BGRA,
    (3, "rgb8"): cv2.COLOR_BGR2RGB,
    (3, "bgr8"): None,
    (3, "rgba8"): cv2.COLOR_BGR2RGBA,
    (3, "bgra8"): cv2.COLOR_BGR2BGRA,
    (3, "mono8"): cv2.COLOR_BGR2GRAY,
    (4, "rgb8"): cv2.COLOR_BGRA2RGB,
    (4, "bgr8"): cv2.COLOR_BGRA2BGR,
    (4, "rgba8"): cv2.COLOR_BGRA2RGBA,
    (4, "bgra8"): None,
    (4, "mono8"): cv2.COLOR_BGRA2GRAY,
}
_DEFAULT_DECODED_ENCODING = {1: "mono8", 3: "bgr8", 4: "bgra8"}

# compressed_depth_image_transport prefixes the PNG with {int32 format; float32 depthParam[2]}.
_DEPTH_CONFIG = struct.Struct("<iff")


def _byte_buffer(data: Any, what: str) -> npt.NDArray[np.uint8]:
    """The `data` field as a 1-D uint8 array, sharing memory whenever the source allows."""
    try:
        if isinstance(data, np.ndarray):
            if data.dtype != _U8:
                raise DecodeError(f"{what}.data must hold uint8, got {data.dtype}")
            return data if data.ndim == 1 else np.ascontiguousarray(data).reshape(-1)
        try:
            return np.frombuffer(data, dtype=np.uint8)  # bytes, memoryview, array.array('B')
        except TypeError:
            return np.asarray(data, dtype=np.uint8)  # a plain list of ints
    except (TypeError, ValueError, OverflowError) as err:
        raise DecodeError(f"{what}.data is not a byte buffer: {err}") from err


def _layout(encoding: str, what: str) -> _Layout:
    try:
        return _LAYOUTS[encoding]
    except KeyError as err:
        supported = ", ".join(sorted(_LAYOUTS))
        raise DecodeError(
            f"{what} encoding {encoding!r} is not supported (supported: {supported})"
        ) from err


def image_to_array(msg: Any) -> npt.NDArray[Any]:
    """Image → (H, W, C) or (H, W) array in native byte order.

    A read-only view on the message buffer (row padding kept as a stride) unless the data is
    big-endian, which is byteswapped into a new array. uint8 for 8-bit encodings, uint16 for
    mono16/16UC1, float32 for 32FC1.
    """
    return image_pixels(
        _byte_buffer(msg.data, "Image"),
        str(msg.encoding),
        height=int(msg.height),
        width=int(msg.width),
        step=int(msg.step),
        is_bigendian=bool(msg.is_bigendian),
    )


def image_pixels(
    buffer: npt.NDArray[np.uint8] | memoryview,
    encoding: str,
    *,
    height: int,
    width: int,
    step: int,
    is_bigendian: bool,
) -> npt.NDArray[Any]:
    """An Image's fields → its pixels, as image_to_array gives them; every size checked."""
    layout = _layout(encoding, "Image")
    pixel_bytes = layout.dtype.itemsize * layout.channels
    if height < 0 or width < 0:
        raise DecodeError(f"Image has a negative size: height={height}, width={width}")
    if step < width * pixel_bytes:
        raise DecodeError(
            f"Image step={step} is smaller than width*bytes_per_pixel={width}*{pixel_bytes} "
            f"for encoding {encoding!r}"
        )
    if len(buffer) != step * height:
        raise DecodeError(
            f"Image data has {len(buffer)} bytes but step*height={step}*{height}="
            f"{step * height} ({encoding!r}, width={width})"
        )
    dtype = layout.dtype.newbyteorder(">" if is_bigendian else "<")
    if layout.channels == 1:
        shape: tuple[int, ...] = (height, width)
        strides: tuple[int, ...] = (step, pixel_bytes)
    else:
        shape = (height, width, layout.channels)
        strides = (step, pixel_bytes, layout.dtype.itemsize)
    array: npt.NDArray[Any] = np.ndarray(shape, dtype=dtype, buffer=buffer, strides=strides)
    if not dtype.isnative:
        array = array.astype(layout.dtype)
    return array


def depth_image(msg: Any) -> DepthImage:
    """Depth Image → DepthImage: a view of 16UC1/mono16 millimetres or 32FC1 metres."""
    return depth_from_pixels(str(msg.encoding), image_to_array(msg))


def depth_from_pixels(encoding: str, pixels: npt.NDArray[Any]) -> DepthImage:
    """image_to_array's pixels of a depth encoding → DepthImage; other encodings refused."""
    if encoding not in DEPTH_ENCODINGS:
        raise DecodeError(
            f"Image encoding {encoding!r} is not a depth encoding ({sorted(DEPTH_ENCODINGS)})"
        )
    if pixels.size == 0:  # as rgb_from_pixels: no reading to judge or feed a policy
        width, height = (pixels.shape[1], pixels.shape[0]) if pixels.ndim >= 2 else (0, 0)
        raise DecodeError(f"Image ({encoding!r}) has no pixels: {width}x{height}")
    return DepthImage(pixels)


def depth_to_metres(msg: Any) -> npt.NDArray[np.float32]:
    """Depth Image → new (H, W) float32 array in metres.

    16UC1/mono16 hold millimetres; 32FC1 holds metres. Invalid readings keep their meaning:
    0 stays 0, NaN stays NaN, inf stays inf.
    """
    return depth_image(msg).metres


def rgb_from_image(msg: Any) -> npt.NDArray[np.uint8]:
    """Colour or mono Image → (H, W, 3) uint8 in RGB order.

    rgb8 comes back as the read-only view of image_to_array; other encodings as new arrays.
    """
    encoding = str(msg.encoding)
    _check_shows_as_rgb(encoding)  # first: a depth image must not fail on its size instead
    return rgb_from_pixels(encoding, image_to_array(msg))


def rgb_from_pixels(encoding: str, pixels: npt.NDArray[Any]) -> npt.NDArray[np.uint8]:
    """image_to_array's pixels of a colour or mono encoding → (H, W, 3) uint8 RGB."""
    _check_shows_as_rgb(encoding)
    if pixels.size == 0:  # OpenCV asserts on empty input; nothing to show or detect in anyway
        width, height = (pixels.shape[1], pixels.shape[0]) if pixels.ndim >= 2 else (0, 0)
        raise DecodeError(f"Image ({encoding!r}) has no pixels: {width}x{height}")
    if encoding == "mono16":
        pixels = (pixels >> 8).astype(np.uint8)  # keep the 8 most significant bits
    code = _TO_RGB[encoding]
    if code is None:
        return pixels
    return np.asarray(cv2.cvtColor(pixels, code), dtype=np.uint8)


def _check_shows_as_rgb(encoding: str) -> None:
    if encoding not in _TO_RGB:
        raise DecodeError(
            f"Image encoding {encoding!r} cannot be shown as RGB (colour/mono: {sorted(_TO_RGB)})"
        )


def decode_compressed(msg: Any) -> tuple[npt.NDArray[Any], str]:
    """CompressedImage → (array, encoding of that array).

    `format` as image_transport writes it: "rgb8; jpeg compressed bgr8" gives the original
    encoding (rgb8) before the ';'. A bare "jpeg"/"png" gives what the file holds: mono8, mono16,
    bgr8 or bgra8. "16UC1; compressedDepth png" / "32FC1; compressedDepth png" are depth.
    """
    fmt = str(msg.format).strip()
    data = _byte_buffer(msg.data, "CompressedImage")
    original, separator, _ = fmt.partition(";")
    original = original.strip() if separator else ""
    if "compresseddepth" in fmt.lower():
        return _decode_compressed_depth(data, original or "16UC1", fmt)
    decoded = _imdecode(data, fmt)
    channels = 1 if decoded.ndim == 2 else int(decoded.shape[2])
    if not original:
        if decoded.dtype == _U16 and channels == 1:
            return decoded, "mono16"
        original = _DEFAULT_DECODED_ENCODING.get(channels, "")
    layout = _layout(original, f"CompressedImage (format {fmt!r})")
    if (channels, original) not in _FROM_DECODED or decoded.dtype != layout.dtype:
        raise DecodeError(
            f"CompressedImage format {fmt!r}: decoded {channels}-channel {decoded.dtype} image "
            f"cannot be given as {original!r}"
        )
    code = _FROM_DECODED[(channels, original)]
    image = decoded if code is None else np.asarray(cv2.cvtColor(decoded, code))
    return image, original


def compressed_to_array(msg: Any) -> npt.NDArray[Any]:
    """CompressedImage → array in the encoding decode_compressed names (see there)."""
    return decode_compressed(msg)[0]


def rgb_from_compressed(msg: Any) -> npt.NDArray[np.uint8]:
    """Colour or mono CompressedImage → (H, W, 3) uint8 RGB."""
    image, encoding = decode_compressed(msg)
    if encoding not in _TO_RGB:
        raise DecodeError(f"CompressedImage format {msg.format!r} is depth, not colour")
    if encoding == "mono16":
        image = (image >> 8).astype(np.uint8)
    code = _TO_RGB[encoding]
    return image if code is None else np.asarray(cv2.cvtColor(image, code), dtype=np.uint8)


def _imdecode(data: npt.NDArray[np.uint8], fmt: str) -> npt.NDArray[Any]:
    try:
        decoded = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    except cv2.error as err:
        raise DecodeError(f"CompressedImage format {fmt!r}: OpenCV failed: {err}") from err
    if decoded is None:
        raise DecodeError(
            f"CompressedImage format {fmt!r}: {data.size} bytes are not a decodable image"
        )
    return np.asarray(decoded)


def _decode_compressed_depth(
    data: npt.NDArray[np.uint8], encoding: str, fmt: str
) -> tuple[npt.NDArray[Any], str]:
    if "rvl" in fmt.lower():
        raise DecodeError(f"CompressedImage format {fmt!r}: RVL depth is not supported, use png")
    if data.size <= _DEPTH_CONFIG.size:
        raise DecodeError(f"CompressedImage format {fmt!r}: {data.size} bytes hold no image")
    _, quant_a, quant_b = _DEPTH_CONFIG.unpack(data[: _DEPTH_CONFIG.size].tobytes())
    decoded = _imdecode(data[_DEPTH_CONFIG.size :], fmt)
    if decoded.dtype != _U16 or decoded.ndim != 2:
        raise DecodeError(
            f"CompressedImage format {fmt!r}: expected a 16-bit single-channel png, "
            f"got {decoded.dtype} with shape {decoded.shape}"
        )
    if encoding in ("16UC1", "mono16"):
        return decoded, encoding
    if encoding != "32FC1":
        raise DecodeError(f"CompressedImage format {fmt!r}: depth encoding must be 16UC1 or 32FC1")
    # The encoder stores quantised inverse depth; 0 marks an invalid pixel.
    inverse = decoded.astype(np.float32)
    with np.errstate(divide="ignore"):
        depth_m = np.float32(quant_a) / (inverse - np.float32(quant_b))
    depth_m[decoded == 0] = np.nan
    return depth_m.astype(np.float32, copy=False), "32FC1"


def array_to_image(array: npt.ArrayLike, encoding: str, stamp_ns: int, frame_id: str) -> Any:
    """(H, W, C) / (H, W) array → sensor_msgs/Image with rows packed (step = width*bpp)."""
    try:
        layout = _layout(encoding, "array_to_image")
    except DecodeError as err:
        raise EncodeError(str(err)) from err
    values = np.asarray(array)
    if values.dtype.newbyteorder("=") != layout.dtype:
        raise EncodeError(
            f"array_to_image: encoding {encoding!r} needs {layout.dtype}, got {values.dtype}"
        )
    if layout.channels == 1 and values.ndim == 3 and values.shape[2] == 1:
        values = values[:, :, 0]
    expected_ndim = 2 if layout.channels == 1 else 3
    if values.ndim != expected_ndim or (expected_ndim == 3 and values.shape[2] != layout.channels):
        raise EncodeError(
            f"array_to_image: encoding {encoding!r} needs shape (H, W"
            f"{'' if layout.channels == 1 else f', {layout.channels}'}), got {values.shape}"
        )
    packed = np.ascontiguousarray(values, dtype=layout.dtype)
    height, width = int(packed.shape[0]), int(packed.shape[1])
    return message_class(IMAGE)(
        header=make_header(stamp_ns, frame_id),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=int(sys.byteorder == "big"),
        step=width * layout.dtype.itemsize * layout.channels,
        data=packed.reshape(-1).view(np.uint8),
    )


def mask_to_image(mask_u8: npt.NDArray[np.uint8], stamp_ns: int, frame_id: str) -> Any:
    """(H, W) uint8 mask → mono8 Image (values passed through unchanged)."""
    mask = np.asarray(mask_u8)
    if mask.dtype != _U8 or mask.ndim != 2:
        raise EncodeError(
            f"mask_to_image needs an (H, W) uint8 mask, got {mask.dtype} {mask.shape}"
        )
    return array_to_image(mask, "mono8", stamp_ns, frame_id)
