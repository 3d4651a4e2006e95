"""Approximate-time matching of camera streams and bounded buffers."""

from __future__ import annotations

from rl_deploy.sync import (
    CLOCK_STEP_NS,
    FrameBuffer,
    JointStates,
    Stamped,
    match_newest,
    unmatched_reason,
)

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


def test_a_clock_step_back_is_noise_and_a_longer_one_a_reset():
    frame = Stamped(0, 0, 1000 * MS)
    assert frame.fresh(1000 * MS, 50 * MS) and frame.fresh(1050 * MS, 50 * MS)
    assert not frame.fresh(1051 * MS, 50 * MS)
    step = CLOCK_STEP_NS // MS
    # NTP stepping the host clock back a little: still fresh, and not from before a reset.
    assert frame.fresh((1000 - step) * MS, 50 * MS) and not frame.after((1000 - step) * MS)
    # Further back (sim time restarting, a bag looping): stale, and from before the reset.
    assert not frame.fresh((999 - step) * MS, 50 * MS) and frame.after((999 - step) * MS)


def test_drop_after_keeps_what_arrived_by_now_and_a_clock_step():
    frames = buffer([1000, 2000, 3000])
    assert not frames.drop_after(3000 * MS - CLOCK_STEP_NS)
    assert frames.drop_after(1500 * MS)
    assert [frame.value for frame in frames.newest_first()] == [1000]


def test_joint_states_merge_per_joint_and_age_by_the_oldest():
    joints = JointStates(("lift", "arm"))
    joints.update({"arm": 0.1, "wheel": 3.0}, stamp_ns=0, arrival_ns=0)
    assert joints.missing() == ["lift"] and joints.oldest() is None
    joints.update({"lift": 0.4}, stamp_ns=90 * MS, arrival_ns=100 * MS)
    assert joints.positions() == {"arm": 0.1, "lift": 0.4}  # unneeded joints are not kept
    oldest = joints.oldest()
    assert oldest is not None and oldest.arrival_ns == 0
    assert joints.stale(now_ns=200 * MS, timeout_ns=150 * MS) == ["arm"]
    assert not joints.drop_after(100 * MS - CLOCK_STEP_NS)  # a clock step: noise
    back_ns = 100 * MS - CLOCK_STEP_NS - 50 * MS  # the clock went back: lift arrived "later"
    assert joints.drop_after(back_ns)
    assert joints.missing() == ["lift"] and not joints.drop_after(back_ns)
    joints.drop(["arm"])
    assert joints.positions() == {}
