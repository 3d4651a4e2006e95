"""ONNX runner: recurrent state carried and reset, sha256 pin, provider choice, feed checks."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import yaml
from policy_helpers import MODELS_DIR

from rl_deploy.errors import ConfigError, ModelContractError
from rl_deploy.geometry import Pose2D
from rl_deploy.policy import (
    ObservationBuilder,
    Policy,
    PolicyCard,
    PolicyRunner,
    RawObservation,
)
from rl_deploy.policy.runner import select_providers

CPU = ["CPUExecutionProvider"]


def _feeds(card: PolicyCard, steps: int) -> list[dict[str, np.ndarray]]:
    builder = ObservationBuilder(card)
    rng = np.random.default_rng(3)
    feeds = []
    for step in range(steps):
        depth = rng.uniform(0.5, 6.0, (480, 640)).astype(np.float32)
        obj = (rng.random((480, 640)) < 0.1).astype(np.uint8)
        feeds.append(
            builder.build(
                RawObservation(
                    depth_m=depth,
                    masks={"object": obj},
                    joints=rng.uniform(-1, 1, 10).astype(np.float32),
                    pose=Pose2D(0.1 * step, 0.0, 0.05 * step),
                )
            )
        )
        builder.record_action(rng.uniform(-1, 1, card.action_size).astype(np.float32))
    return feeds


def test_recurrent_state_is_carried_and_reset(ovmm_card: PolicyCard):
    first, second = _feeds(ovmm_card, 2)
    runner = PolicyRunner(ovmm_card, CPU)
    runner.run(first)
    carried = runner.run(second)
    fresh = PolicyRunner(ovmm_card, CPU).run(second)
    assert not np.allclose(carried["base_vel"], fresh["base_vel"], atol=1e-6)
    state = runner.recurrent_state
    np.testing.assert_array_equal(state["rnn_hidden_states"], carried["rnn_hidden_states_out"])
    runner.reset()
    assert not runner.recurrent_state["rnn_cell_states"].any()
    after_reset = runner.run(second)
    for name, value in fresh.items():
        np.testing.assert_array_equal(after_reset[name], value, err_msg=name)


def test_not_done_zero_clears_the_state_inside_the_graph(ovmm_card: PolicyCard):
    first, second = _feeds(ovmm_card, 2)
    runner = PolicyRunner(ovmm_card, CPU)
    runner.run(first)
    restarted = runner.run({**second, "not_done_masks": np.zeros((1, 1), np.float32)})
    fresh = PolicyRunner(ovmm_card, CPU).run({**second, "not_done_masks": np.zeros((1, 1), "f4")})
    np.testing.assert_array_equal(restarted["arm_action"], fresh["arm_action"])


def test_sha256_pin(reach_card: PolicyCard):
    digest = hashlib.sha256(reach_card.onnx_path.read_bytes()).hexdigest()
    assert PolicyRunner(reach_card, CPU, expected_sha256=digest.upper()).sha256 == digest
    with pytest.raises(ModelContractError, match=f"sha256 {digest} does not match .* {'0' * 64}"):
        PolicyRunner(reach_card, CPU, expected_sha256="0" * 64)


def test_sha256_is_checked_before_the_model_is_parsed(reach_card: PolicyCard, tmp_path: Path):
    tampered = tmp_path / "example_reach.onnx"
    tampered.write_bytes(b"not a model at all")
    card = dataclasses.replace(reach_card, onnx_path=tampered)
    with pytest.raises(ModelContractError, match="sha256"):
        PolicyRunner(card, CPU, expected_sha256="0" * 64)
    with pytest.raises(ModelContractError, match="not an ONNX model"):
        PolicyRunner(card, CPU)


def test_providers_keep_only_available_ones(reach_card: PolicyCard, caplog):
    assert select_providers(["TensorrtExecutionProvider", "CUDAExecutionProvider", *CPU]) == CPU
    with pytest.raises(ConfigError, match=r"none of .* is available"):
        select_providers(["TensorrtExecutionProvider"])
    with caplog.at_level(logging.INFO, logger="rl_deploy.policy.runner"):
        runner = PolicyRunner(reach_card, ["CUDAExecutionProvider", *CPU], intra_op_threads=1)
    assert runner.provider == "CPUExecutionProvider"
    assert "runs on CPUExecutionProvider" in caplog.text


def test_a_misspelt_provider_is_a_config_error_not_a_silent_cpu(reach_card: PolicyCard):
    # Skipped like a provider this build lacks, it would leave the policy on the CPU unsaid.
    with pytest.raises(ConfigError, match=r"\['CUDAExcutionProvider'\] are not onnxruntime"):
        PolicyRunner(reach_card, ["CUDAExcutionProvider", *CPU])
    with pytest.raises(ConfigError, match="must be a list of execution provider names"):
        select_providers("CPUExecutionProvider")


def test_feeds_are_checked_against_the_card(reach_card: PolicyCard):
    runner = PolicyRunner(reach_card, CPU)
    feeds = {spec.name: np.zeros(spec.shape, dtype=spec.dtype) for spec in reach_card.inputs}
    assert runner.run(feeds)["action"].shape == (1, 5)
    feeds["pose"] = np.zeros((1, 3), np.float64)
    del feeds["joints"]
    with pytest.raises(ModelContractError) as caught:
        runner.run(feeds)
    assert "input 'joints': missing" in str(caught.value)
    assert "input 'pose': card (1, 3) float32, fed (1, 3) float64" in str(caught.value)


def test_runner_checks_the_card_against_the_graph(reach_card: PolicyCard):
    wrong = dataclasses.replace(reach_card, onnx_path=MODELS_DIR / "ovmm_nav.onnx")
    with pytest.raises(ModelContractError, match="input 'depth': card"):
        PolicyRunner(wrong, CPU)


def test_model_onnx_runtime_cannot_load_is_a_contract_error(tmp_path: Path):
    shutil.copy(MODELS_DIR / "example_reach.yaml", tmp_path / "example_reach.yaml")
    model = onnx.load(MODELS_DIR / "example_reach.onnx")
    model.ir_version = 99  # newer than any ONNX Runtime here understands
    onnx.save(model, tmp_path / "example_reach.onnx")
    with pytest.raises(ModelContractError, match="ONNX Runtime cannot load the model"):
        Policy.load(tmp_path / "example_reach.yaml")


def _tiny_policy(
    tmp_path: Path,
    nodes: list[onnx.NodeProto],
    outputs: list[onnx.ValueInfoProto],
    *,
    initializers: tuple[np.ndarray, ...] = (),
    state: onnx.ValueInfoProto | None = None,
    **card: object,
) -> Path:
    """A card and its ONNX in tmp_path: constant (1, 2) input `x` (+ `state`) → `nodes`."""
    inputs = [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 2])]
    graph = onnx.helper.make_graph(
        nodes,
        "tiny",
        inputs if state is None else [*inputs, state],
        outputs,
        initializer=[
            onnx.numpy_helper.from_array(array, f"c{i}") for i, array in enumerate(initializers)
        ],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    model.ir_version = 9  # what the ONNX Runtime here reads
    onnx.save(model, tmp_path / "tiny.onnx")
    data = {
        "name": "tiny",
        "version": "1",
        "onnx": "tiny.onnx",
        "control_rate_hz": 10,
        "joint_names": ["j"],
        "target_classes": ["cup"],
        "inputs": [{"name": "x", "source": "constant", "shape": [1, 2], "value": [0.0, 0.0]}],
        "outputs": [{"name": "action", "shape": [1, 5]}],
        "decoding": {
            "base": {
                "type": "continuous",
                "output": "action",
                "fields": ["linear_x", "angular_z"],
                "indices": [3, 4],
            }
        },
        **card,
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _tensor(name: str, *dims: int | str) -> onnx.ValueInfoProto:
    return onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, list(dims))


SHAPE_MISMATCH = r"output '{}': card \({}\) float32, got \(1, 2\) float32"


def test_outputs_of_another_shape_than_the_card_are_refused_at_load(tmp_path: Path):
    # Symbolic dims pass the graph check; the (1, 2) `action` it returns must not reach decoding.
    identity = onnx.helper.make_node("Identity", ["x"], ["action"])
    card = _tiny_policy(tmp_path, [identity], [_tensor("action", "N", "M")])
    with pytest.raises(ModelContractError, match=SHAPE_MISMATCH.format("action", "1, 5")):
        Policy.load(card, CPU)


def test_recurrent_outputs_are_checked_too(tmp_path: Path):
    nodes = [
        onnx.helper.make_node("Pad", ["x", "c0"], ["action"]),  # (1, 5) as the card says
        onnx.helper.make_node("Identity", ["x"], ["h_out"]),  # (1, 2), not the state's (1, 4)
    ]
    card = _tiny_policy(
        tmp_path,
        nodes,
        [_tensor("action", 1, 5), _tensor("h_out", "N", "M")],
        initializers=(np.array([0, 0, 0, 3], np.int64),),
        state=_tensor("h", 1, 4),
        recurrent=[{"input": "h", "output": "h_out", "shape": [1, 4]}],
    )
    with pytest.raises(ModelContractError, match=SHAPE_MISMATCH.format("h_out", "1, 4")):
        Policy.load(card, CPU)


def test_outputs_whose_shape_changes_at_run_time_are_a_contract_error(tmp_path: Path):
    # Tile repeats int(x) + [1, 5]: the warm-up's zeros give (1, 5), the card's [0, -3] (1, 2).
    nodes = [
        onnx.helper.make_node("Cast", ["x"], ["xi"], to=onnx.TensorProto.INT64),
        onnx.helper.make_node("Reshape", ["xi", "c0"], ["xf"]),
        onnx.helper.make_node("Add", ["xf", "c1"], ["repeats"]),
        onnx.helper.make_node("Tile", ["c2", "repeats"], ["action"]),
    ]
    card = _tiny_policy(
        tmp_path,
        nodes,
        [_tensor("action", "N", "M")],
        initializers=(
            np.array([2], np.int64),
            np.array([1, 5], np.int64),
            np.ones((1, 1), np.float32),
        ),
        inputs=[{"name": "x", "source": "constant", "shape": [1, 2], "value": [0.0, -3.0]}],
    )
    policy = Policy.load(card, CPU)
    with pytest.raises(ModelContractError, match=SHAPE_MISMATCH.format("action", "1, 5")):
        policy.step(RawObservation())


def test_a_model_that_fails_in_its_warm_up_is_a_contract_error(tmp_path: Path):
    reshape = onnx.helper.make_node("Reshape", ["x", "c0"], ["action"])  # 2 values into (1, 5)
    card = _tiny_policy(
        tmp_path, [reshape], [_tensor("action", 1, 5)], initializers=(np.array([1, 5], np.int64),)
    )
    with pytest.raises(ModelContractError, match=r"tiny\.onnx: inference failed: .*Reshape"):
        Policy.load(card, CPU)
