"""Property tests of the card loader: any edit of a shipped card parses or gives CardError."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import yaml
from fuzz_helpers import FUZZ, REPO, corrupted
from hypothesis import given
from hypothesis import strategies as st

from rl_deploy.errors import CardError
from rl_deploy.policy import PolicyCard, parse_card

CARDS = {name: REPO / "models" / f"{name}.yaml" for name in ("example_reach", "ovmm_nav")}
DOCUMENTS = {name: yaml.safe_load(path.read_text()) for name, path in CARDS.items()}
ODD = st.one_of(
    st.sampled_from([None, "", [], {}, True, [[]], "nan", -1, 0, 2**70]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=5),
    st.lists(st.integers(-3, 3), max_size=4),
)


@st.composite
def edited_card(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A shipped card with one to three values deleted, replaced or doubled, anywhere."""
    name = draw(st.sampled_from(sorted(DOCUMENTS)))
    document = copy.deepcopy(DOCUMENTS[name])
    for _ in range(draw(st.integers(1, 3))):
        node: Any = document
        while True:
            keys = list(node) if isinstance(node, dict) else list(range(len(node)))
            if not keys:
                break
            key = draw(st.sampled_from(keys))
            child = node[key]
            if isinstance(child, dict | list) and child and draw(st.booleans()):
                node = child
                continue
            action = draw(st.sampled_from(["delete", "replace", "double"]))
            if action == "delete":
                del node[key]
            elif action == "replace":
                node[key] = draw(ODD)
            else:
                node[key] = child + child if isinstance(child, list) else [child, child]
            break
    return name, document


@FUZZ
@given(edited_card())
def test_edited_cards_parse_or_give_card_error(edited: tuple[str, dict[str, Any]]):
    name, document = edited
    try:
        card = parse_card(document, CARDS[name].parent)
    except CardError:
        return
    assert isinstance(card, PolicyCard)  # an edit that keeps the card valid is fine
    assert card.control_rate_hz > 0 and card.inputs and card.outputs


@FUZZ
@given(
    st.sampled_from(sorted(CARDS)).flatmap(
        lambda n: st.tuples(st.just(n), corrupted(CARDS[n].read_bytes()))
    )
)
def test_corrupted_card_text_parses_or_gives_card_error(case: tuple[str, bytes]):
    name, text = case
    with contextlib.suppress(CardError):
        parse_card(text.decode("utf-8", errors="replace"), CARDS[name].parent)


def test_the_shipped_cards_parse():
    for name, document in DOCUMENTS.items():
        assert parse_card(document, CARDS[name].parent).name == name
