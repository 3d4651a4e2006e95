"""CameraInfo → pinhole intrinsics."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rl_deploy import codec
from rl_deploy.codec import typestore as ts
from rl_deploy.errors import DecodeError


def _camera_info(k: list[float], width: int = 640, height: int = 480) -> object:
    roi = ts.message_class("sensor_msgs/msg/RegionOfInterest")(
        x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
    )
    msg = ts.message_class(ts.CAMERA_INFO)(
        header=codec.make_header(1, "head_camera_optical_frame"),
        height=height,
        width=width,
        distortion_model="plumb_bob",
        d=np.zeros(5),
        k=np.array(k, dtype=np.float64),
        r=np.eye(3).reshape(-1),
        p=np.zeros(12),
        binning_x=0,
        binning_y=0,
        roi=roi,
    )
    raw = codec.encode(msg, ts.CAMERA_INFO)
    return codec.decode(raw, ts.CAMERA_INFO)


def test_intrinsics_come_from_k():
    info = _camera_info([605.5, 0, 321.25, 0, 606.0, 239.5, 0, 0, 1])
    intrinsics = codec.intrinsics_from_camera_info(info)
    assert intrinsics == codec.Intrinsics(
        width=640,
        height=480,
        fx=605.5,
        fy=606.0,
        cx=321.25,
        cy=239.5,
        frame_id="head_camera_optical_frame",
    )


def test_scaling_and_field_of_view():
    intrinsics = codec.intrinsics_from_camera_info(
        _camera_info([320, 0, 320, 0, 320, 240, 0, 0, 1])
    )
    assert intrinsics.horizontal_fov_rad() == pytest.approx(math.pi / 2)
    small = intrinsics.scaled_to(160, 120)
    assert (small.fx, small.fy, small.cx, small.cy) == (80.0, 80.0, 80.0, 60.0)
    assert small.horizontal_fov_rad() == pytest.approx(intrinsics.horizontal_fov_rad())


def test_uncalibrated_camera_is_an_error():
    with pytest.raises(DecodeError, match="uncalibrated: K is all zeros"):
        codec.intrinsics_from_camera_info(_camera_info([0.0] * 9))


@pytest.mark.parametrize(
    "k", [[0, 0, 320, 0, 500, 240, 0, 0, 1], [500, 0, 320, 0, float("nan"), 240, 0, 0, 1]]
)
def test_invalid_focal_lengths_are_errors(k):
    with pytest.raises(DecodeError, match="invalid K"):
        codec.intrinsics_from_camera_info(_camera_info(k))


def test_zero_size_is_an_error():
    with pytest.raises(DecodeError, match="size 0x480"):
        codec.intrinsics_from_camera_info(_camera_info([500, 0, 1, 0, 500, 1, 0, 0, 1], width=0))
