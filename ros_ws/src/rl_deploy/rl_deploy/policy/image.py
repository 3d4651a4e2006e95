"""Depth and mask preprocessing with the geometry of the card: resize, crop, fill, clip, scale.

Depth and masks of one camera go through the same geometry, so their pixels stay aligned.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from rl_deploy.errors import DecodeError
from rl_deploy.policy.card import DepthPreprocess, ImageGeometry

_CV2_INTERPOLATION = {
    "area": cv2.INTER_AREA,
    "nearest": cv2.INTER_NEAREST,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
}
# Sentinels such as 65.535 m (uint16 65535 / 1000) are matched with this relative tolerance,
# because float32 division and multiplication round them differently by an ulp or two.
SENTINEL_RTOL = 1e-6


@lru_cache(maxsize=64)
def resize_plan(
    src_height: int, src_width: int, geometry: ImageGeometry
) -> tuple[int, int, int, int]:
    """(resized_height, resized_width, crop_top, crop_left) for a source image size.

    shortest_edge: the shorter side becomes `size`, the longer one `long * size // short`
    (truncated, as torchvision does), then the output is cut from the centre: top/left offsets
    are `(resized - output) // 2`. stretch: resized straight to the output size.
    """
    if geometry.mode == "stretch":
        return geometry.height, geometry.width, 0, 0
    short = min(src_height, src_width)
    if src_height <= src_width:
        height, width = geometry.size, src_width * geometry.size // short
    else:
        height, width = src_height * geometry.size // short, geometry.size
    if height < geometry.height or width < geometry.width:
        raise DecodeError(
            f"image {src_width}x{src_height}: shortest_edge {geometry.size} gives "
            f"{width}x{height}, smaller than the {geometry.width}x{geometry.height} crop"
        )
    return height, width, (height - geometry.height) // 2, (width - geometry.width) // 2


def _as_2d(image: npt.NDArray[np.generic], what: str) -> npt.NDArray[np.generic]:
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim != 2 or image.shape[0] < 1 or image.shape[1] < 1:
        raise DecodeError(f"{what}: expected an (H, W) image, got shape {image.shape}")
    return image


def _resize_crop(
    image: npt.NDArray[Any], geometry: ImageGeometry, interpolation: int
) -> npt.NDArray[Any]:
    height, width, top, left = resize_plan(image.shape[0], image.shape[1], geometry)
    if (height, width) != image.shape:
        image = cv2.resize(image, (width, height), interpolation=interpolation)
    return image[top : top + geometry.height, left : left + geometry.width]


def preprocess_depth(
    depth_m: npt.NDArray[np.floating], depth: DepthPreprocess, geometry: ImageGeometry
) -> npt.NDArray[np.float32]:
    """(H, W) metres → (height, width) float32: invalid → fill, clip, scale, resize, crop."""
    image = _as_2d(depth_m, "depth_m")
    if _fill_and_clip_change_nothing(image, depth):
        # The common frame (16UC1, 0 = no reading, fill 0): the same values in fewer passes.
        values = np.multiply(image, np.float32(depth.scale), dtype=np.float32)
    else:
        values = np.array(image, dtype=np.float32, copy=True)
        invalid = ~np.isfinite(values)
        for sentinel in depth.invalid_values:
            if sentinel == 0.0:
                invalid |= values == 0.0
            else:
                invalid |= np.abs(values - np.float32(sentinel)) <= abs(sentinel) * SENTINEL_RTOL
        values[invalid] = depth.fill_m
        np.clip(values, depth.min_m, depth.max_m, out=values)
        values *= np.float32(depth.scale)
    resized = _resize_crop(values, geometry, _CV2_INTERPOLATION[geometry.interpolation])
    return np.ascontiguousarray(resized, dtype=np.float32)


def _fill_and_clip_change_nothing(image: npt.NDArray[np.generic], depth: DepthPreprocess) -> bool:
    """True when every pixel is finite and inside [min_m, max_m], and filling an invalid value
    writes that same value (the card's invalid values are all 0 and so is its fill)."""
    if any(sentinel != 0.0 for sentinel in depth.invalid_values):
        return False
    if depth.invalid_values and depth.fill_m != 0.0:
        return False
    # min/max are NaN when any pixel is: the comparisons then fail, as they should.
    return bool(depth.min_m <= image.min() and image.max() <= depth.max_m)


def preprocess_mask(
    mask: npt.NDArray[np.generic], geometry: ImageGeometry
) -> npt.NDArray[np.float32]:
    """(H, W) mask, nonzero = object → (height, width) float32 in {0, 1}, nearest neighbour."""
    mask = _as_2d(mask, "mask")
    if mask.dtype == np.bool_:
        mask = mask.view(np.uint8)
    elif mask.dtype != np.uint8:
        mask = (mask != 0).astype(np.uint8)
    # Nearest-neighbour keeps source values, so binarising after the resize is exact and cheaper.
    resized = _resize_crop(mask, geometry, cv2.INTER_NEAREST)
    binary: npt.NDArray[np.float32] = (resized != 0).astype(np.float32)
    return binary
