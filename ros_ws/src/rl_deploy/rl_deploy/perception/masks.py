"""Instance and class masks from YOLO-seg prototypes, the same pixels as Ultralytics' retina masks.

Prototypes x coefficients give logits; the letterbox content is cropped, bilinearly resized to
the output size (sampled only inside each box), cropped to the box and thresholded at 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
import numpy.typing as npt

from rl_deploy.perception.detections import Detections

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class ProtoContent:
    """Where the frame lies in the prototype grid, as Ultralytics' process_mask_native finds it."""

    upsample: int  # prototypes are first upsampled by this (1, 2 or 4) so the crop is whole pixels
    top: int  # crop rows [top, bottom) and columns [left, right) of the upsampled grid
    bottom: int
    left: int
    right: int


def proto_content(proto_hw: tuple[int, int], frame_hw: tuple[int, int]) -> ProtoContent:
    """Crop of the (upsampled) prototype grid that covers the frame (letterbox padding removed).

    Assumes the network input is 4x the prototype grid, as in every YOLO-seg head.
    """
    proto_h, proto_w = proto_hw
    height, width = frame_hw
    gain = min(4 * proto_h / height, 4 * proto_w / width)
    pad = (4 * proto_h - max(round(height * gain), 1)) | (4 * proto_w - max(round(width * gain), 1))
    # Padding in input pixels that is not a multiple of 4 (per side) falls inside a prototype
    # pixel; Ultralytics then upsamples by 2 or 4 first so that the crop is on whole pixels.
    upsample = 4 // math.gcd(4, pad | pad // 2)
    grid_h, grid_w = proto_h * upsample, proto_w * upsample
    gain = min(grid_h / height, grid_w / width)
    content_h, content_w = max(round(height * gain), 1), max(round(width * gain), 1)
    top = round((grid_h - content_h) / 2 - 0.1)
    left = round((grid_w - content_w) / 2 - 0.1)
    return ProtoContent(upsample, top, top + content_h, left, left + content_w)


@dataclass(frozen=True)
class _Taps:
    """Bilinear sampling on one axis: out[i] = in[lower[i]] w_lower[i] + in[upper[i]] w_upper[i]."""

    lower: npt.NDArray[np.intp]
    upper: npt.NDArray[np.intp]
    w_lower: F32
    w_upper: F32

    def window(self, start: int, stop: int) -> _Taps:
        """The taps of output samples [start, stop)."""
        part = slice(start, stop)
        return _Taps(self.lower[part], self.upper[part], self.w_lower[part], self.w_upper[part])


def _taps(in_len: int, out_len: int, samples: npt.NDArray[np.intp]) -> _Taps:
    """Taps for output pixels `samples` of a resize in_len → out_len (torch, no corners)."""
    scale = in_len / out_len
    source = np.maximum((samples + 0.5) * scale - 0.5, 0.0)
    lower = np.minimum(source.astype(np.intp), in_len - 1)
    w_upper = (source - lower).astype(np.float32)
    return _Taps(lower, np.minimum(lower + 1, in_len - 1), np.float32(1) - w_upper, w_upper)


@lru_cache(maxsize=32)
def _cached_taps(in_len: int, out_len: int, samples: bytes | None) -> _Taps:
    """_taps of a camera's axis, at `samples` (None: every pixel): the same every frame."""
    pixels = np.arange(out_len) if samples is None else np.frombuffer(samples, np.intp)
    return _taps(in_len, out_len, pixels)


def _upsample(logits: F32, factor: int) -> F32:
    """(K, H, W) logits upsampled by an integer factor, bilinear (torch scale_factor semantics)."""
    if factor == 1:
        return logits
    _, height, width = logits.shape
    ty = _taps(height, height * factor, np.arange(height * factor))
    tx = _taps(width, width * factor, np.arange(width * factor))
    rows = logits[:, ty.lower] * ty.w_lower[:, None] + logits[:, ty.upper] * ty.w_upper[:, None]
    out = rows[:, :, tx.lower] * tx.w_lower + rows[:, :, tx.upper] * tx.w_upper
    return np.asarray(out, np.float32)


