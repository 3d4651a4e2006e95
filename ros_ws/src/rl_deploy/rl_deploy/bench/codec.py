"""`rl-deploy bench codec`: the project's CDR codec against rclpy's typed (de)serialization.

Both sides start from the same CDR bytes (or the same numpy array) and end at the same thing,
a numpy array of the pixels (or CDR bytes); both results are checked equal in the same run.
Ours decodes as the stack's image handlers do (`decode_image`); the whole-message path that
tools reading bags take (`decode` + `image_to_array`) is timed beside it.
The peer is timed at its best: after a large free, so glibc serves its buffers from the heap.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import numpy.typing as npt

from rl_deploy import codec
from rl_deploy.bench.measure import (
    interleaved_ms,
    median,
    positive_int,
    ratio,
    target,
    warm_allocator,
)
from rl_deploy.codec.typestore import IMAGE

ENCODINGS = ("rgb8", "16UC1")
DECODE_TARGET = 4.0  # ours at least this many times faster than rclpy
_STAMP_NS = 1_700_000_000_123_456_789
_FRAME = "camera_color_optical_frame"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--width", type=positive_int, default=640)
    parser.add_argument("--height", type=positive_int, default=480)
    parser.add_argument("--rounds", type=positive_int, default=300, help="timed calls per function")


def run(args: argparse.Namespace) -> dict[str, Any]:
    # rclpy only here: the runtime never imports it.
    from rclpy.serialization import deserialize_message, serialize_message

    from rl_deploy.bench.dds import message_class

    rclpy_image = message_class(IMAGE)

    warm_allocator()
    rng = np.random.default_rng(0)
    results = []
    for encoding in ENCODINGS:
        shape = (args.height, args.width, 3) if encoding == "rgb8" else (args.height, args.width)
        dtype = np.uint8 if encoding == "rgb8" else np.uint16
        pixels = rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype)
        data = codec.encode(codec.array_to_image(pixels, encoding, _STAMP_NS, _FRAME), IMAGE)

        def ours_decode(data: bytes = data) -> npt.NDArray[Any]:
            return codec.decode_image(data).pixels  # as the stack's image handlers read it

        def ours_message_decode(data: bytes = data) -> npt.NDArray[Any]:
            return codec.image_to_array(codec.decode(data, IMAGE))  # a whole message first

        def rclpy_decode(data: bytes = data) -> npt.NDArray[Any]:
            return _rclpy_to_array(deserialize_message(data, rclpy_image))

        def ours_encode(pixels: npt.NDArray[Any] = pixels, encoding: str = encoding) -> bytes:
            return codec.encode(codec.array_to_image(pixels, encoding, _STAMP_NS, _FRAME), IMAGE)

        def rclpy_encode(pixels: npt.NDArray[Any] = pixels, encoding: str = encoding) -> bytes:
            return bytes(serialize_message(_rclpy_image(rclpy_image, pixels, encoding)))

        same_pixels = all(
            np.array_equal(decoded(), pixels)
            for decoded in (ours_decode, ours_message_decode, rclpy_decode)
        )
        same_message = _same_image(ours_encode(), rclpy_encode())
        # Each direction is its own interleaved pair: encoding's large allocations would
        # otherwise change the allocator state that the decoders run in.
        decoders = {"ours_decode": ours_decode, "rclpy_decode": rclpy_decode}
        decoders["ours_message_decode"] = ours_message_decode
        times = interleaved_ms(decoders, rounds=args.rounds)
        times |= interleaved_ms(
            {"ours_encode": ours_encode, "rclpy_encode": rclpy_encode}, rounds=args.rounds
        )
        ms = {name: round(median(values), 4) for name, values in times.items()}
        results.append(
            {
                "encoding": encoding,
                "width": args.width,
                "height": args.height,
                "bytes": len(data),
                "ours_decode_ms": ms["ours_decode"],
                "rclpy_decode_ms": ms["rclpy_decode"],
                "ratio": ratio(ms["rclpy_decode"], ms["ours_decode"], 1),
                "ours_message_decode_ms": ms["ours_message_decode"],
                "message_ratio": ratio(ms["rclpy_decode"], ms["ours_message_decode"], 1),
                "ours_encode_ms": ms["ours_encode"],
                "rclpy_encode_ms": ms["rclpy_encode"],
                "encode_ratio": ratio(ms["rclpy_encode"], ms["ours_encode"], 1),
                "same_pixels": same_pixels,
                "same_message": same_message,
            }
        )
    return {
        "benchmark": "codec",
        "peer": "rclpy.serialization (de)serialize_message + numpy view of the data",
        "ratio_means": "peer time / our time (higher: ours faster), medians of interleaved calls",
        "rounds": args.rounds,
        "results": results,
        "targets": {
            f"decode_ratio_{r['encoding']}": target(r["ratio"], DECODE_TARGET, at_least=True)
            for r in results
        },
        "ok": all(r["same_pixels"] and r["same_message"] for r in results),
    }


def _same_image(ours: bytes, theirs: bytes) -> bool:
    """Both encodings read back as the same Image (rclpy leaves CDR alignment padding
    uninitialised, so the bytes themselves may differ there)."""
    a, b = codec.decode(ours, IMAGE), codec.decode(theirs, IMAGE)
    fields = ("height", "width", "encoding", "is_bigendian", "step")
    return (
        all(getattr(a, name) == getattr(b, name) for name in fields)
        and a.header.frame_id == b.header.frame_id
        and codec.stamp_to_ns(a.header.stamp) == codec.stamp_to_ns(b.header.stamp)
        and np.array_equal(a.data, b.data)
    )


def _rclpy_to_array(msg: Any) -> npt.NDArray[Any]:
    """What a node using rclpy's typed messages does to reach the pixels (cv_bridge's way)."""
    dtype = np.dtype(np.uint8 if msg.encoding == "rgb8" else np.uint16)
    dtype = dtype.newbyteorder(">" if msg.is_bigendian else "<")
    channels = 3 if msg.encoding == "rgb8" else 1
    shape = (msg.height, msg.width, channels) if channels > 1 else (msg.height, msg.width)
    return np.frombuffer(msg.data, dtype=dtype).reshape(shape)


def _rclpy_image(image_class: Any, pixels: npt.NDArray[Any], encoding: str) -> Any:
    msg = image_class()
    sec, nanosec = divmod(_STAMP_NS, 1_000_000_000)
    msg.header.stamp.sec, msg.header.stamp.nanosec = sec, nanosec
    msg.header.frame_id = _FRAME
    msg.height, msg.width = int(pixels.shape[0]), int(pixels.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = msg.width * pixels.itemsize * (3 if encoding == "rgb8" else 1)
    msg.data = pixels.tobytes()  # rclpy copies into its array.array('B')
    return msg
