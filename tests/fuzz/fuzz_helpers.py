"""Shared parts of the property tests: example budgets, the synthetic robot, corruption."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from rl_deploy.bench.world import SyntheticWorld
from rl_deploy.replay.synthetic import SyntheticBagSpec

REPO = Path(__file__).resolve().parents[2]

# Modest budgets keep `make test` fast; `rl-deploy bench fuzz --seconds N` runs for longer.
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
FUZZ_SLOW = settings(FUZZ, max_examples=25)

ODD_FLOATS = st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e300, -0.0, 5e-324])
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True), ODD_FLOATS)


@cache
def world() -> SyntheticWorld:
    return SyntheticWorld(SyntheticBagSpec(width=32, height=24), frames=2)


@st.composite
def corrupted(draw: st.DrawFn, data: bytes) -> bytes:
    """`data` with one to four edits: byte overwrites, cuts, inserts, NaN/huge values."""
    buffer = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(len(buffer) - 1, 0)))
        kind = draw(st.sampled_from(["set", "cut", "insert", "length", "nan64"]))
        if kind == "set" and buffer:
            buffer[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del buffer[at:]
        elif kind == "insert":
            buffer[at:at] = draw(st.binary(min_size=1, max_size=32))
        elif kind == "length" and len(buffer) >= at + 4:
            value = draw(st.sampled_from([0xFFFFFFFF, 0x7FFFFFFF, len(buffer) + 1, 0]))
            buffer[at : at + 4] = value.to_bytes(4, "little")
        elif kind == "nan64" and len(buffer) >= at + 8:
            buffer[at : at + 8] = bytes.fromhex("000000000000f87f")  # float64 NaN
    return bytes(buffer)
