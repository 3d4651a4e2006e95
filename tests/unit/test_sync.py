"""Approximate-time matching of camera streams and bounded buffers."""

from __future__ import annotations

from rl_deploy.sync import FrameBuffer, JointStates, Stamped, match_newest, unmatched_reason

MS = 1_000_000


def buffer(stamps_ms: list[int], depth: int = 8) -> FrameBuffer[int]:
    frames: FrameBuffer[int] = FrameBuffer(depth)
    for stamp in stamps_ms:
        frames.push(Stamped(stamp, stamp * MS, stamp * MS))
    return frames


def test_newest_consistent_set_is_chosen():
    depth = buffer([0, 33, 66, 100])
    masks = buffer([1, 34, 70])  # 100 has no partner yet
    matched = match_newest(depth, {"masks": masks}, slop_ns=10 * MS)
    assert matched is not None
    anchor, partners = matched
    assert anchor.value == 66
    assert partners["masks"].value == 70


def test_no_match_outside_slop():
    assert match_newest(buffer([0, 100]), {"m": buffer([50])}, slop_ns=10 * MS) is None


def test_unmatched_reason_names_the_silent_stream():
    reason = unmatched_reason("/depth", buffer([0, 100]), {"/seg": buffer([])})
    assert reason == "no frame received yet on ['/seg']"


def test_unmatched_reason_gives_the_newest_stamps():
    reason = unmatched_reason("/depth", buffer([0, 100]), {"/seg": buffer([2050])})
    assert "/depth 0.100" in reason and "/seg 2.050" in reason


def test_buffer_is_bounded_old_frames_dropped():
    frames = buffer(list(range(100)), depth=4)
    assert [f.value for f in frames.newest_first()] == [99, 98, 97, 96]


def test_arrival_after_now_is_stale_not_fresh():
    frame = Stamped(0, 0, 100 * MS)
    assert frame.fresh(100 * MS, 50 * MS) and frame.fresh(150 * MS, 50 * MS)
    assert not frame.fresh(151 * MS, 50 * MS)
    assert not frame.fresh(99 * MS, 50 * MS)  # the host's clock went back


def test_drop_after_keeps_what_arrived_by_now():
    frames = buffer([10, 20, 30])
    assert not frames.drop_after(30 * MS)
    assert frames.drop_after(15 * MS)
    assert [frame.value for frame in frames.newest_first()] == [10]


def test_joint_states_merge_per_joint_and_age_by_the_oldest():
    joints = JointStates(("lift", "arm"))
    joints.update({"arm": 0.1, "wheel": 3.0}, stamp_ns=0, arrival_ns=0)
    assert joints.missing() == ["lift"] and joints.oldest() is None
    joints.update({"lift": 0.4}, stamp_ns=90 * MS, arrival_ns=100 * MS)
    assert joints.positions() == {"arm": 0.1, "lift": 0.4}  # unneeded joints are not kept
    oldest = joints.oldest()
    assert oldest is not None and oldest.arrival_ns == 0
    assert joints.stale(now_ns=200 * MS, timeout_ns=150 * MS) == ["arm"]
    assert joints.drop_after(50 * MS)  # the clock went back: lift arrived "later"
    assert joints.missing() == ["lift"] and not joints.drop_after(50 * MS)
    joints.drop(["arm"])
    assert joints.positions() == {}
