"""Planar geometry shared by the codec, observation builder and simulator hosts (REP-103 units)."""

from __future__ import annotations

import math
from dataclasses import dataclass


def wrap_angle(angle_rad: float) -> float:
    """Wrap an angle to [-pi, pi)."""
    return (angle_rad + math.pi) % (2.0 * math.pi) - math.pi


@dataclass(frozen=True)
class Pose2D:
    """Base pose on the floor plane: metres and radians, in the frame named by the source."""

    x: float  # m
    y: float  # m
    yaw: float  # rad, counter-clockwise from +x

    def is_finite(self) -> bool:
        return math.isfinite(self.x) and math.isfinite(self.y) and math.isfinite(self.yaw)

    def relative_to(self, origin: Pose2D) -> Pose2D:
        """This pose expressed in the frame of `origin` (e.g. the pose at episode start)."""
        dx, dy = self.x - origin.x, self.y - origin.y
        cos_o, sin_o = math.cos(origin.yaw), math.sin(origin.yaw)
        return Pose2D(
            x=cos_o * dx + sin_o * dy,
            y=-sin_o * dx + cos_o * dy,
            yaw=wrap_angle(self.yaw - origin.yaw),
        )

    def compose(self, other: Pose2D) -> Pose2D:
        """`other` (given in this pose's frame) expressed in this pose's parent frame."""
        cos_s, sin_s = math.cos(self.yaw), math.sin(self.yaw)
        return Pose2D(
            x=self.x + cos_s * other.x - sin_s * other.y,
            y=self.y + sin_s * other.x + cos_s * other.y,
            yaw=wrap_angle(self.yaw + other.yaw),
        )
