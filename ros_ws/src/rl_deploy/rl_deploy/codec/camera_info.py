"""Pinhole intrinsics from sensor_msgs/CameraInfo, for projecting depth and resizing images.

Distortion is not applied here: depth and masks are expected to come from rectified streams.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from rl_deploy.errors import DecodeError


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole camera model of one image stream (REP-104 camera optical frame)."""

    width: int  # pixels
    height: int  # pixels
    fx: float  # pixels, focal length along x
    fy: float  # pixels, focal length along y
    cx: float  # pixels, principal point x
    cy: float  # pixels, principal point y
    frame_id: str  # optical frame of the camera

    def scaled_to(self, width: int, height: int) -> Intrinsics:
        """The same camera seen through an image resized to `width` x `height`."""
        sx, sy = width / self.width, height / self.height
        return replace(
            self,
            width=width,
            height=height,
            fx=self.fx * sx,
            fy=self.fy * sy,
            cx=self.cx * sx,
            cy=self.cy * sy,
        )

    def horizontal_fov_rad(self) -> float:
        """Full horizontal field of view."""
        return 2.0 * math.atan2(self.width / 2.0, self.fx)


def intrinsics_from_camera_info(msg: Any) -> Intrinsics:
    """CameraInfo → Intrinsics, from K (row-major 3x3); uncalibrated (all-zero K) is an error."""
    try:
        k = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
    except (TypeError, ValueError) as err:
        raise DecodeError(f"CameraInfo.k is not a 3x3 matrix: {err}") from err
    frame_id = str(msg.header.frame_id)
    if not k.any():
        raise DecodeError(f"CameraInfo for frame {frame_id!r} is uncalibrated: K is all zeros")
    fx, fy, cx, cy = float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2])
    if not (np.isfinite(k).all() and fx > 0.0 and fy > 0.0):
        raise DecodeError(
            f"CameraInfo for frame {frame_id!r} has invalid K: fx={fx}, fy={fy}, K={k.tolist()}"
        )
    width, height = int(msg.width), int(msg.height)
    if width <= 0 or height <= 0:
        raise DecodeError(f"CameraInfo for frame {frame_id!r} has size {width}x{height}")
    return Intrinsics(width=width, height=height, fx=fx, fy=fy, cx=cx, cy=cy, frame_id=frame_id)
