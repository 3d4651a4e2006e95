"""Base pose from amcl, PoseStamped, Odometry and a tf chain, with known answers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from transforms3d.euler import euler2quat

from rl_deploy import codec
from rl_deploy.codec import typestore as ts
from rl_deploy.command import BaseVelocity
from rl_deploy.errors import DecodeError, StaleInputError
from rl_deploy.geometry import Pose2D

S = 1_000_000_000


def _msg(msgtype: str, **fields: Any) -> Any:
    return ts.message_class(msgtype)(**fields)


def _quaternion(roll: float = 0.0, pitch: float = 0.0, yaw: float = 0.0) -> Any:
    w, x, y, z = euler2quat(roll, pitch, yaw, "sxyz")
    return _msg(ts.QUATERNION, x=x, y=y, z=z, w=w)


def _pose(x: float, y: float, yaw: float, z: float = 0.0, **tilt: float) -> Any:
    return _msg(
        ts.POSE,
        position=_msg(ts.POINT, x=x, y=y, z=z),
        orientation=_quaternion(yaw=yaw, **tilt),
    )


def _through_cdr(msg: Any, msgtype: str) -> Any:
    return codec.decode(codec.encode(msg, msgtype), msgtype)


def _amcl(pose: Any) -> Any:
    covariance = _msg(ts.POSE_WITH_COVARIANCE, pose=pose, covariance=np.zeros(36))
    msg = _msg(ts.POSE_WITH_COVARIANCE_STAMPED, header=codec.make_header(1, "map"), pose=covariance)
    return _through_cdr(msg, ts.POSE_WITH_COVARIANCE_STAMPED)


def _pose_stamped(pose: Any) -> Any:
    msg = _msg(ts.POSE_STAMPED, header=codec.make_header(1, "map"), pose=pose)
    return _through_cdr(msg, ts.POSE_STAMPED)


def _odometry(pose: Any) -> Any:
    twist = _msg(
        "geometry_msgs/msg/TwistWithCovariance",
        twist=codec.twist(BaseVelocity()),
        covariance=np.zeros(36),
    )
    msg = _msg(
        ts.ODOMETRY,
        header=codec.make_header(1, "odom"),
        child_frame_id="base_link",
        pose=_msg(ts.POSE_WITH_COVARIANCE, pose=pose, covariance=np.zeros(36)),
        twist=twist,
    )
    return _through_cdr(msg, ts.ODOMETRY)


SOURCES = [
    (ts.POSE_WITH_COVARIANCE_STAMPED, _amcl),
    (ts.POSE_STAMPED, _pose_stamped),
    (ts.ODOMETRY, _odometry),
]


def _assert_pose(actual: Pose2D, x: float, y: float, yaw: float) -> None:
    assert actual.x == pytest.approx(x, abs=1e-9)
    assert actual.y == pytest.approx(y, abs=1e-9)
    assert math.remainder(actual.yaw - yaw, 2 * math.pi) == pytest.approx(0.0, abs=1e-9)


def test_pose_msgtypes_lists_the_message_sources():
    assert {
        ts.POSE_WITH_COVARIANCE_STAMPED,
        ts.POSE_STAMPED,
        ts.ODOMETRY,
    } == codec.POSE_MSGTYPES


@pytest.mark.parametrize(("msgtype", "build"), SOURCES)
@pytest.mark.parametrize("yaw", [0.0, 0.7, -2.5, math.pi - 1e-6])
def test_pose_messages_give_x_y_yaw(msgtype, build, yaw):
    pose = codec.pose_from_message(build(_pose(1.25, -3.5, yaw, z=0.4)), msgtype)
    _assert_pose(pose, 1.25, -3.5, yaw)
    assert -math.pi <= pose.yaw < math.pi


def test_tilted_base_keeps_the_heading_of_its_x_axis():
    msg = _pose_stamped(_pose(0.0, 0.0, 1.0, roll=0.05, pitch=-0.04))
    pose = codec.pose_from_message(msg, ts.POSE_STAMPED)
    assert pose.yaw == pytest.approx(1.0, abs=1e-12)


@pytest.mark.parametrize(
    ("orientation", "message"),
    [
        ({"x": 0.0, "y": 0.0, "z": 0.0, "w": 0.0}, "not a unit quaternion"),
        ({"x": 0.0, "y": 0.0, "z": 0.5, "w": 0.5}, r"norm 0\.707"),
        ({"x": float("nan"), "y": 0.0, "z": 0.0, "w": 1.0}, "not a unit quaternion"),
    ],
)
def test_broken_quaternions_are_decode_errors(orientation, message):
    pose = _msg(
        ts.POSE,
        position=_msg(ts.POINT, x=0.0, y=0.0, z=0.0),
        orientation=_msg(ts.QUATERNION, **orientation),
    )
    with pytest.raises(DecodeError, match=message):
        codec.pose_from_message(_amcl(pose), ts.POSE_WITH_COVARIANCE_STAMPED)


def test_non_finite_position_and_unknown_type_are_decode_errors():
    with pytest.raises(DecodeError, match="not finite"):
        codec.pose_from_message(_odometry(_pose(float("inf"), 0.0, 0.0)), ts.ODOMETRY)
    with pytest.raises(DecodeError, match="sensor_msgs/msg/Image"):
        codec.pose_from_message(object(), ts.IMAGE)


def _transform(
    parent: str,
    child: str,
    stamp_ns: int,
    xyz: tuple[float, float, float],
    rpy: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> Any:
    transform = _msg(
        ts.TRANSFORM,
        translation=_msg(ts.VECTOR3, x=xyz[0], y=xyz[1], z=xyz[2]),
        rotation=_quaternion(*rpy),
    )
    return _msg(
        ts.TRANSFORM_STAMPED,
        header=codec.make_header(stamp_ns, parent),
        child_frame_id=child,
        transform=transform,
    )


def _tf(*transforms: Any) -> Any:
    return _through_cdr(_msg(ts.TF_MESSAGE, transforms=list(transforms)), ts.TF_MESSAGE)


def _robot_tree() -> codec.TransformTree:
    tree = codec.TransformTree()
    tree.update(
        _tf(
            _transform("map", "odom", 100, (1.0, 2.0, 0.0), (0, 0, math.pi / 2)),
            _transform("odom", "base_footprint", 300, (1.0, 0.0, 0.0)),
        )
    )
    tree.update(
        _tf(
            _transform("base_footprint", "base_link", 5, (0.0, 0.0, 0.1), (0, 0, math.pi / 4)),
            _transform("base_link", "camera_link", 5, (0.2, 0.0, 1.2)),
        ),
        static=True,
    )
    return tree


def test_three_link_chain_has_the_known_answer():
    tree = _robot_tree()
    # map→odom (1, 2, 90°) · odom→footprint (1, 0, 0°) · footprint→base_link (0, 0, 45°)
    _assert_pose(tree.lookup("map", "base_link"), 1.0, 3.0, 3 * math.pi / 4)
    planar = Pose2D(1.0, 2.0, math.pi / 2).compose(Pose2D(1.0, 0.0, 0.0))
    planar = planar.compose(Pose2D(0.0, 0.0, math.pi / 4))
    _assert_pose(tree.lookup("map", "base_link"), planar.x, planar.y, planar.yaw)
    assert tree.lookup_matrix("map", "camera_link")[2, 3] == pytest.approx(1.3)


def test_lookups_run_in_both_directions_and_across_branches():
    tree = _robot_tree()
    forward = tree.lookup("map", "base_link")
    backward = tree.lookup("base_link", "map")
    expected = Pose2D(0.0, 0.0, 0.0).relative_to(forward)
    _assert_pose(backward, expected.x, expected.y, expected.yaw)
    _assert_pose(tree.lookup("odom", "odom"), 0.0, 0.0, 0.0)
    # camera seen from odom: footprint (1, 0) + 45° rotated (0.2, 0) offset.
    offset = 0.2 / math.sqrt(2)
    _assert_pose(tree.lookup("odom", "camera_link"), 1.0 + offset, offset, math.pi / 4)


def test_chain_is_composed_in_3d_before_projection():
    tree = codec.TransformTree()
    tree.update(
        _tf(
            _transform("base_link", "flipped", 1, (0.0, 0.0, 0.0), (math.pi, 0.0, 0.0)),
            _transform("flipped", "tool", 1, (1.0, 0.5, 0.0), (0.0, 0.0, math.pi / 6)),
        )
    )
    # Upside down, +y and +yaw of the child point the other way on the floor.
    _assert_pose(tree.lookup("base_link", "tool"), 1.0, -0.5, -math.pi / 6)


def test_missing_link_names_the_frames():
    tree = _robot_tree()
    with pytest.raises(StaleInputError, match=r"'map' to 'gripper'.*known frames"):
        tree.lookup("map", "gripper")
    tree.update(_tf(_transform("world", "mocap_marker", 1, (0, 0, 0))))
    with pytest.raises(StaleInputError, match="no transform from 'map' to 'mocap_marker'"):
        tree.lookup("map", "mocap_marker")


def test_latest_transform_wins_and_older_ones_are_ignored():
    tree = _robot_tree()
    tree.update(_tf(_transform("odom", "base_footprint", 400, (2.0, 0.0, 0.0))))
    tree.update(_tf(_transform("odom", "base_footprint", 350, (9.0, 9.0, 0.0))))
    _assert_pose(tree.lookup("odom", "base_footprint"), 2.0, 0.0, 0.0)
    # The oldest moving link (map→odom at 100) dates the chain; static links never age.
    assert tree.latest_stamp_ns("map", "camera_link") == 100
    assert tree.latest_stamp_ns("base_footprint", "camera_link") == 5
    tree.update(_tf(_transform("map", "odom", 450, (1.0, 2.0, 0.0), (0, 0, math.pi / 2))))
    assert tree.latest_stamp_ns("map", "camera_link") == 400


def test_stamps_going_back_start_the_moving_tree_over():
    tree = _robot_tree()
    # odom→base_footprint was at 300 ns; the simulator resets and stamps restart 2 s earlier.
    went_back = tree.update(_tf(_transform("odom", "base_footprint", 300 - 2 * S, (0.5, 0, 0))))
    assert went_back
    _assert_pose(tree.lookup("odom", "base_footprint"), 0.5, 0.0, 0.0)
    with pytest.raises(StaleInputError):  # map→odom from before the reset is gone
        tree.lookup("map", "base_footprint")
    assert tree.latest_stamp_ns("base_footprint", "camera_link") == 5  # /tf_static is kept
    assert not tree.update(_tf(_transform("map", "odom", 1, (0.0, 0.0, 0.0))))


def test_clear_can_keep_static_links():
    tree = _robot_tree()
    tree.clear(keep_static=True)
    assert tree.frames() == {"base_footprint", "base_link", "camera_link"}


def test_leading_slashes_are_ignored_like_tf2():
    tree = codec.TransformTree()
    tree.update(_tf(_transform("/odom", "/base_link", 1, (0.5, 0.0, 0.0))))
    _assert_pose(tree.lookup("odom", "/base_link"), 0.5, 0.0, 0.0)


def test_bad_transform_rejects_the_whole_message():
    tree = _robot_tree()
    bad = _transform("odom", "base_footprint", 900, (1.0, 0.0, 0.0))
    bad.transform.rotation.w = 3.0
    with pytest.raises(DecodeError, match=r"'odom' -> 'base_footprint'.*not a unit quaternion"):
        tree.update(_msg(ts.TF_MESSAGE, transforms=[_transform("a", "b", 1, (0, 0, 0)), bad]))
    assert "a" not in tree.frames()
    assert tree.latest_stamp_ns("odom", "base_footprint") == 300


def test_loops_and_self_links_are_decode_errors():
    tree = codec.TransformTree()
    with pytest.raises(DecodeError, match="two different"):
        tree.update(_tf(_transform("odom", "odom", 1, (0, 0, 0))))
    with pytest.raises(DecodeError, match="loop"):
        tree.update(_tf(_transform("a", "b", 1, (0, 0, 0)), _transform("b", "a", 1, (0, 0, 0))))
    assert tree.frames() == frozenset()  # nothing of a refused message is kept


def test_a_link_that_would_close_a_loop_is_refused_and_the_tree_kept():
    """Stored, one bad link would make every later lookup fail for good."""
    tree = _robot_tree()
    before = tree.lookup("map", "base_link")
    with pytest.raises(DecodeError, match="loop"):
        tree.update(_tf(_transform("base_link", "map", 5, (0, 0, 0))))
    assert tree.lookup("map", "base_link") == before


def test_clear_forgets_everything():
    tree = _robot_tree()
    tree.clear()
    assert tree.frames() == frozenset()
    with pytest.raises(StaleInputError):
        tree.lookup("map", "base_link")
