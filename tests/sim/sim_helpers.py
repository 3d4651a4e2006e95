"""Helpers of the simulation tests: hand-made episode layouts, a NaN policy, short episodes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import yaml

from rl_deploy.geometry import Pose2D
from rl_deploy.policy import CARD_METADATA_KEY
from rl_deploy.sim import SceneSpec
from rl_deploy.sim.layout import EpisodeLayout

ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = ROOT / "models"


def hand_layout(
    scene: SceneSpec, start: Pose2D, object_xy: dict[str, tuple[float, float]] | None = None
) -> EpisodeLayout:
    """A layout with objects at their nominal places (or `object_xy`) and a chosen start pose;
    the target is the first object."""
    placed = object_xy or {}
    xy = np.array([placed.get(obj.name, (obj.x_m, obj.y_m)) for obj in scene.objects], dtype=float)
    rgba = np.array([scene.object_classes[obj.class_name].rgba for obj in scene.objects])
    return EpisodeLayout(
        seed=-1,
        object_xy=xy,
        object_yaw=np.zeros(len(scene.objects)),
        object_rgba=rgba,
        target_index=0,
        target_class=scene.objects[0].class_name,
        start_pose=start,
    )


def nan_policy(tmp_path: Path) -> Path:
    """The example card with a graph that answers NaN to everything (a diverged network)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    card = yaml.safe_load((MODELS_DIR / "example_reach.yaml").read_text(encoding="utf-8"))
    card["onnx"] = "nan_reach.onnx"
    inputs = [
        helper.make_tensor_value_info(spec["name"], TensorProto.FLOAT, spec["shape"])
        for spec in card["inputs"]
    ]
    nan = numpy_helper.from_array(np.full((1, 5), np.nan, np.float32), "nan")
    graph = helper.make_graph(
        [helper.make_node("Mul", ["prev_action", "nan"], ["action"])],
        "nan_reach",
        inputs,
        [helper.make_tensor_value_info("action", TensorProto.FLOAT, [1, 5])],
        [nan],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    text = yaml.safe_dump(card, sort_keys=False)
    helper.set_model_props(model, {CARD_METADATA_KEY: text})
    onnx.save(model, tmp_path / "nan_reach.onnx")
    path = tmp_path / "nan_reach.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def short_scene(scene: SceneSpec, max_episode_s: float) -> SceneSpec:
    """The scene with a shorter time limit (tests that only need a few seconds of closed loop)."""
    return dataclasses.replace(
        scene, task=dataclasses.replace(scene.task, max_episode_s=max_episode_s)
    )
