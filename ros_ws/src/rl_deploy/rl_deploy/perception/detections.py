"""What the detector found in one frame: boxes, scores, classes and undecoded mask coefficients.

Masks are decoded on demand (see perception.masks), only for the instances and at the size asked.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Detections:
    """Instances after NMS, best score first, in the source frame's pixel coordinates."""

    boxes_xyxy: npt.NDArray[np.float32]  # (K, 4) x1, y1, x2, y2 in frame pixels, clipped
    scores: npt.NDArray[np.float32]  # (K,) confidence in [0, 1]
    class_ids: npt.NDArray[np.intp]  # (K,) index into `names`
    mask_coeffs: npt.NDArray[np.float32]  # (K, P) prototype coefficients
    protos: npt.NDArray[np.float32]  # (P, Hp, Wp) mask prototypes of this frame
    frame_hw: tuple[int, int]  # source frame (height, width), pixels
    names: tuple[str, ...]  # class names of the model, by id
    depth_m: npt.NDArray[np.float32] | None = None  # (H, W) aligned depth, metres, if given

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def class_names(self) -> list[str]:
        return [self.names[i] for i in self.class_ids]

    def indices_of(self, classes: tuple[str, ...] | list[str]) -> npt.NDArray[np.intp]:
        """Indices of the instances whose class is one of `classes`, best score first."""
        ids = {self.names.index(name) for name in classes if name in self.names}
        # A handful of instances: a Python scan is a tenth of np.isin's cost.
        found = [index for index, class_id in enumerate(self.class_ids.tolist()) if class_id in ids]
        return np.array(found, dtype=np.intp)
