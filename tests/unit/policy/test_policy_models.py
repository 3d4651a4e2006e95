"""The shipped models: load, step with finite outputs, and the generated ones match their recipe
byte for byte (example_reach is trained: models/recipes/train_example_reach.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from policy_helpers import MODELS_DIR

from rl_deploy.geometry import Pose2D
from rl_deploy.policy import Policy, RawObservation, load_card


def _raw(step: int, joints: int, target: str) -> RawObservation:
    rng = np.random.default_rng(step)
    return RawObservation(
        depth_m=rng.uniform(0.3, 8.0, (480, 640)).astype(np.float32),
        masks={target: (rng.random((480, 640)) < 0.05).astype(np.uint8)},
        joints=rng.uniform(-0.5, 0.5, joints).astype(np.float32),
        pose=Pose2D(0.2 * step, 0.1 * step, 0.1 * step),
        target_class=target,
    )


@pytest.mark.parametrize("name", ["example_reach", "ovmm_nav"])
def test_shipped_policy_steps_with_finite_outputs(name: str):
    policy = Policy.load(MODELS_DIR / f"{name}.yaml", providers=["CPUExecutionProvider"])
    card = policy.card
    policy.reset(Pose2D(0.0, 0.0, 0.0))
    steps = [policy.step(_raw(i, len(card.joint_names), card.target_classes[0])) for i in range(3)]
    for step in steps:
        assert step.command.is_finite()
        assert all(np.isfinite(value).all() for value in step.outputs.values())
        assert step.action.shape == (card.action_size,)
        assert set(step.timings_ms) == {"observation", "inference", "decode"}
    prev_input = next(spec.name for spec in card.inputs if spec.source == "prev_action")
    assert not np.array_equal(steps[0].action, steps[1].action)  # the policy reacts to inputs
    builder_feed = policy.builder.build(_raw(3, len(card.joint_names), card.target_classes[0]))
    np.testing.assert_array_equal(builder_feed[prev_input][0], steps[-1].action)


def test_reach_actions_stay_in_the_card_ranges():
    policy = Policy.load(MODELS_DIR / "example_reach.yaml", providers=["CPUExecutionProvider"])
    policy.reset()
    for i in range(3):
        step = policy.step(_raw(i, 3, "bottle"))
        assert np.abs(step.action).max() <= 1.0  # clipped in the graph
        assert abs(step.command.base.linear_x) <= 0.3
        assert step.command.arm is not None and 0.2 <= step.command.arm.positions[0] <= 1.0


def test_recipe_check_reproduces_the_committed_files(capsys):
    recipe = MODELS_DIR / "recipes" / "make_policies.py"
    spec = importlib.util.spec_from_file_location("make_policies", recipe)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--check"]) == 0, capsys.readouterr().err


def test_shipped_models_are_small_and_carry_their_card():
    for name in ("example_reach", "ovmm_nav"):
        assert (MODELS_DIR / f"{name}.onnx").stat().st_size < 4_000_000
        assert load_card(MODELS_DIR / f"{name}.onnx") == load_card(MODELS_DIR / f"{name}.yaml")


def test_recipe_check_fails_on_a_stale_file(tmp_path: Path):
    recipe = MODELS_DIR / "recipes" / "make_policies.py"
    spec = importlib.util.spec_from_file_location("make_policies_stale", recipe)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--out", str(tmp_path), "ovmm_nav"]) == 0
    (tmp_path / "ovmm_nav.yaml").write_text("name: edited\n")
    assert module.main(["--out", str(tmp_path), "--check", "ovmm_nav"]) == 1
