"""Check a policy card against its ONNX graph: names, rank, static dims and dtype of each tensor.

All mismatches are gathered into one ModelContractError, one line per offending tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import onnx

from rl_deploy.errors import ModelContractError
from rl_deploy.onnx_facts import element_type_name
from rl_deploy.policy.card import PolicyCard, TensorSpec

# ONNX TensorProto element types for the dtypes a card may name.
_ONNX_DTYPES: dict[int, str] = {
    onnx.TensorProto.FLOAT: "float32",
    onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.DOUBLE: "float64",
    onnx.TensorProto.INT64: "int64",
    onnx.TensorProto.INT32: "int32",
    onnx.TensorProto.INT8: "int8",
    onnx.TensorProto.UINT8: "uint8",
    onnx.TensorProto.BOOL: "bool",
}


@dataclass(frozen=True)
class GraphTensor:
    """A graph input/output as ONNX declares it: dims are ints, symbolic names, or None."""

    name: str
    dims: tuple[int | str | None, ...] | None  # None: the graph declares no shape
    dtype: str

    def describe(self) -> str:
        if self.dims is None:
            return f"(unknown shape) {self.dtype}"
        dims = ", ".join("?" if dim is None else str(dim) for dim in self.dims)
        return f"({dims}) {self.dtype}"


def graph_tensors(model: onnx.ModelProto) -> tuple[dict[str, GraphTensor], dict[str, GraphTensor]]:
    """Inputs (initializer-backed ones excluded: they have defaults) and outputs of the graph."""
    initializers = {init.name for init in model.graph.initializer}
    inputs = {
        value.name: _graph_tensor(value)
        for value in model.graph.input
        if value.name not in initializers
    }
    outputs = {value.name: _graph_tensor(value) for value in model.graph.output}
    return inputs, outputs


def _graph_tensor(value: onnx.ValueInfoProto) -> GraphTensor:
    tensor_type = value.type.tensor_type
    elem_type = tensor_type.elem_type
    dtype = _ONNX_DTYPES.get(elem_type) or element_type_name(elem_type).lower()
    if not tensor_type.HasField("shape"):
        return GraphTensor(value.name, None, dtype)
    dims: list[int | str | None] = []
    for dim in tensor_type.shape.dim:
        if dim.HasField("dim_value"):
            dims.append(dim.dim_value)
        else:
            dims.append(dim.dim_param or None)
    return GraphTensor(value.name, tuple(dims), dtype)


def _describe(spec: TensorSpec) -> str:
    return f"({', '.join(str(dim) for dim in spec.shape)}) {spec.dtype}"


def _mismatch(spec: TensorSpec, graph: GraphTensor) -> bool:
    if spec.dtype != graph.dtype:
        return True
    if graph.dims is None:
        return False
    if len(graph.dims) != len(spec.shape):
        return True
    return any(
        isinstance(dim, int) and dim != expected
        for dim, expected in zip(graph.dims, spec.shape, strict=True)
    )


def check_card_against_model(card: PolicyCard, model: onnx.ModelProto) -> None:
    """Raise one ModelContractError listing every tensor where card and graph disagree."""
    graph_inputs, graph_outputs = graph_tensors(model)
    card_inputs = [spec.tensor for spec in card.inputs] + [s.input_tensor for s in card.recurrent]
    card_outputs = list(card.outputs) + [state.output_tensor for state in card.recurrent]
    problems = _compare("input", card_inputs, graph_inputs)
    problems += _compare("output", card_outputs, graph_outputs)
    known = {spec.name for spec in card_inputs}
    problems += [
        f"input '{name}': not in the card, graph {tensor.describe()}"
        for name, tensor in graph_inputs.items()
        if name not in known
    ]
    if problems:
        listing = "\n  ".join(problems)
        raise ModelContractError(
            f"{card.onnx_path.name} does not match card '{card.name}' "
            f"({len(problems)} tensor(s)):\n  {listing}"
        )


def _compare(kind: str, specs: list[TensorSpec], graph: dict[str, GraphTensor]) -> list[str]:
    problems = []
    for spec in specs:
        found = graph.get(spec.name)
        if found is None:
            problems.append(
                f"{kind} '{spec.name}': card {_describe(spec)}, graph has no such {kind} "
                f"(graph {kind}s: {sorted(graph)})"
            )
        elif _mismatch(spec, found):
            problems.append(
                f"{kind} '{spec.name}': card {_describe(spec)}, graph {found.describe()}"
            )
    return problems
