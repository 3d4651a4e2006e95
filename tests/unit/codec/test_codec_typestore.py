"""CDR round trips, byte layout and decode failures of the shared typestore."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rl_deploy import codec
from rl_deploy.codec import typestore as ts
from rl_deploy.command import ArmTarget, BaseVelocity
from rl_deploy.errors import DecodeError


def _msg(msgtype: str, **fields: Any) -> Any:
    return ts.message_class(msgtype)(**fields)


def _pose(x: float, y: float, yaw: float) -> Any:
    orientation = _msg(ts.QUATERNION, x=0.0, y=0.0, z=np.sin(yaw / 2), w=np.cos(yaw / 2))
    return _msg(ts.POSE, position=_msg(ts.POINT, x=x, y=y, z=0.0), orientation=orientation)


def _pose_cov(x: float, y: float, yaw: float) -> Any:
    return _msg(
        ts.POSE_WITH_COVARIANCE, pose=_pose(x, y, yaw), covariance=np.arange(36, dtype=np.float64)
    )


def _detection2d(stamp_ns: int) -> Any:
    hypothesis = _msg(
        ts.OBJECT_HYPOTHESIS_WITH_POSE,
        hypothesis=_msg(ts.OBJECT_HYPOTHESIS, class_id="cup", score=0.87),
        pose=_pose_cov(0.0, 0.0, 0.0),
    )
    center = _msg(ts.VISION_POSE2D, position=_msg(ts.POINT2D, x=320.5, y=240.25), theta=0.0)
    return _msg(
        ts.DETECTION2D,
        header=codec.make_header(stamp_ns, "camera_color_optical_frame"),
        results=[hypothesis],
        bbox=_msg(ts.BOUNDING_BOX2D, center=center, size_x=40.0, size_y=22.5),
        id="7",
    )


def _detection3d(stamp_ns: int) -> Any:
    box = _msg(
        ts.BOUNDING_BOX3D,
        center=_pose(1.0, 2.0, 0.3),
        size=_msg(ts.VECTOR3, x=0.1, y=0.2, z=0.3),
    )
    return _msg(
        ts.DETECTION3D,
        header=codec.make_header(stamp_ns, "base_link"),
        results=[],
        bbox=box,
        id="",
    )


def _transform(parent: str, child: str, stamp_ns: int) -> Any:
    transform = _msg(
        ts.TRANSFORM,
        translation=_msg(ts.VECTOR3, x=1.0, y=-2.0, z=0.5),
        rotation=_msg(ts.QUATERNION, x=0.0, y=0.0, z=0.0, w=1.0),
    )
    return _msg(
        ts.TRANSFORM_STAMPED,
        header=codec.make_header(stamp_ns, parent),
        child_frame_id=child,
        transform=transform,
    )


def sample_messages() -> list[tuple[str, Any]]:
    """One populated message of every type the codec converts."""
    stamp_ns = 1_700_000_000_123_456_789
    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    depth = np.arange(20, dtype=np.uint16).reshape(4, 5) * 100
    header = codec.make_header(stamp_ns, "camera_depth_optical_frame")
    return [
        (ts.IMAGE, codec.array_to_image(rgb, "rgb8", stamp_ns, "camera_color_optical_frame")),
        (ts.IMAGE, codec.array_to_image(depth, "16UC1", stamp_ns, "camera_depth_optical_frame")),
        (ts.IMAGE, codec.mask_to_image((depth > 500).astype(np.uint8), stamp_ns, "cam")),
        (
            ts.COMPRESSED_IMAGE,
            _msg(
                ts.COMPRESSED_IMAGE,
                header=header,
                format="rgb8; jpeg compressed bgr8",
                data=np.frombuffer(b"\xff\xd8 not really a jpeg", dtype=np.uint8),
            ),
        ),
        (
            ts.CAMERA_INFO,
            _msg(
                ts.CAMERA_INFO,
                header=header,
                height=480,
                width=640,
                distortion_model="plumb_bob",
                d=np.array([0.1, -0.2, 0.0, 0.0, 0.05]),
                k=np.array([600.0, 0, 320, 0, 601.0, 240, 0, 0, 1]),
                r=np.eye(3).reshape(-1),
                p=np.array([600.0, 0, 320, 0, 0, 601.0, 240, 0, 0, 0, 1, 0]),
                binning_x=0,
                binning_y=0,
                roi=_msg(
                    "sensor_msgs/msg/RegionOfInterest",
                    x_offset=0,
                    y_offset=0,
                    height=0,
                    width=0,
                    do_rectify=False,
                ),
            ),
        ),
        (
            ts.JOINT_STATE,
            _msg(
                ts.JOINT_STATE,
                header=codec.make_header(stamp_ns, ""),
                name=["joint_lift", "joint_arm_l0", "joint_head_pan"],
                position=np.array([0.6, 0.01, -1.2]),
                velocity=np.array([0.0, 0.0, 0.1]),
                effort=np.zeros(0),
            ),
        ),
        (
            ts.POSE_WITH_COVARIANCE_STAMPED,
            _msg(
                ts.POSE_WITH_COVARIANCE_STAMPED,
                header=codec.make_header(stamp_ns, "map"),
                pose=_pose_cov(1.5, -0.5, 0.7),
            ),
        ),
        (
            ts.POSE_STAMPED,
            _msg(ts.POSE_STAMPED, header=codec.make_header(stamp_ns, "map"), pose=_pose(1, 2, 3)),
        ),
        (
            ts.ODOMETRY,
            _msg(
                ts.ODOMETRY,
                header=codec.make_header(stamp_ns, "odom"),
                child_frame_id="base_link",
                pose=_pose_cov(0.1, 0.2, -0.3),
                twist=_msg(
                    "geometry_msgs/msg/TwistWithCovariance",
                    twist=codec.twist(BaseVelocity(0.2, 0.0, 0.1)),
                    covariance=np.zeros(36),
                ),
            ),
        ),
        (
            ts.TF_MESSAGE,
            _msg(
                ts.TF_MESSAGE,
                transforms=[
                    _transform("map", "odom", stamp_ns),
                    _transform("odom", "base_link", stamp_ns),
                ],
            ),
        ),
        (ts.TWIST, codec.twist(BaseVelocity(0.25, -0.05, 0.5))),
        (ts.TWIST_STAMPED, codec.twist_stamped(BaseVelocity(0.1, 0, -0.2), stamp_ns, "base_link")),
        (
            ts.JOINT_TRAJECTORY,
            codec.joint_trajectory(
                ArmTarget(("joint_lift", "joint_wrist_yaw"), np.array([0.7, -0.4])),
                stamp_ns,
                "base_link",
                250_000_000,
            ),
        ),
        (ts.FLOAT64_MULTI_ARRAY, codec.float64_multi_array([0.1, 0.2, 0.3], "arm")),
        (
            ts.DIAGNOSTIC_ARRAY,
            codec.diagnostic_array(
                stamp_ns,
                [
                    codec.DiagnosticStatusData(
                        "rl_deploy: policy",
                        codec.DiagnosticLevel.WARN,
                        "stale depth",
                        "robot-1",
                        {"rate_hz": "9.8", "zero_reason": "stale"},
                    )
                ],
            ),
        ),
        (
            ts.DETECTION2D_ARRAY,
            _msg(
                ts.DETECTION2D_ARRAY,
                header=codec.make_header(stamp_ns, "camera_color_optical_frame"),
                detections=[_detection2d(stamp_ns), _detection2d(stamp_ns + 1)],
            ),
        ),
        (
            ts.DETECTION3D_ARRAY,
            _msg(
                ts.DETECTION3D_ARRAY,
                header=codec.make_header(stamp_ns, "base_link"),
                detections=[_detection3d(stamp_ns)],
            ),
        ),
        (
            ts.LABEL_INFO,
            _msg(
                ts.LABEL_INFO,
                header=codec.make_header(stamp_ns, ""),
                class_map=[
                    _msg(ts.VISION_CLASS, class_id=0, class_name="cup"),
                    _msg(ts.VISION_CLASS, class_id=65535, class_name="UNLABELED"),
                ],
                threshold=0.25,
            ),
        ),
        (
            ts.VISION_INFO,
            _msg(
                ts.VISION_INFO,
                header=codec.make_header(stamp_ns, ""),
                method="yolo11n-seg",
                database_location="/rl_deploy/label_info",
                database_version=3,
            ),
        ),
    ]


SAMPLES = sample_messages()
SAMPLE_IDS = [f"{index}-{msgtype.rsplit('/', 1)[-1]}" for index, (msgtype, _) in enumerate(SAMPLES)]


def test_vision_msgs_are_registered_with_the_jazzy_4x_layout():
    fields = {
        name: [field for field, _ in ts.TYPESTORE.fielddefs[name][1]]
        for name in (ts.DETECTION2D, ts.BOUNDING_BOX2D, ts.VISION_POSE2D, ts.LABEL_INFO)
    }
    assert fields[ts.DETECTION2D] == ["header", "results", "bbox", "id"]
    assert fields[ts.BOUNDING_BOX2D] == ["center", "size_x", "size_y"]
    assert fields[ts.VISION_POSE2D] == ["position", "theta"]
    assert fields[ts.LABEL_INFO] == ["header", "class_map", "threshold"]
    for name in (
        "BoundingBox3D",
        "Detection2DArray",
        "Detection3D",
        "Detection3DArray",
        "ObjectHypothesis",
        "ObjectHypothesisWithPose",
        "Point2D",
        "VisionClass",
        "VisionInfo",
    ):
        assert f"vision_msgs/msg/{name}" in ts.TYPESTORE.types


@pytest.mark.parametrize(("msgtype", "msg"), SAMPLES, ids=SAMPLE_IDS)
def test_encode_decode_encode_is_byte_identical(msgtype, msg):
    first = codec.encode(msg, msgtype)
    assert isinstance(first, bytes)
    assert first[:4] == b"\x00\x01\x00\x00"  # CDR little endian, no options
    again = codec.encode(codec.decode(first, msgtype), msgtype)
    assert again == first


@pytest.mark.parametrize(("msgtype", "msg"), SAMPLES, ids=SAMPLE_IDS)
def test_big_endian_cdr_decodes_to_the_same_message(msgtype, msg):
    big = bytes(ts.TYPESTORE.serialize_cdr(msg, msgtype, little_endian=False))
    assert big[:2] == b"\x00\x00"
    assert codec.encode(codec.decode(big, msgtype), msgtype) == codec.encode(msg, msgtype)


@pytest.mark.parametrize(("msgtype", "msg"), SAMPLES, ids=SAMPLE_IDS)
def test_encode_matches_rosbags_even_after_a_larger_message(msgtype, msg):
    # encode reuses a buffer: padding left over from an earlier, larger message must not leak.
    codec.encode(
        codec.array_to_image(np.full((64, 64, 3), 255, np.uint8), "rgb8", -1, "x" * 99), ts.IMAGE
    )
    assert codec.encode(msg, msgtype) == bytes(ts.TYPESTORE.serialize_cdr(msg, msgtype))


def _cdr_string(text: str) -> bytes:
    raw = text.encode() + b"\x00"
    return struct.pack("<I", len(raw)) + raw


def _pad_to(buffer: bytes, alignment: int) -> bytes:
    return buffer + b"\x00" * (-len(buffer) % alignment)


def test_image_bytes_match_a_hand_built_cdr_layout():
    pixels = np.arange(18, dtype=np.uint8).reshape(2, 3, 3)
    image = codec.array_to_image(pixels, "rgb8", 1_000_000_002, "cam")
    # Offsets align relative to the end of the 4-byte encapsulation header.
    body = struct.pack("<iI", 1, 2) + _cdr_string("cam")  # header.stamp, header.frame_id
    body = _pad_to(body, 4) + struct.pack("<II", 2, 3)  # height, width
    body += _cdr_string("rgb8") + struct.pack("<B", 0)  # encoding, is_bigendian
    body = _pad_to(body, 4) + struct.pack("<I", 9)  # step
    body += struct.pack("<I", 18) + pixels.tobytes()  # data: length, bytes
    expected = b"\x00\x01\x00\x00" + body
    assert codec.encode(image, ts.IMAGE) == expected
    assert expected[4:16].hex() == "0100000002000000" + "04000000"


def test_decoded_image_data_is_a_view_on_the_cdr_buffer():
    msg = codec.array_to_image(np.zeros((480, 640, 3), np.uint8), "rgb8", 0, "cam")
    raw = codec.encode(msg, ts.IMAGE)
    decoded = codec.decode(raw, ts.IMAGE)
    assert isinstance(decoded.data, np.ndarray)
    assert np.shares_memory(decoded.data, np.frombuffer(raw, dtype=np.uint8))
    decoded_view = codec.decode(memoryview(raw), ts.IMAGE)
    assert np.shares_memory(decoded_view.data, np.frombuffer(raw, dtype=np.uint8))


def test_unknown_message_type_is_named():
    with pytest.raises(DecodeError, match="no_such_msgs/msg/Thing"):
        codec.decode(b"\x00\x01\x00\x00", "no_such_msgs/msg/Thing")
    with pytest.raises(DecodeError, match="no_such_msgs/msg/Thing"):
        codec.message_class("no_such_msgs/msg/Thing")
    with pytest.raises(codec.EncodeError, match="no_such_msgs/msg/Thing"):
        codec.encode(object(), "no_such_msgs/msg/Thing")


def test_encoding_a_wrong_message_raises_encode_error_naming_the_type():
    with pytest.raises(codec.EncodeError, match="geometry_msgs/msg/Twist"):
        codec.encode(codec.make_header(0, "x"), ts.TWIST)


@pytest.mark.parametrize(("msgtype", "msg"), SAMPLES, ids=SAMPLE_IDS)
def test_every_truncation_raises_decode_error_naming_the_type(msgtype, msg):
    raw = codec.encode(msg, msgtype)
    # Cuts at every position near the ends and a spread through the middle.
    cuts = sorted({*range(min(len(raw), 40)), *range(max(0, len(raw) - 40), len(raw))})
    cuts += list(range(40, len(raw) - 40, max(1, len(raw) // 50)))
    for cut in cuts:
        with pytest.raises(DecodeError, match=msgtype.replace("/", ".")):
            codec.decode(raw[:cut], msgtype)


def test_bad_encapsulation_and_impossible_lengths_are_decode_errors():
    raw = bytearray(codec.encode(SAMPLES[0][1], ts.IMAGE))
    with pytest.raises(DecodeError, match="07070000 is not a CDR encapsulation header"):
        codec.decode(b"\x07\x07" + bytes(raw[2:]), ts.IMAGE)
    with pytest.raises(DecodeError, match="no bytes"):
        codec.decode(b"", ts.IMAGE)
    size = len(SAMPLES[0][1].data)
    raw[-size - 4 : -size] = struct.pack("<I", 0xFFFFFFF0)  # data length far beyond the buffer
    with pytest.raises(DecodeError, match="sensor_msgs/msg/Image"):
        codec.decode(bytes(raw), ts.IMAGE)


def test_trailing_bytes_after_a_complete_message_are_ignored():
    # rclpy's serialize_message pads to an estimated size with whatever the buffer held.
    msgtype, msg = next(sample for sample in SAMPLES if sample[0] == ts.JOINT_STATE)
    raw = codec.encode(msg, msgtype)
    decoded = codec.decode(raw + b"\x04\x56\x00\x00\xc0\x1c\xbf\x77", msgtype)
    assert codec.encode(decoded, msgtype) == raw


def test_decode_accepts_bytearray_and_memoryview():
    msgtype, msg = SAMPLES[0]
    raw = codec.encode(msg, msgtype)
    for data in (bytearray(raw), memoryview(raw), memoryview(bytearray(raw))):
        assert codec.encode(codec.decode(data, msgtype), msgtype) == raw


_FUZZ_TYPES = [msgtype for msgtype, _ in SAMPLES[1:]]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_random_bytes_decode_or_raise_decode_error(data):
    msgtype = data.draw(st.sampled_from(_FUZZ_TYPES))
    payload = data.draw(st.binary(max_size=300))
    prefix = data.draw(st.sampled_from([b"\x00\x01\x00\x00", b"\x00\x00\x00\x00", b""]))
    try:
        decoded = codec.decode(prefix + payload, msgtype)
    except DecodeError as err:
        assert msgtype in str(err)
        return
    assert type(decoded).__msgtype__ == msgtype


@settings(max_examples=150, deadline=None)
@given(
    index=st.integers(0, len(SAMPLES) - 1),
    flips=st.lists(st.tuples(st.integers(4, 10_000), st.integers(1, 255)), min_size=1, max_size=4),
    cut=st.integers(0, 64),
)
def test_corrupted_cdr_decodes_or_raises_decode_error(index, flips, cut):
    msgtype, msg = SAMPLES[index]
    raw = bytearray(codec.encode(msg, msgtype))
    for position, xor in flips:
        raw[position % len(raw)] ^= xor
    try:
        decoded = codec.decode(bytes(raw[: len(raw) - cut]), msgtype)
    except DecodeError:
        return
    assert type(decoded).__msgtype__ == msgtype
