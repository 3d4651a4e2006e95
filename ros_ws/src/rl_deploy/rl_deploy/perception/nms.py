"""Class-aware non-maximum suppression, as Ultralytics runs it (torchvision's greedy NMS).

Pure numpy on the few candidates above the confidence threshold; float32 like the reference, so
the kept set is the same box for box.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

CLASS_OFFSET_PX = np.float32(7680.0)  # shifts each class's boxes apart so one NMS pass is per class


def nms_xyxy(
    boxes: npt.NDArray[np.float32],
    scores: npt.NDArray[np.float32],
    iou_threshold: float,
    max_keep: int | None = None,
) -> npt.NDArray[np.intp]:
    """Indices of the boxes kept by greedy NMS, best score first (at most `max_keep`).

    boxes: (N, 4) float32 x1, y1, x2, y2. A box is dropped when its IoU with a kept, better
    box is strictly above `iou_threshold`.
    """
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = (np.ascontiguousarray(boxes[order, i]) for i in range(4))
    areas = (x2 - x1) * (y2 - y1)
    keep: list[int] = []
    alive = np.ones(len(order), dtype=np.bool_)
    threshold = np.float32(iou_threshold)
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
