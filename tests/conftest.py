"""Shared test fixtures: paths of the repository and its real data."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def rosbag2_fixtures() -> Path:
    return REPO / "tests" / "fixtures" / "rosbag2"
