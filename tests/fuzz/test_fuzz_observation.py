"""Property tests of the observation builder: odd robot data gives feeds exactly as the card
says, or the project's own error; never a crash."""

from __future__ import annotations

import numpy as np
from fuzz_helpers import FLOATS, FUZZ, REPO
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rl_deploy.errors import RlDeployError
from rl_deploy.geometry import Pose2D
from rl_deploy.policy import ObservationBuilder, RawObservation, load_card

BUILDERS = [
    ObservationBuilder(load_card(REPO / "models" / f"{n}.yaml"))
    for n in ("example_reach", "ovmm_nav")
]
IMAGE_SHAPES = st.sampled_from([(24, 32), (48, 64), (480, 640), (1, 1), (0, 8), (24, 32, 1), (3,)])


@st.composite
def raw_observation(draw: st.DrawFn, builder: ObservationBuilder) -> RawObservation:
    card = builder.card
    shape = draw(IMAGE_SHAPES)
    depth = draw(
        st.one_of(
            st.none(),
            hnp.arrays(draw(st.sampled_from([np.float32, np.float64, np.uint16])), shape),
        )
    )
    mask_shape = draw(st.one_of(st.just(shape), IMAGE_SHAPES))
    names = draw(st.lists(st.sampled_from([*card.target_classes, "start_receptacle", "x"])))
    masks = {name: draw(hnp.arrays(np.uint8, mask_shape)) for name in names}
    size = draw(st.sampled_from([len(card.joint_names), 0, 1, 11]))
    joints = draw(st.one_of(st.none(), hnp.arrays(np.float64, size, elements=FLOATS)))
    pose = draw(st.one_of(st.none(), st.builds(Pose2D, FLOATS, FLOATS, FLOATS)))
    target = draw(st.sampled_from([*card.target_classes, "sofa", None]))
    return RawObservation(depth, masks, joints, pose, target)


@FUZZ
@given(
    st.sampled_from(range(len(BUILDERS))).flatmap(
        lambda i: st.tuples(st.just(i), raw_observation(BUILDERS[i]))
    ),
    st.one_of(st.booleans(), st.builds(Pose2D, FLOATS, FLOATS, FLOATS)),  # reset: start pose
)
def test_feeds_match_the_card_or_a_typed_error(case, reset: bool | Pose2D):
    index, raw = case
    builder = BUILDERS[index]
    try:
        if reset is not False:
            builder.reset(None if reset is True else reset)
        feeds = builder.build(raw)
    except RlDeployError:
        return
    for spec in builder.card.inputs:
        assert feeds[spec.name].shape == spec.tensor.shape
        assert feeds[spec.name].dtype == np.dtype(spec.tensor.dtype)
        assert np.isfinite(feeds[spec.name]).all(), spec.name
