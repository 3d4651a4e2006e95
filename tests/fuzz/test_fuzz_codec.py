"""Property tests of the codec and its converters: whatever the bytes or field values, only
the project's own errors come out, and what does come out is finite and well-shaped."""

from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np
import pytest
from fuzz_helpers import FLOATS, FUZZ, corrupted, world
from hypothesis import example, given
from hypothesis import strategies as st

from rl_deploy import codec
from rl_deploy.bench.fuzz import ENCODINGS, convert, seed_messages
from rl_deploy.codec import typestore as msgtypes
from rl_deploy.errors import DecodeError, RlDeployError

SEEDS = seed_messages(world())
JOINTS = ("joint_lift", "joint_arm", "joint_wrist_yaw")


@st.composite
def corrupted_message(draw: st.DrawFn) -> tuple[str, bytes]:
    msgtype = draw(st.sampled_from(sorted(SEEDS)))
    return msgtype, draw(corrupted(draw(st.sampled_from(SEEDS[msgtype]))))


@FUZZ
@given(corrupted_message())
def test_corrupted_cdr_gives_only_typed_errors(message: tuple[str, bytes]):
    msgtype, data = message
    with contextlib.suppress(RlDeployError):
        convert(codec.decode(data, msgtype), msgtype, JOINTS)


def _read_both_ways(data: bytes) -> tuple[tuple[Any, ...] | None, tuple[Any, ...] | None]:
    """(stamp, frame, encoding, pixels) from decode_image and from the message path, or None
    where one refused the bytes (with a DecodeError: anything else fails the test)."""
    frame = message = None
    with contextlib.suppress(DecodeError):
        image = codec.decode_image(data)
        frame = (image.stamp_ns, image.frame_id, image.encoding, image.pixels)
    with contextlib.suppress(DecodeError):
        msg = codec.decode(data, msgtypes.IMAGE)
        stamp_ns = codec.stamp_to_ns(msg.header.stamp)
        message = (stamp_ns, msg.header.frame_id, msg.encoding, codec.image_to_array(msg))
    return frame, message


@FUZZ
@given(st.sampled_from(SEEDS[msgtypes.IMAGE]).flatmap(corrupted))
def test_corrupted_images_read_straight_from_cdr_as_the_message_path_reads_them(data: bytes):
    frame, message = _read_both_ways(data)
    assert (frame is None) == (message is None)
    if frame is not None and message is not None:
        assert frame[:3] == message[:3]
        assert frame[3].dtype == message[3].dtype
        np.testing.assert_array_equal(frame[3], message[3])


@FUZZ
@given(st.binary(max_size=256), st.sampled_from(sorted(SEEDS)))
def test_random_bytes_give_only_typed_errors(data: bytes, msgtype: str):
    with contextlib.suppress(RlDeployError):
        convert(codec.decode(data, msgtype), msgtype, JOINTS)


@FUZZ
@given(
    size=st.tuples(st.integers(-3, 40), st.integers(-3, 40)),
    encoding=st.sampled_from(ENCODINGS),
    step=st.integers(0, 200),
    bigendian=st.integers(0, 1),
    data=st.binary(max_size=4000),
)
@example(size=(0, 0), encoding="bgr8", step=0, bigendian=0, data=b"")  # an empty colour frame
@example(size=(0, 4), encoding="mono16", step=8, bigendian=1, data=b"")
def test_any_image_fields_give_an_array_or_a_typed_error(size, encoding, step, bigendian, data):
    height, width = size
    msg = codec.message_class(msgtypes.IMAGE)(
        header=codec.make_header(0, ""),
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=bigendian,
        step=step,
        data=np.frombuffer(data, np.uint8),
    )
    try:
        array = codec.image_to_array(msg)
    except RlDeployError:
        return
    assert array.shape[:2] == (height, width)
    with contextlib.suppress(RlDeployError):
        convert(msg, msgtypes.IMAGE, ())


JOINT_NAMES = st.lists(st.sampled_from([*JOINTS, "joint_head_pan", "", "x"]), max_size=6)


def joint_state(names: list[str], positions: list[float]) -> object:
    return codec.message_class(msgtypes.JOINT_STATE)(
        header=codec.make_header(0, ""),
        name=names,
        position=np.array(positions, dtype=np.float64),
        velocity=np.zeros(0),
        effort=np.zeros(0),
    )


@FUZZ
@given(names=JOINT_NAMES, positions=st.lists(FLOATS, max_size=7))
def test_joint_states_give_finite_positions_in_card_order_or_a_typed_error(names, positions):
    try:
        values = codec.joint_positions(joint_state(names, positions), JOINTS)
    except RlDeployError:
        return
    assert values.shape == (3,) and np.isfinite(values).all()
    assert values.tolist() == [positions[names.index(name)] for name in JOINTS]


