"""Letterbox preprocessing against Ultralytics' own LetterBox, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from ultralytics.data.augment import LetterBox

from rl_deploy.perception.letterbox import LetterboxBuffer, Uint8LetterboxBuffer, letterbox_geometry

FRAME_SIZES = [
    (480, 640),  # at 320 and 640 x 640: exactly half and the same size
    (640, 480),
    (720, 1280),
    (333, 517),
    (320, 320),
    (97, 1001),
    (1, 5),
    (1280, 1280),  # at 640 x 640: exactly half, square
]
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


@pytest.mark.parametrize("frame_hw", FRAME_SIZES)
@pytest.mark.parametrize("target", TARGETS)
def test_uint8_frame_is_ultralytics_letterbox_before_normalisation(frame_hw, target):
    rng = np.random.default_rng(sum(frame_hw) * sum(target))
    rgb = rng.integers(0, 256, size=(*frame_hw, 3), dtype=np.uint8)
    geometry = letterbox_geometry(frame_hw, target, stride=32, auto=False)
    buffer = Uint8LetterboxBuffer()
    buffer.fill(rgb, geometry)
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    expected = LetterBox(target, auto=False, stride=32)(image=bgr)[..., ::-1][None]
    np.testing.assert_array_equal(buffer.tensor, expected)


@pytest.mark.parametrize("seed", range(4))
def test_exact_halving_is_ultralytics_bilinear_on_any_pixels(seed):
    # The 2 x 2 area mean stands in for bilinear at exactly half size: all 256 levels, edges.
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, size=(480, 640, 3), dtype=np.uint8)
    rgb[::2, ::2] = rng.choice([0, 255], size=(240, 320, 3))
    buffer = Uint8LetterboxBuffer()
    buffer.fill(rgb, letterbox_geometry((480, 640), (320, 320), 32, auto=False))
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    expected = LetterBox((320, 320), auto=False, stride=32)(image=bgr)[..., ::-1][None]
    np.testing.assert_array_equal(buffer.tensor, expected)


def test_uint8_buffer_reuse_keeps_padding_and_follows_size_changes():
    rng = np.random.default_rng(1)
    buffer = Uint8LetterboxBuffer()
    for frame_hw in [(640, 480), (480, 640), (480, 640), (640, 480), (320, 320)]:
        rgb = rng.integers(0, 256, size=(*frame_hw, 3), dtype=np.uint8)
        buffer.fill(rgb, letterbox_geometry(frame_hw, (320, 320), 32, auto=False))
        expected = _reference(rgb, (320, 320), auto=False)
        as_float = buffer.tensor.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)
        np.testing.assert_array_equal(as_float, expected)


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
