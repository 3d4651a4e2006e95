"""Letterbox preprocessing against Ultralytics' own LetterBox, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from ultralytics.data.augment import LetterBox

from rl_deploy.perception.letterbox import LetterboxBuffer, letterbox_geometry

FRAME_SIZES = [(480, 640), (640, 480), (720, 1280), (333, 517), (320, 320), (97, 1001), (1, 5)]
TARGETS = [(320, 320), (256, 320), (640, 640), (480, 640)]


def _reference(rgb: np.ndarray, target: tuple[int, int], auto: bool) -> np.ndarray:
    """What Ultralytics feeds its network: LetterBox on BGR, then BGR→RGB, CHW, /255."""
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    boxed = LetterBox(target, auto=auto, stride=32)(image=bgr)
    chw = np.ascontiguousarray(boxed[..., ::-1].transpose(2, 0, 1))
    return (chw.astype(np.float32) / np.float32(255))[None]


@pytest.mark.parametrize("frame_hw", FRAME_SIZES)
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("auto", [False, True])
def test_tensor_is_bit_identical_to_ultralytics(frame_hw, target, auto):
    rng = np.random.default_rng(sum(frame_hw) + sum(target))
    rgb = rng.integers(0, 256, size=(*frame_hw, 3), dtype=np.uint8)
    geometry = letterbox_geometry(frame_hw, target, stride=32, auto=auto)
    buffer = LetterboxBuffer()
    buffer.fill(rgb, geometry)
    expected = _reference(rgb, target, auto)
    assert buffer.tensor.shape == expected.shape
    np.testing.assert_array_equal(buffer.tensor, expected)


def test_buffer_reuse_keeps_padding_and_follows_size_changes():
    rng = np.random.default_rng(0)
    buffer = LetterboxBuffer()
    for frame_hw in [(480, 640), (480, 640), (640, 480), (480, 640)]:
        rgb = rng.integers(0, 256, size=(*frame_hw, 3), dtype=np.uint8)
        buffer.fill(rgb, letterbox_geometry(frame_hw, (320, 320), 32, auto=False))
        np.testing.assert_array_equal(buffer.tensor, _reference(rgb, (320, 320), auto=False))


def test_geometry_maps_frame_into_content_region():
    geometry = letterbox_geometry((480, 640), (320, 320), 32, auto=False)
    assert geometry.input_hw == (320, 320)
    assert geometry.resized_hw == (240, 320)
    assert (geometry.top, geometry.left) == (40, 0)
    assert geometry.gain_x == geometry.gain_y == 0.5
    rect = letterbox_geometry((480, 640), (320, 320), 32, auto=True)
    assert rect.input_hw == (256, 320)
    assert (rect.top, rect.left) == (8, 0)
