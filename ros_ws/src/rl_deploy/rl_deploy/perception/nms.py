"""Class-aware non-maximum suppression, as Ultralytics runs it (torchvision's greedy NMS).

Pure numpy on the few candidates above the confidence threshold; float32 like the reference, so
the kept set is the same box for box.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

CLASS_OFFSET_PX = np.float32(7680.0)  # shifts each class's boxes apart so one NMS pass is per class


PAIRWISE_MAX = 64  # candidates up to which all IoUs are computed at once (M² small arrays)


def nms_xyxy(
    boxes: npt.NDArray[np.float32],
    scores: npt.NDArray[np.float32],
    iou_threshold: float,
    max_keep: int | None = None,
) -> npt.NDArray[np.intp]:
    """Indices of the boxes kept by greedy NMS, best score first (at most `max_keep`).

    boxes: (N, 4) float32 x1, y1, x2, y2. A box is dropped when its IoU with a kept, better
    box is strictly above `iou_threshold`. A frame's few candidates get every IoU in one pass
    (a dozen numpy calls instead of a dozen per kept box); many get the row-by-row loop. Both
    compute each IoU with the same float32 operations, so they keep the same boxes.
    """
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = np.ascontiguousarray(boxes[order].T)
    areas = (x2 - x1) * (y2 - y1)
    threshold = np.float32(iou_threshold)
    if len(order) <= PAIRWISE_MAX:
        return _greedy_pairwise(order, (x1, y1, x2, y2), areas, threshold, max_keep)
    keep: list[int] = []
    alive = np.ones(len(order), dtype=np.bool_)
    for i in range(len(order)):
        if not alive[i]:
            continue
        keep.append(int(order[i]))
        if len(keep) == max_keep:
            break
        rest = slice(i + 1, None)
        width = np.maximum(np.float32(0), np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        height = np.maximum(
            np.float32(0), np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest])
        )
        inter = width * height
        iou = inter / (areas[i] + areas[rest] - inter)
        alive[rest] &= ~(iou > threshold)
    return np.asarray(keep, dtype=np.intp)


def _greedy_pairwise(
    order: npt.NDArray[np.intp],
    corners: tuple[npt.NDArray[np.float32], ...],
    areas: npt.NDArray[np.float32],
    threshold: np.float32,
    max_keep: int | None,
) -> npt.NDArray[np.intp]:
    x1, y1, x2, y2 = corners
    zero = np.float32(0)
    width = np.maximum(zero, np.minimum.outer(x2, x2) - np.maximum.outer(x1, x1))
    height = np.maximum(zero, np.minimum.outer(y2, y2) - np.maximum.outer(y1, y1))
    inter = width * height
    suppresses = (inter / (np.add.outer(areas, areas) - inter) > threshold).tolist()
    keep: list[int] = []
    alive = [True] * len(order)
    for i, row in enumerate(suppresses):
        if not alive[i]:
            continue
        keep.append(i)
        if len(keep) == max_keep:
            break
        for j in range(i + 1, len(row)):
            if row[j]:
                alive[j] = False
    return np.asarray(order[keep], dtype=np.intp)


def class_aware_nms(
    boxes: npt.NDArray[np.float32],
    scores: npt.NDArray[np.float32],
    class_ids: npt.NDArray[np.int64],
    iou_threshold: float,
    max_det: int,
) -> npt.NDArray[np.intp]:
    """NMS within each class; at most `max_det` indices, best score first."""
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.intp)
    shifted = boxes + class_ids.astype(np.float32)[:, None] * CLASS_OFFSET_PX
    return nms_xyxy(shifted, scores, iou_threshold, max_det)
