"""Letterbox preprocessing that reproduces Ultralytics' LetterBox to the pixel.

The frame is resized keeping its aspect ratio, centred, and padded with grey (114); the geometry
is kept so boxes and masks can be mapped back to the frame. `LetterboxBuffer` writes the float
tensor an Ultralytics export takes; `Uint8LetterboxBuffer` keeps the frame in uint8 for a network
that converts it itself (perception.graph.with_uint8_input).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np
import numpy.typing as npt

PAD_VALUE = 114  # Ultralytics' letterbox grey
_U8_TO_UNIT = np.float32(255.0)
_PAD_UNIT = np.float32(PAD_VALUE) / _U8_TO_UNIT


@dataclass(frozen=True)
class LetterboxGeometry:
    """How a frame maps into the network input: x_in = x_frame * gain_x + left."""

    frame_hw: tuple[int, int]  # source frame (height, width), pixels
    input_hw: tuple[int, int]  # network input (height, width), pixels
    resized_hw: tuple[int, int]  # frame after resizing, before padding
    top: int  # rows of padding above the resized frame
    left: int  # columns of padding left of the resized frame

    @property
    def gain_x(self) -> float:
        return self.resized_hw[1] / self.frame_hw[1]

    @property
    def gain_y(self) -> float:
        return self.resized_hw[0] / self.frame_hw[0]

    @cached_property
    def _box_mapping(self) -> tuple[npt.NDArray[np.float32], ...]:
        """(offset, gain, frame size) per x1, y1, x2, y2: made once per geometry."""
        height, width = self.frame_hw
        return (
            np.array([self.left, self.top] * 2, np.float32),
            np.array([self.gain_x, self.gain_y] * 2, np.float32),
            np.array([width, height] * 2, np.float32),
        )

    def boxes_to_frame(self, boxes: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """(N, 4) input-pixel boxes → frame pixels, clipped to the frame (Ultralytics'
        scale_boxes)."""
        offset, gain, size = self._box_mapping
        out: npt.NDArray[np.float32] = (boxes - offset) / gain
        np.clip(out, 0, size, out=out)
        return out


def letterbox_geometry(
    frame_hw: tuple[int, int], target_hw: tuple[int, int], stride: int, auto: bool
) -> LetterboxGeometry:
    """Geometry of Ultralytics' LetterBox(center=True, scaleup=True).

    `auto` pads only to a multiple of `stride` (models with dynamic input size).
    """
    height, width = frame_hw
    ratio = min(target_hw[0] / height, target_hw[1] / width)
    resized_w, resized_h = max(round(width * ratio), 1), max(round(height * ratio), 1)
    pad_w, pad_h = target_hw[1] - resized_w, target_hw[0] - resized_h
    if auto:
        pad_w, pad_h = pad_w % stride, pad_h % stride
    half_w, half_h = pad_w / 2, pad_h / 2
    top, bottom = round(half_h - 0.1), round(half_h + 0.1)
    left, right = round(half_w - 0.1), round(half_w + 0.1)
    return LetterboxGeometry(
        frame_hw=(height, width),
        input_hw=(resized_h + top + bottom, resized_w + left + right),
        resized_hw=(resized_h, resized_w),
        top=top,
        left=left,
    )


class LetterboxBuffer:
    """A reusable (1, 3, H, W) float32 input tensor filled by `fill`.

    The padding is written once per geometry: frames of one camera share a geometry, so each
    frame costs one resize, one split into channel planes and one division per plane.
    """

    def __init__(self) -> None:
        self._geometry: LetterboxGeometry | None = None
        self.tensor: npt.NDArray[np.float32] = np.zeros((1, 3, 0, 0), np.float32)
        self._planes: list[npt.NDArray[np.uint8]] = []

    def fill(self, rgb: npt.NDArray[np.uint8], geometry: LetterboxGeometry) -> None:
        """Write `rgb` (H, W, 3 uint8) into the tensor as Ultralytics would (RGB, /255)."""
        resized_h, resized_w = geometry.resized_hw
        if geometry != self._geometry:
            self.tensor = np.full((1, 3, *geometry.input_hw), _PAD_UNIT, np.float32)
            self._planes = [np.empty((resized_h, resized_w), np.uint8) for _ in range(3)]
            self._geometry = geometry
        if rgb.shape[:2] != (resized_h, resized_w):
            size_wh = (resized_w, resized_h)
            rgb = np.asarray(cv2.resize(rgb, size_wh, interpolation=cv2.INTER_LINEAR), np.uint8)
        rows = slice(geometry.top, geometry.top + resized_h)
        cols = slice(geometry.left, geometry.left + resized_w)
        # Contiguous planes divide twice as fast as a transposed view of the interleaved frame;
        # division (not multiplication by 1/255) keeps the values bit-identical to Ultralytics'.
        cv2.split(rgb, mv=self._planes)
        for channel, plane in enumerate(self._planes):
            np.divide(plane, _U8_TO_UNIT, out=self.tensor[0, channel, rows, cols])


class Uint8LetterboxBuffer:
    """A reusable (1, H, W, 3) uint8 letterboxed frame filled by `fill`: one resize per frame.

    For networks that take the frame as it is and convert it to their float input themselves.
    """

    def __init__(self) -> None:
        self._geometry: LetterboxGeometry | None = None
        self.tensor: npt.NDArray[np.uint8] = np.zeros((1, 0, 0, 3), np.uint8)
        self._content: npt.NDArray[np.uint8] = self.tensor[0]
        self._resized: npt.NDArray[np.uint8] | None = None

    def fill(self, rgb: npt.NDArray[np.uint8], geometry: LetterboxGeometry) -> None:
        """Write `rgb` (H, W, 3 uint8) into the frame as Ultralytics' LetterBox would."""
        resized_h, resized_w = geometry.resized_hw
        if geometry != self._geometry:
            self.tensor = np.full((1, *geometry.input_hw, 3), PAD_VALUE, np.uint8)
            rows = slice(geometry.top, geometry.top + resized_h)
            cols = slice(geometry.left, geometry.left + resized_w)
            self._content = self.tensor[0, rows, cols]
            # Padding above and below leaves the content one contiguous block that OpenCV
            # resizes into directly; padding at the sides needs a resize, then a copy.
            contiguous = self._content.flags.c_contiguous
            self._resized = None if contiguous else np.empty_like(self._content)
            self._geometry = geometry
        if rgb.shape[:2] == (resized_h, resized_w):
            self._content[...] = rgb
            return
        target = self._content if self._resized is None else self._resized
        # At exactly half size bilinear weights are all 1/2 and OpenCV's fixed-point bilinear
        # gives (a + b + c + d + 2) >> 2, the 2 x 2 area mean's rounding: the same bytes,
        # from its vectorised area path (a 640 x 480 camera at 320: 0.08 ms instead of 0.11).
        half = rgb.shape[0] == 2 * resized_h and rgb.shape[1] == 2 * resized_w
        interpolation = cv2.INTER_AREA if half else cv2.INTER_LINEAR
        cv2.resize(rgb, (resized_w, resized_h), dst=target, interpolation=interpolation)
        if self._resized is not None:
            self._content[...] = self._resized
