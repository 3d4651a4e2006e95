"""Shared pieces of the perception tests: the shipped detector and camera frames as CDR."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import cv2
import numpy as np

from rl_deploy import codec
from rl_deploy.codec.typestore import IMAGE
from rl_deploy.perception.runner import YoloSegRunner, load_runner
from rl_deploy.tools.detector_export import sample_frames

REPO = Path(__file__).resolve().parents[3]
SHIPPED_ONNX = REPO / "models" / "detector" / "detector.onnx"
SHIPPED_PT = REPO / "models" / "detector" / "detector.pt"
POLICY_ONNX = REPO / "models" / "example_reach.onnx"

_FROM_RGB = {
    "rgb8": None,
    "bgr8": cv2.COLOR_RGB2BGR,
    "rgba8": cv2.COLOR_RGB2RGBA,
    "bgra8": cv2.COLOR_RGB2BGRA,
    "mono8": cv2.COLOR_RGB2GRAY,
}


@cache
def shipped_runner() -> YoloSegRunner:
    return load_runner(SHIPPED_ONNX)


@cache
def frames(n: int = 6) -> tuple[np.ndarray, ...]:
    """Held-out camera frames (640x480) of the example scene."""
    return tuple(sample_frames(n))


def image_cdr(rgb: np.ndarray, encoding: str, stamp_ns: int, frame_id: str = "camera") -> bytes:
    """An RGB frame as the CDR bytes of a sensor_msgs/Image in `encoding`."""
    code = _FROM_RGB[encoding]
    array = rgb if code is None else cv2.cvtColor(rgb, code)
    return codec.encode(codec.array_to_image(array, encoding, stamp_ns, frame_id), IMAGE)