def _box_window(
    box: npt.NDArray[np.float32], sx: float, sy: float, size_hw: tuple[int, int]
) -> tuple[int, int, int, int]:
    """Pixel rows/columns [y0, y1) x [x0, x1) whose index lies in [x1, x2) of the scaled box."""
    height, width = size_hw
    x_lo = min(max(math.ceil(float(box[0]) * sx), 0), width)
    x_hi = min(max(math.ceil(float(box[2]) * sx), 0), width)
    y_lo = min(max(math.ceil(float(box[1]) * sy), 0), height)
    y_hi = min(max(math.ceil(float(box[3]) * sy), 0), height)
    return y_lo, y_hi, x_lo, x_hi


def decode_masks(
    detections: Detections,
    indices: Sequence[int] | npt.NDArray[np.intp] | None = None,
    size_hw: tuple[int, int] | None = None,
) -> npt.NDArray[np.bool_]:
    """Binary masks (k, H, W) of the chosen instances (all by default) at `size_hw` (frame size).

    Only the pixels inside each instance's box are computed: at camera resolution this is most
    of the saving over decoding whole frames.
    """
    chosen = np.arange(len(detections)) if indices is None else np.asarray(indices, dtype=np.intp)
    size = detections.frame_hw if size_hw is None else size_hw
    out = np.zeros((len(chosen), *size), dtype=np.bool_)
    for slot, (window, values) in enumerate(_instance_logits(detections, chosen, size, None)):
        y_lo, y_hi, x_lo, x_hi = window
        out[slot, y_lo:y_hi, x_lo:x_hi] = values > 0
    return out


PixelGrid = tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]  # rows, columns (ascending)


def _instance_logits(
    detections: Detections,
    chosen: npt.NDArray[np.intp],
    size_hw: tuple[int, int],
    at: PixelGrid | None,
) -> list[tuple[tuple[int, int, int, int], F32]]:
    """Per chosen instance: its box window in the output and the mask logits inside it.

    The output is the mask at `size_hw`, read at the ascending rows and columns `at` (None:
    every pixel). Each pixel's value depends only on its own coordinates, so a sampled mask is
    the whole one, indexed.
    """
    if len(chosen) == 0:
        return []
    n_protos, proto_h, proto_w = detections.protos.shape
    content = proto_content((proto_h, proto_w), detections.frame_hw)
    flat = detections.protos.reshape(n_protos, -1)
    # einsum, not matmul: BLAS threads a product this size and, beside the detector's spinning
    # workers, took 2-12 ms for it right after a 640 run (einsum: 0.3 ms, single-threaded).
    logits = np.einsum("kp,pn->kn", detections.mask_coeffs[chosen], flat).reshape(
        len(chosen), proto_h, proto_w
    )
    grid = _upsample(logits, content.upsample)[
        :, content.top : content.bottom, content.left : content.right
    ]
    crop_h, crop_w = grid.shape[1:]
    height, width = size_hw
    sx, sy = width / detections.frame_hw[1], height / detections.frame_hw[0]
    rows, cols = (None, None) if at is None else at
    taps_y = _cached_taps(crop_h, height, None if rows is None else _key(rows))
    taps_x = _cached_taps(crop_w, width, None if cols is None else _key(cols))
    results = []
    for slot, index in enumerate(chosen):
        # The box's pixels, then (when sampled) the samples that fall inside it. Right after a
        # network run each numpy call costs ten times its warm time: whole masks make none here.
        y_lo, y_hi, x_lo, x_hi = _box_window(detections.boxes_xyxy[index], sx, sy, size_hw)
        if rows is not None and cols is not None:
            y_lo, y_hi = (int(i) for i in np.searchsorted(rows, (y_lo, y_hi)))
            x_lo, x_hi = (int(i) for i in np.searchsorted(cols, (x_lo, x_hi)))
        window = (y_lo, y_hi, x_lo, x_hi)  # in output samples
        if y_hi <= y_lo or x_hi <= x_lo:
            results.append(
                (window, np.zeros((max(y_hi - y_lo, 0), max(x_hi - x_lo, 0)), np.float32))
            )
            continue
        ty, tx = taps_y.window(y_lo, y_hi), taps_x.window(x_lo, x_hi)
        # Along y over the instance's rows, then along x at its columns: the same float32
        # operations per pixel as over the whole mask.
        plane = grid[slot]
        along_y = plane[ty.lower] * ty.w_lower[:, None] + plane[ty.upper] * ty.w_upper[:, None]
        values = along_y[:, tx.lower] * tx.w_lower + along_y[:, tx.upper] * tx.w_upper
        results.append((window, values))
    return results


