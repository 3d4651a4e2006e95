"""The box head's softmax on the last axis: the export's outputs, bit for bit, on every export."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from perception_helpers import SHIPPED_ONNX, SHIPPED_PT, frames, shipped_runner

from rl_deploy.perception.graph import DFL, with_dfl_on_last_axis
from rl_deploy.perception.letterbox import LetterboxBuffer
from rl_deploy.tools.detector_export import ultralytics_model

SIM_ONNX = SHIPPED_ONNX.with_name("detector_sim.onnx")


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _softmax_axes(model: onnx.ModelProto) -> list[int]:
    return [
        onnx.helper.get_attribute_value(a)
        for node in model.graph.node
        if node.op_type == "Softmax"
        for a in node.attribute
        if a.name == "axis"
    ]


def _inputs(shape: list[int], n_random: int = 3) -> list[np.ndarray]:
    """Letterboxed camera frames with objects in them, and random tensors of the same shape."""
    runner, letterbox = shipped_runner(), LetterboxBuffer()
    tensors = []
    for frame in frames()[:3]:
        geometry = runner.geometry(frame.shape[:2])
        if list(geometry.input_hw) == shape[2:]:
            letterbox.fill(frame, geometry)
            tensors.append(letterbox.tensor.copy())
    rng = np.random.default_rng(7)
    return tensors + [rng.random(shape, dtype=np.float32) for _ in range(n_random)]


def _assert_same_outputs(original: onnx.ModelProto, rewritten: onnx.ModelProto, shape: list[int]):
    before, after = _session(original), _session(rewritten)
    name = before.get_inputs()[0].name
    for tensor in _inputs(shape):
        for a, b in zip(
            before.run(None, {name: tensor}), after.run(None, {name: tensor}), strict=True
        ):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("path", [SHIPPED_ONNX, SIM_ONNX], ids=["shipped", "sim"])
def test_dfl_on_the_last_axis_gives_the_exports_outputs_bit_for_bit(path: Path):
    original = onnx.load(str(path))
    rewritten = with_dfl_on_last_axis(original)
    onnx.checker.check_model(rewritten, full_check=True)
    assert 1 in _softmax_axes(original)
    assert _softmax_axes(rewritten).count(1) == _softmax_axes(original).count(1) - 1
    added = [node.op_type for node in rewritten.graph.node if node.name.startswith(DFL)]
    assert added == ["Transpose", "Softmax", "MatMul", "Reshape"]
    dims = original.graph.input[0].type.tensor_type.shape.dim
    _assert_same_outputs(original, rewritten, [d.dim_value for d in dims])


@pytest.mark.slow
def test_dfl_on_the_last_axis_of_a_dynamic_export(tmp_path: Path):
    """Reshape targets computed from the input's shape at run time, not constants."""
    weights = tmp_path / "dynamic.pt"
    shutil.copy2(SHIPPED_PT, weights)  # Ultralytics exports beside the weights
    ultralytics_model(weights).export(format="onnx", imgsz=320, dynamic=True, device="cpu")
    original = onnx.load(str(weights.with_suffix(".onnx")))
    rewritten = with_dfl_on_last_axis(original)
    assert [n.name for n in rewritten.graph.node if n.name.startswith(DFL)]
    for shape in ([1, 3, 256, 320], [1, 3, 320, 320], [1, 3, 480, 640]):
        _assert_same_outputs(original, rewritten, shape)


def test_a_softmax_that_is_not_a_dfl_is_left_alone():
    """A transpose and softmax on axis 1 followed by something else than the bins' sum."""
    helper = onnx.helper
    graph = helper.make_graph(
        [
            helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 1, 3]),
            helper.make_node("Softmax", ["t"], ["p"], axis=1),
            helper.make_node("Relu", ["p"], ["y"]),
        ],
        "not_dfl",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4, 16, 8])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 16, 4, 8])],
    )
    model = helper.make_model(graph)
    assert with_dfl_on_last_axis(model) is model
    policy = onnx.load(str(SHIPPED_ONNX.parents[1] / "example_reach.onnx"))
    assert with_dfl_on_last_axis(policy) is policy
