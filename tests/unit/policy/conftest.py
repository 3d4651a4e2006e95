"""Fixtures of the policy tests: the shipped cards, loaded once per session."""

from __future__ import annotations

import pytest
from policy_helpers import MODELS_DIR

from rl_deploy.policy import PolicyCard, load_card


@pytest.fixture(scope="session")
def reach_card() -> PolicyCard:
    return load_card(MODELS_DIR / "example_reach.yaml")


@pytest.fixture(scope="session")
def ovmm_card() -> PolicyCard:
    return load_card(MODELS_DIR / "ovmm_nav.yaml")