def _key(samples: npt.NDArray[np.intp]) -> bytes:
    return np.asarray(samples, np.intp).tobytes()


def depth_filter(
    mask: npt.NDArray[np.bool_], depth_m: F32, tolerance_m: float
) -> npt.NDArray[np.bool_]:
    """Keep the mask pixels within `tolerance_m` of the instance's median valid depth.

    Removes background seen through or around an object (HomeRobot filters detector masks the
    same way). Pixels without a valid depth (0, NaN, inf) are dropped; a mask with no valid depth
    at all is kept as it is, since nothing says which of its pixels are wrong.
    """
    values = depth_m[mask]
    valid = np.isfinite(values) & (values > 0)
    if not valid.any():
        return mask
    median = np.float32(np.median(values[valid]))
    keep = np.zeros_like(mask)
    keep[mask] = valid & (np.abs(values - median) <= np.float32(tolerance_m))
    return keep


def class_masks(
    detections: Detections,
    classes: Sequence[str],
    size: tuple[int, int] | None = None,
    depth_tolerance_m: float | None = None,
    at: PixelGrid | None = None,
) -> dict[str, npt.NDArray[np.uint8]]:
    """One (H, W) uint8 mask (0/1) per class in `classes`: the union of its instances.

    `size` is (height, width), the policy's mask resolution (default: the frame's). Only the
    instances of these classes are decoded. With `depth_tolerance_m` and depth in `detections`,
    each instance is depth-filtered around its median before the union. `at` (rows, columns,
    ascending) reads the masks at those pixels only: `whole[np.ix_(rows, cols)]`, computed there.
    """
    size_hw = detections.frame_hw if size is None else (int(size[0]), int(size[1]))
    filtered = depth_tolerance_m is not None and detections.depth_m is not None
    if at is not None and filtered:  # the median of an instance needs all of its pixels
        whole = class_masks(detections, classes, size_hw, depth_tolerance_m)
        return {name: mask[np.ix_(*at)] for name, mask in whole.items()}
    out_hw = size_hw if at is None else (len(at[0]), len(at[1]))
    out = {name: np.zeros(out_hw, np.uint8) for name in classes}
    chosen = detections.indices_of(list(classes))
    if len(chosen) == 0:
        return out
    depth = None
    if filtered and detections.depth_m is not None:
        depth = detections.depth_m
        if depth.shape != size_hw:
            size_wh = (size_hw[1], size_hw[0])
            depth = np.asarray(
                cv2.resize(depth, size_wh, interpolation=cv2.INTER_NEAREST), dtype=np.float32
            )
    for index, (window, values) in zip(
        chosen, _instance_logits(detections, chosen, size_hw, at), strict=True
    ):
        y_lo, y_hi, x_lo, x_hi = window
        inside = values > 0
        if depth is not None and depth_tolerance_m is not None:
            inside = depth_filter(inside, depth[y_lo:y_hi, x_lo:x_hi], depth_tolerance_m)
        target = out[detections.names[detections.class_ids[index]]][y_lo:y_hi, x_lo:x_hi]
        target |= inside.view(np.uint8)
    return out
