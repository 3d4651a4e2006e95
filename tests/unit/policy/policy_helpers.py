"""Helpers of the policy tests: where the shipped models are, and cards edited in tmp_path."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

MODELS_DIR = Path(__file__).resolve().parents[3] / "models"


def card_dict(name: str) -> dict[str, Any]:
    """A shipped card as a plain mapping, ready to be edited."""
    return yaml.safe_load((MODELS_DIR / f"{name}.yaml").read_text(encoding="utf-8"))


def write_card(tmp_path: Path, data: dict[str, Any], *, with_onnx: bool = True) -> Path:
    """Write `data` as a card in tmp_path, copying its ONNX beside it."""
    if with_onnx:
        shutil.copy(MODELS_DIR / data["onnx"], tmp_path / data["onnx"])
    path = tmp_path / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path
