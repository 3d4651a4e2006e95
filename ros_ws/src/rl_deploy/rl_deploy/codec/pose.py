"""Planar base pose from SLAM/odometry messages and from a small tf tree (REP-105 frames).

The policy sees x, y, yaw on the floor plane; roll and pitch are composed in 3D, then dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from transforms3d.euler import mat2euler, quat2euler
from transforms3d.quaternions import quat2mat

from rl_deploy.codec.header import stamp_to_ns
from rl_deploy.codec.typestore import ODOMETRY, POSE_STAMPED, POSE_WITH_COVARIANCE_STAMPED
from rl_deploy.errors import DecodeError, StaleInputError
from rl_deploy.geometry import Pose2D, wrap_angle

POSE_MSGTYPES: frozenset[str] = frozenset({POSE_WITH_COVARIANCE_STAMPED, POSE_STAMPED, ODOMETRY})

# Publishers normalise in float32 or float64; anything further off is a broken quaternion.
_UNIT_TOLERANCE = 1e-3
# A moving transform this much older than the one held for its child is its publisher's clock
# going back (sim reset, bag loop), not a reordered message: the tree starts over. One
# publisher stamps each child, so reordering is far below this; a smaller jump back is ignored
# and only ages the pose until the stamps catch up.
_TIME_RESET_NS = 1_000_000_000


def _unit_quaternion(orientation: Any, what: str) -> npt.NDArray[np.float64]:
    """geometry_msgs/Quaternion → normalised [w, x, y, z] (transforms3d order)."""
    wxyz = np.array([orientation.w, orientation.x, orientation.y, orientation.z], dtype=np.float64)
    with np.errstate(over="ignore"):  # a garbage 1e200 component: norm inf, refused below
        norm = float(np.linalg.norm(wxyz))
    if not np.isfinite(wxyz).all() or abs(norm - 1.0) > _UNIT_TOLERANCE:
        raise DecodeError(
            f"{what}: orientation (x, y, z, w)=({orientation.x}, {orientation.y}, "
            f"{orientation.z}, {orientation.w}) is not a unit quaternion (norm {norm})"
        )
    return wxyz / norm


def _finite_xyz(vector: Any, what: str) -> npt.NDArray[np.float64]:
    xyz = np.array([vector.x, vector.y, vector.z], dtype=np.float64)
    if not np.isfinite(xyz).all():
        raise DecodeError(f"{what}: position/translation {xyz.tolist()} is not finite")
    return xyz


def pose2d_from_pose(pose: Any, what: str = "geometry_msgs/msg/Pose") -> Pose2D:
    """geometry_msgs/Pose → Pose2D: x, y and the yaw of the body x-axis on the floor plane."""
    xyz = _finite_xyz(pose.position, what)
    wxyz = _unit_quaternion(pose.orientation, what)
    yaw = float(quat2euler(wxyz, "sxyz")[2])
    return Pose2D(x=float(xyz[0]), y=float(xyz[1]), yaw=wrap_angle(yaw))


def pose_from_message(msg: Any, msgtype: str) -> Pose2D:
    """Pose2D in the message's header frame, from PoseWithCovarianceStamped (amcl),
    PoseStamped (SLAM toolbox, mocap) or Odometry."""
    if msgtype in (POSE_WITH_COVARIANCE_STAMPED, ODOMETRY):
        pose = msg.pose.pose
    elif msgtype == POSE_STAMPED:
        pose = msg.pose
    else:
        raise DecodeError(f"{msgtype!r} carries no pose; expected one of {sorted(POSE_MSGTYPES)}")
    return pose2d_from_pose(pose, msgtype)


@dataclass(frozen=True)
class _Link:
    parent: str
    child_in_parent: npt.NDArray[np.float64]  # (4, 4) homogeneous transform, metres
    stamp_ns: int
    static: bool  # from /tf_static: never ages


def _frame(name: Any) -> str:
    return str(name).lstrip("/")  # tf2 ignores a leading slash


class TransformTree:
    """Latest transform per child frame from /tf and /tf_static, looked up through any chain."""

    def __init__(self) -> None:
        self._links: dict[str, _Link] = {}

    def update(self, tf_message: Any, *, static: bool = False) -> bool:
        """Add a tf2_msgs/TFMessage; a transform older than the one held for its child is ignored,
        unless by more than _TIME_RESET_NS: then every moving transform is dropped first (as
        tf2 clears its buffer when time jumps back) and True is returned.

        Every transform is checked before any is stored, so a bad message changes nothing; one
        that would close a loop of frames is a DecodeError (tf2 refuses them too).
        """
        incoming: list[tuple[str, _Link]] = []
        for transform in tf_message.transforms:
            parent, child = _frame(transform.header.frame_id), _frame(transform.child_frame_id)
            what = f"transform {parent!r} -> {child!r}"
            if not parent or not child or parent == child:
                raise DecodeError(f"{what} needs two different, non-empty frame ids")
            matrix = np.eye(4)
            matrix[:3, :3] = quat2mat(_unit_quaternion(transform.transform.rotation, what))
            matrix[:3, 3] = _finite_xyz(transform.transform.translation, what)
            link = _Link(parent, matrix, stamp_to_ns(transform.header.stamp), static)
            incoming.append((child, link))
        went_back = any(
            not link.static
            and (held := self._links.get(child)) is not None
            and not held.static
            and held.stamp_ns - link.stamp_ns > _TIME_RESET_NS
            for child, link in incoming
        )
        links = (
            {c: k for c, k in self._links.items() if k.static} if went_back else dict(self._links)
        )
        for child, link in incoming:
            held = links.get(child)
            if held is None or link.static or held.static or link.stamp_ns >= held.stamp_ns:
                links[child] = link
        for child, _ in incoming:
            _ancestors(links, child)  # raises on a loop
        self._links = links
        return went_back

    def clear(self, *, keep_static: bool = False) -> None:
        """Forget every transform (e.g. when a replayed bag loops), or only the moving ones:
        /tf_static is latched and not sent again."""
        self._links = {c: link for c, link in self._links.items() if keep_static and link.static}

    def frames(self) -> frozenset[str]:
        """Every frame named by a held transform, as parent or child."""
        return frozenset(self._links) | {link.parent for link in self._links.values()}

    def lookup(self, parent: str, child: str) -> Pose2D:
        """Pose of `child` in `parent` projected on the floor plane (x, y, yaw of child x-axis)."""
        matrix = self.lookup_matrix(parent, child)
        yaw = float(mat2euler(matrix[:3, :3], "sxyz")[2])
        return Pose2D(x=float(matrix[0, 3]), y=float(matrix[1, 3]), yaw=wrap_angle(yaw))

    def lookup_matrix(self, parent: str, child: str) -> npt.NDArray[np.float64]:
        """(4, 4) pose of `child` in `parent`, composed in 3D along the tree in either direction."""
        up_parent, up_child = self._path(_frame(parent), _frame(child))
        parent_in_common = self._compose(up_parent)
        child_in_common = self._compose(up_child)
        return np.asarray(np.linalg.inv(parent_in_common) @ child_in_common, dtype=np.float64)

    def latest_stamp_ns(self, parent: str, child: str) -> int:
        """Stamp of the oldest moving link between the frames: how old the lookup really is.

        Static links never age; a chain of static links only gives its oldest static stamp.
        """
        up_parent, up_child = self._path(_frame(parent), _frame(child))
        links = [self._links[frame] for frame in (*up_parent, *up_child)]
        if not links:
            raise StaleInputError(
                f"{parent!r} and {child!r} are the same frame: no transform has a stamp"
            )
        moving = [link.stamp_ns for link in links if not link.static]
        return min(moving) if moving else min(link.stamp_ns for link in links)

    def _path(self, parent: str, child: str) -> tuple[list[str], list[str]]:
        """Child frames whose links lead from each end up to the nearest common ancestor."""
        up_parent, up_child = _ancestors(self._links, parent), _ancestors(self._links, child)
        in_parent_chain = set(up_parent)
        common = next((frame for frame in up_child if frame in in_parent_chain), None)
        if common is None:
            raise StaleInputError(
                f"no transform from {parent!r} to {child!r}: {child!r} chains to {up_child}, "
                f"{parent!r} to {up_parent}; known frames {sorted(self.frames())}"
            )
        return up_parent[: up_parent.index(common)], up_child[: up_child.index(common)]

    def _compose(self, frames_up: list[str]) -> npt.NDArray[np.float64]:
        """Pose of frames_up[0] in the parent of frames_up[-1] (identity for an empty list)."""
        matrix = np.eye(4)
        for frame in frames_up:
            matrix = self._links[frame].child_in_parent @ matrix
        return matrix


def _ancestors(links: dict[str, _Link], frame: str) -> list[str]:
    """`frame`, its parent, grandparent … up to the root of its tree."""
    chain = [frame]
    while (link := links.get(chain[-1])) is not None:
        if link.parent in chain:
            raise DecodeError(f"tf frames would form a loop: {[*chain, link.parent]}")
        chain.append(link.parent)
    return chain
