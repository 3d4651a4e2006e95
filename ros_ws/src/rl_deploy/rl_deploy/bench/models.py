"""Faulty stand-ins for a shipped policy, for the fault trials: same card, other ONNX graphs.

`nan_policy` honours the card's contract but answers NaN once a joint passes a threshold;
`constant_policy` always asks for the same action; `other_inputs` is a graph whose inputs
differ from the card (a wrong model swapped in).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import yaml
from onnx import TensorProto, helper, numpy_helper

from rl_deploy.errors import CardError
from rl_deploy.policy import PolicyCard

_OPSET = [helper.make_opsetid("", 17)]
_IR_VERSION = 8


def write_card_variant(
    card: PolicyCard, card_path: Path, model: onnx.ModelProto, out: Path
) -> Path:
    """A copy of the card YAML in `out` that points at `model` (written beside it)."""
    out.mkdir(parents=True, exist_ok=True)
    document = yaml.safe_load(card_path.read_text(encoding="utf-8"))
    onnx_name = f"{card.name}_{model.graph.name}.onnx"
    document["onnx"] = onnx_name
    onnx.save(model, out / onnx_name)
    path = out / f"{card.name}_{model.graph.name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def nan_policy(card: PolicyCard, input_name: str, threshold: float) -> onnx.ModelProto:
    """tanh(joints · W) per action, NaN everywhere once input[0, 0] > threshold."""
    if len(card.outputs) != 1 or not card.outputs[0].shape:
        raise CardError(f"nan_policy needs a card with one output, {card.name} has {card.outputs}")
    output = card.outputs[0]
    source = next(spec for spec in card.inputs if spec.name == input_name)
    width = source.tensor.shape[-1]
    action = output.shape[-1]
    rng = np.random.default_rng(0)
    weights = rng.uniform(-1.0, 1.0, (width, action)).astype(np.float32)
    initializers = [
        numpy_helper.from_array(weights, "weights"),
        numpy_helper.from_array(np.array([threshold], np.float32), "threshold"),
        numpy_helper.from_array(np.full(output.shape, np.nan, np.float32), "nan"),
        numpy_helper.from_array(np.array([0], np.int64), "zero"),
        numpy_helper.from_array(np.array([1], np.int64), "one"),
    ]
    nodes = [
        helper.make_node("MatMul", [input_name, "weights"], ["mixed"]),
        helper.make_node("Tanh", ["mixed"], ["healthy"]),
        helper.make_node("Slice", [input_name, "zero", "one", "one"], ["first"]),
        helper.make_node("Greater", ["first", "threshold"], ["tripped"]),
        helper.make_node("Where", ["tripped", "nan", "healthy"], [output.name]),
    ]
    graph = helper.make_graph(
        nodes,
        "nan_policy",
        [_value_info(spec.tensor.name, spec.tensor.shape) for spec in card.inputs],
        [_value_info(output.name, output.shape)],
        initializers,
    )
    return _model(graph)


def constant_policy(card: PolicyCard, value: float) -> onnx.ModelProto:
    """The card's inputs and outputs; every output element is `value` whatever the inputs."""
    nodes, initializers = [], []
    for spec in card.outputs:
        initializers.append(
            numpy_helper.from_array(np.full(spec.shape, value, np.float32), f"{spec.name}_value")
        )
        nodes.append(helper.make_node("Identity", [f"{spec.name}_value"], [spec.name]))
    graph = helper.make_graph(
        nodes,
        "constant_policy",
        [_value_info(spec.tensor.name, spec.tensor.shape) for spec in card.inputs],
        [_value_info(spec.name, spec.shape) for spec in card.outputs],
        initializers,
    )
    return _model(graph)


def other_inputs(card: PolicyCard) -> onnx.ModelProto:
    """One input `observation` [1, 8] → the card's outputs: not the graph the card describes."""
    inputs = [_value_info("observation", (1, 8))]
    nodes, outputs, initializers = [], [], []
    for index, spec in enumerate(card.outputs):
        weight = np.zeros((8, spec.shape[-1]), np.float32)
        initializers.append(numpy_helper.from_array(weight, f"w{index}"))
        nodes.append(helper.make_node("MatMul", ["observation", f"w{index}"], [spec.name]))
        outputs.append(_value_info(spec.name, spec.shape))
    return _model(helper.make_graph(nodes, "other_inputs", inputs, outputs, initializers))


def _value_info(name: str, shape: tuple[int, ...]) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=_OPSET, producer_name="rl_deploy.bench")
    model.ir_version = _IR_VERSION  # what ONNX Runtime 1.17+ reads
    onnx.checker.check_model(model)
    return model