@FUZZ
@given(names=JOINT_NAMES, positions=st.lists(FLOATS, max_size=7))
def test_joint_states_give_finite_positions_of_the_named_joints_or_a_typed_error(names, positions):
    try:
        values = codec.named_positions(joint_state(names, positions), JOINTS)
    except RlDeployError:
        return
    assert set(values) == set(JOINTS) & set(names)
    assert all(value == positions[names.index(name)] for name, value in values.items())
    assert all(math.isfinite(value) for value in values.values())


def _pose_stamped(xyz, xyzw):
    cls = codec.message_class
    pose = cls(msgtypes.POSE)(
        position=cls(msgtypes.POINT)(x=xyz[0], y=xyz[1], z=xyz[2]),
        orientation=cls(msgtypes.QUATERNION)(x=xyzw[0], y=xyzw[1], z=xyzw[2], w=xyzw[3]),
    )
    return cls(msgtypes.POSE_STAMPED)(header=codec.make_header(0, "map"), pose=pose)


@FUZZ
@given(st.tuples(FLOATS, FLOATS, FLOATS), st.tuples(FLOATS, FLOATS, FLOATS, FLOATS))
def test_poses_are_finite_or_refused(xyz, xyzw):
    try:
        pose = codec.pose_from_message(_pose_stamped(xyz, xyzw), msgtypes.POSE_STAMPED)
    except RlDeployError:
        return
    assert all(math.isfinite(v) for v in (pose.x, pose.y, pose.yaw))
    assert -math.pi <= pose.yaw < math.pi


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["map", "odom", "base_link", "/odom", "", "cam"]),
            st.sampled_from(["odom", "base_link", "map", "cam", ""]),
            st.tuples(FLOATS, FLOATS, FLOATS),
            st.sampled_from([(0.0, 0.0, 0.0, 1.0), (0.0, 0.0, 0.6, 0.8), (0.0, 0.0, 0.0, 0.0)]),
            st.integers(-5, 5),
        ),
        max_size=5,
    )
)
def test_tf_chains_look_up_finite_poses_or_refuse(links):
    cls = codec.message_class
    transforms = [
        cls(msgtypes.TRANSFORM_STAMPED)(
            header=codec.make_header(max(stamp, 0), parent),
            child_frame_id=child,
            transform=cls(msgtypes.TRANSFORM)(
                translation=cls(msgtypes.VECTOR3)(x=xyz[0], y=xyz[1], z=xyz[2]),
                rotation=cls(msgtypes.QUATERNION)(x=q[0], y=q[1], z=q[2], w=q[3]),
            ),
        )
        for parent, child, xyz, q, stamp in links
    ]
    tree = codec.TransformTree()
    try:
        tree.update(cls(msgtypes.TF_MESSAGE)(transforms=transforms))
        pose = tree.lookup("map", "base_link")
    except RlDeployError:
        return
    assert all(math.isfinite(v) for v in (pose.x, pose.y, pose.yaw))


@FUZZ
@given(
    k=st.lists(FLOATS, min_size=9, max_size=9),
    width=st.integers(-1, 2000),
    height=st.integers(-1, 2000),
)
def test_camera_info_gives_valid_intrinsics_or_a_typed_error(k, width, height):
    info = codec.message_class(msgtypes.CAMERA_INFO)(
        header=codec.make_header(0, "cam"),
        height=max(height, 0),
        width=max(width, 0),
        distortion_model="plumb_bob",
        d=np.zeros(5),
        k=np.array(k, dtype=np.float64),
        r=np.eye(3).reshape(-1),
        p=np.zeros(12),
        binning_x=0,
        binning_y=0,
        roi=codec.message_class("sensor_msgs/msg/RegionOfInterest")(
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
        ),
    )
    try:
        intrinsics = codec.intrinsics_from_camera_info(info)
    except RlDeployError:
        return
    assert intrinsics.fx > 0 and intrinsics.fy > 0 and intrinsics.width > 0


@FUZZ
@given(
    st.sampled_from(["jpeg", "png", "rgb8; jpeg compressed bgr8", "16UC1; compressedDepth png",
                     "32FC1; compressedDepth png", "rvl", "", "mono16; png compressed"]),
    st.one_of(st.binary(max_size=300), corrupted(SEEDS[msgtypes.COMPRESSED_IMAGE][0][4:])),
)  # fmt: skip
def test_compressed_images_decode_or_give_a_typed_error(fmt: str, data: bytes):
    msg = codec.message_class(msgtypes.COMPRESSED_IMAGE)(
        header=codec.make_header(0, ""), format=fmt, data=np.frombuffer(data, np.uint8)
    )
    try:
        codec.decode_compressed(msg)
        codec.rgb_from_compressed(msg)
    except RlDeployError:
        pass


@pytest.mark.parametrize("msgtype", sorted(SEEDS))
def test_the_seeds_themselves_are_valid(msgtype: str):
    for data in SEEDS[msgtype]:
        convert(codec.decode(data, msgtype), msgtype, JOINTS)
