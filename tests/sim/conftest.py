"""Fixtures of the simulation tests: the example scene and its YAML document."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from rl_deploy.sim import SceneSpec, load_scene

EXAMPLE_SCENE = Path(__file__).resolve().parents[2] / "config" / "scenes" / "example_room.yaml"


@pytest.fixture(scope="session")
def scene_path() -> Path:
    return EXAMPLE_SCENE


@pytest.fixture(scope="session")
def scene() -> SceneSpec:
    return load_scene(EXAMPLE_SCENE)


@pytest.fixture
def scene_document() -> dict[str, Any]:
    """A fresh, mutable copy of the example scene's YAML document."""
    document: dict[str, Any] = yaml.safe_load(EXAMPLE_SCENE.read_text(encoding="utf-8"))
    return copy.deepcopy(document)
