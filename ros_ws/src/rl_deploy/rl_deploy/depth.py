"""A depth frame kept in the camera's own units until someone needs metres.

Most depth cameras send 16UC1 millimetres. Converting the whole frame to float metres on arrival
costs two frame-sized passes (and twice the bytes) that the policy, which looks at the frame at
a sixteenth of its size, does not need: it resizes first and scales what is left.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np
import numpy.typing as npt

MM_PER_M = np.float32(1000.0)
# Sentinels such as 65.535 m (uint16 65535 / 1000) are matched with this relative tolerance,
# because float32 division and multiplication round them differently by an ulp or two.
SENTINEL_RTOL = 1e-6


def invalid_depth(
    values_m: npt.NDArray[np.float32], sentinels: tuple[float, ...]
) -> npt.NDArray[np.bool_]:
    """Where metres carry no reading: NaN and ±inf always, and each of `sentinels`."""
    invalid = ~np.isfinite(values_m)
    for sentinel in sentinels:
        if sentinel == 0.0:
            invalid |= values_m == 0.0
        else:
            invalid |= np.abs(values_m - np.float32(sentinel)) <= abs(sentinel) * SENTINEL_RTOL
    return invalid


@dataclass(frozen=True)
class DepthImage:
    """(H, W) depth as sent: uint16 millimetres (0 = no reading) or float32 metres."""

    raw: npt.NDArray[np.uint16] | npt.NDArray[np.float32]

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.raw.shape)

    @property
    def millimetres(self) -> bool:
        return self.raw.dtype == np.uint16

    @cached_property
    def metres(self) -> npt.NDArray[np.float32]:
        """A new (H, W) float32 array in metres: 0 stays 0, NaN stays NaN, inf stays inf."""
        if self.millimetres:
            return np.divide(self.raw, MM_PER_M, dtype=np.float32)
        return np.array(self.raw, dtype=np.float32, order="C")

    def valid_fraction(self, sentinels: tuple[float, ...] = ()) -> float:
        """Share of pixels with a reading: finite, > 0, and none of `sentinels` (metres: a
        card's invalid_values, such as 65.535 for a saturated 16UC1 camera)."""
        sentinels = tuple(s for s in sentinels if s != 0.0)
        if self.millimetres:  # integers are always finite: count in the camera's own units
            raw = self.raw.reshape(self.raw.shape[0], -1)
            valid = int(cv2.countNonZero(raw))
            for millimetres in _whole_millimetres(sentinels):
                valid -= int(np.count_nonzero(raw == millimetres))
        else:
            metres = self.metres
            with np.errstate(invalid="ignore"):
                reading = metres > 0
            valid = int(np.count_nonzero(reading & ~invalid_depth(metres, sentinels)))
        return valid / max(self.raw.size, 1)


def _whole_millimetres(sentinels: tuple[float, ...]) -> list[int]:
    """The sentinels (m) a uint16 millimetre value can equal, within SENTINEL_RTOL."""
    found = []
    for sentinel in sentinels:
        millimetres = sentinel * float(MM_PER_M)
        whole = round(millimetres)
        if 0 < whole <= 65535 and abs(millimetres - whole) <= abs(millimetres) * SENTINEL_RTOL:
            found.append(whole)
    return found
