"""Input bookkeeping for the pipeline: camera streams matched by header stamp, latest values aged,
joint states merged per joint.

Buffers are bounded: a slow consumer drops old frames instead of queueing them.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
# A host clock stepped back by up to this (NTP, chrony) is noise: such small negative ages are
# fresh. Further back is a reset (sim time restarting, a bag looping): what arrived later is
# dropped, or it would look fresh again once the clock gets back there.
CLOCK_STEP_NS = 100_000_000
_ANY_VALUE = object()


@dataclass(frozen=True)
class Stamped(Generic[T]):
    """A decoded value with its header stamp and the time it arrived (host clock)."""

    value: T
    stamp_ns: int  # header stamp
    arrival_ns: int  # host clock when fed
    frame_id: str = ""

    def age_ns(self, now_ns: int) -> int:
        return now_ns - self.arrival_ns

    def fresh(self, now_ns: int, timeout_ns: float) -> bool:
        """Arrived at most `timeout_ns` before `now_ns`. Both are the host's clock, so no skew
        to allow for: an arrival after now is that clock stepping back, noise up to
        CLOCK_STEP_NS, a reset beyond (see `after`)."""
        return -CLOCK_STEP_NS <= self.age_ns(now_ns) <= timeout_ns

    def after(self, now_ns: int) -> bool:
        """Arrived after `now_ns` by more than a clock step: from before the clock went back."""
        return self.arrival_ns - now_ns > CLOCK_STEP_NS


def is_repeat(stamp_ns: int, held: Stamped[Any] | None, value: object = _ANY_VALUE) -> bool:
    """A message stamped like the value held (and stamped at all) is that reading sent again:
    it must not make the value fresher, or a driver stuck re-sending its last message would keep
    the robot moving on it. With `value`, it must also equal the held one (a new value under an
    old stamp is news). Unstamped messages (0) are aged by arrival alone."""
    if held is None or stamp_ns == 0 or stamp_ns != held.stamp_ns:
        return False
    return value is _ANY_VALUE or bool(value == held.value)


class FrameBuffer(Generic[T]):
    """The last few frames of one stream, newest last."""

    def __init__(self, depth: int = 8) -> None:
        self._frames: deque[Stamped[T]] = deque(maxlen=depth)

    def push(self, frame: Stamped[T]) -> None:
        """Keep `frame` as the newest, unless it repeats the newest (see is_repeat)."""
        if not is_repeat(frame.stamp_ns, self.newest()):
            self._frames.append(frame)

    def newest(self) -> Stamped[T] | None:
        return self._frames[-1] if self._frames else None

    def newest_first(self) -> Iterator[Stamped[T]]:
        return reversed(self._frames)

    def nearest(self, stamp_ns: int) -> Stamped[T] | None:
        return min(self._frames, key=lambda f: abs(f.stamp_ns - stamp_ns), default=None)

    def clear(self) -> None:
        self._frames.clear()

    def drop_after(self, now_ns: int) -> bool:
        """Drop the frames from before the clock went back to `now_ns`; True if any."""
        kept = [frame for frame in self._frames if not frame.after(now_ns)]
        if len(kept) == len(self._frames):
            return False
        self._frames = deque(kept, maxlen=self._frames.maxlen)
        return True


class JointStates:
    """The latest position of each needed joint, from whichever message last named it.

    Drivers (arm, gripper, wheels) publish their own joints on one topic: a message updates the
    needed joints it names and leaves the others as their drivers last sent them.
    """

    def __init__(self, needed: Iterable[str]) -> None:
        self.needed: tuple[str, ...] = tuple(dict.fromkeys(needed))
        self.wanted = frozenset(self.needed)
        self._latest: dict[str, Stamped[float]] = {}

    def update(self, positions: Mapping[str, float], stamp_ns: int, arrival_ns: int) -> None:
        for name, position in positions.items():
            # Bounded: a publisher of odd names grows nothing; a repeat refreshes nothing.
            if name in self.wanted and not is_repeat(stamp_ns, self._latest.get(name), position):
                self._latest[name] = Stamped(position, stamp_ns, arrival_ns)

    def drop(self, names: Iterable[str] | None = None) -> None:
        """Forget these joints' values; None: all of them."""
        if names is None:
            self._latest.clear()
            return
        for name in names:
            self._latest.pop(name, None)

    def drop_after(self, now_ns: int) -> bool:
        """Drop the values from before the clock went back to `now_ns`; True if any."""
        future = [name for name, value in self._latest.items() if value.after(now_ns)]
        self.drop(future)
        return bool(future)

    def positions(self) -> dict[str, float]:
        """Every needed joint that has a value."""
        return {name: value.value for name, value in self._latest.items()}

    def missing(self, names: Iterable[str] | None = None) -> list[str]:
        """Those of `names` (default: the needed joints) without a value."""
        return [name for name in self._names(names) if name not in self._latest]

    def oldest(self, names: Iterable[str] | None = None) -> Stamped[float] | None:
        """The value of `names` (default: the needed joints) that arrived first; None if one
        has none. With the values from after now dropped, all are fresh when this one is."""
        try:
            return min((self._latest[name] for name in self._names(names)), key=_arrival)
        except (KeyError, ValueError):  # a joint without value; no names at all
            return None

    def stale(
        self, now_ns: int, timeout_ns: float, names: Iterable[str] | None = None
    ) -> list[str]:
        """Those of `names` (default: the needed joints) whose value is not fresh."""
        return [
            name
            for name in self._names(names)
            if name in self._latest and not self._latest[name].fresh(now_ns, timeout_ns)
        ]

    def _names(self, names: Iterable[str] | None) -> Iterable[str]:
        return self.needed if names is None else names


def _arrival(value: Stamped[Any]) -> int:
    return value.arrival_ns


def match_newest(
    anchor: FrameBuffer[T], others: Mapping[str, FrameBuffer[Any]], slop_ns: int
) -> tuple[Stamped[T], dict[str, Stamped[Any]]] | None:
    """Newest anchor frame that every other stream has a frame within `slop_ns` of.

    This is ROS' approximate-time policy reduced to what a control loop needs: the freshest
    consistent set, not every set.
    """
    for frame in anchor.newest_first():
        matched: dict[str, Stamped[Any]] = {}
        for name, buffer in others.items():
            partner = buffer.nearest(frame.stamp_ns)
            if partner is None or abs(partner.stamp_ns - frame.stamp_ns) > slop_ns:
                break
            matched[name] = partner
        else:
            return frame, matched
    return None


def unmatched_reason(
    anchor_name: str, anchor: FrameBuffer[Any], others: Mapping[str, FrameBuffer[Any]]
) -> str:
    """Why match_newest found nothing: a stream without frames, or how far apart they are."""
    newest = {anchor_name: anchor.newest(), **{name: b.newest() for name, b in others.items()}}
    empty = [name for name, frame in newest.items() if frame is None]
    if empty:
        return f"no frame received yet on {empty}"
    stamps = ", ".join(
        f"{name} {frame.stamp_ns / 1e9:.3f}" for name, frame in newest.items() if frame
    )
    return f"no frame set within the sync slop; newest stamps (s): {stamps}"
