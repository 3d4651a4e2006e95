"""The graph the runner runs: a YOLO-seg export with work moved into onnxruntime's kernels.

Both compositions keep the network as it is and compute what the numpy recipe computed, with
the same float32 operations: the uint8 frame's conversion to the input tensor in front
(`with_uint8_input`), Ultralytics' first filter over every anchor behind
(`with_candidate_outputs`). `rl-deploy bench perception` times the composed graph against the
export alone (ort_run_composed vs ort_run).
"""

from __future__ import annotations

from typing import Any

import onnx
from onnx import TensorProto, helper

from rl_deploy.perception.model import ModelInfo

FRAME_INPUT_PREFIX = "rl_deploy/frame"  # names of the nodes with_uint8_input adds


def with_uint8_input(model: onnx.ModelProto, info: ModelInfo) -> onnx.ModelProto:
    """The same network taking (1, H, W, 3) uint8 RGB frames under its input's name.

    The graph transposes the frame, casts it to the network's float type and divides by 255:
    the values Ultralytics computes in numpy, bit for bit, in one pass of onnxruntime's kernels
    instead of a split into planes and three divisions.
    """
    composed = onnx.ModelProto()
    composed.CopyFrom(model)
    graph = composed.graph
    original = next(value for value in graph.input if value.name == info.input_name)
    network_input = f"{FRAME_INPUT_PREFIX}/float"
    _rename_input(graph, info.input_name, network_input)
    batch, _, height, width = original.type.tensor_type.shape.dim
    frame = helper.make_tensor_value_info(info.input_name, TensorProto.UINT8, None)
    frame.type.tensor_type.shape.dim.extend([batch, height, width])
    frame.type.tensor_type.shape.dim.add().dim_value = 3
    graph.input.remove(original)
    graph.input.insert(0, frame)
    scale = f"{FRAME_INPUT_PREFIX}/255"
    graph.initializer.append(helper.make_tensor(scale, info.input_type, [], [255.0]))
    nchw, cast = f"{FRAME_INPUT_PREFIX}/nchw", f"{FRAME_INPUT_PREFIX}/cast"
    prefix = [
        helper.make_node("Transpose", [info.input_name], [nchw], perm=[0, 3, 1, 2], name=nchw),
        helper.make_node("Cast", [nchw], [cast], to=info.input_type, name=cast),
        helper.make_node("Div", [cast, scale], [network_input], name=network_input),
    ]
    for node in reversed(prefix):
        graph.node.insert(0, node)
    return composed


CANDIDATES = "rl_deploy/candidates"  # prefix of the names with_candidate_outputs adds
CANDIDATE_OUTPUTS = tuple(
    f"{CANDIDATES}/{part}" for part in ("boxes", "scores", "classes", "coeffs")
)
CLASSES_INPUT = f"{CANDIDATES}/allowed_classes"  # (nc,) bool: the classes a frame may report


def with_candidate_outputs(model: onnx.ModelProto, info: ModelInfo, conf: float) -> onnx.ModelProto:
    """The same network, its raw predictions replaced by the candidates NMS takes.

    Ultralytics' first filter, in the graph: an anchor is a candidate when its best class score
    is above `conf` and that class is allowed (input CLASSES_INPUT; Ultralytics' `classes`). Its
    box (x1, y1, x2, y2, input pixels), score, class and mask coefficients come out in anchor
    order (CANDIDATE_OUTPUTS), computed with the float32 operations of the numpy recipe. An
    anchor with a NaN class score is never a candidate. For raw exports only.
    """
    composed = onnx.ModelProto()
    composed.CopyFrom(model)
    graph = composed.graph
    predictions, n_classes = info.output_names[0], len(info.names)
    score_type = next(o for o in graph.output if o.name == predictions).type.tensor_type.elem_type

    def name(part: str) -> str:
        return f"{CANDIDATES}/{part}"

    def ints(part: str, *values: int) -> onnx.TensorProto:
        return helper.make_tensor(name(part), TensorProto.INT64, [len(values)], values)

    graph.initializer.extend(
        [
            ints("0", 0),
            ints("2", 2),
            ints("4", 4),
            ints("classes_end", 4 + n_classes),
            ints("end", 4 + n_classes + info.n_protos),
            ints("axis_1", 1),
            helper.make_tensor(name("anchor_row"), TensorProto.INT64, [], [1]),
            helper.make_tensor(name("conf"), score_type, [], [conf]),
            helper.make_tensor(name("two"), score_type, [], [2.0]),
        ]
    )
    opset = next(o.version for o in composed.opset_import if o.domain in ("", "ai.onnx"))
    axes = {"axes": [1]} if opset < 18 else {}  # an input from opset 18, an attribute before
    reduce_inputs = [name("scores_all")] + ([] if opset < 18 else [name("axis_1")])

    def node(op: str, inputs: list[str], output: str, **attributes: Any) -> onnx.NodeProto:
        return helper.make_node(op, inputs, [name(output)], name=name(output), **attributes)

    def part(source: str, start: str, end: str, output: str) -> onnx.NodeProto:
        return node("Slice", [name(source), name(start), name(end), name("axis_1")], output)

    graph.node.extend(
        [
            helper.make_node(
                "Slice",
                [predictions, name("4"), name("classes_end"), name("axis_1")],
                [name("scores_all")],
            ),  # (1, nc, N)
            node("ReduceMax", reduce_inputs, "best", keepdims=0, **axes),  # (1, N)
            node("ArgMax", [name("scores_all")], "best_class", axis=1, keepdims=0),
            node("ReduceSum", reduce_inputs, "sum", keepdims=0, **axes),  # NaN stays NaN here
            node("IsNaN", [name("sum")], "broken"),
            node("Not", [name("broken")], "whole"),
            node("Greater", [name("best"), name("conf")], "confident"),
            node("Gather", [CLASSES_INPUT, name("best_class")], "allowed"),
            node("And", [name("confident"), name("allowed")], "wanted"),
            node("And", [name("wanted"), name("whole")], "candidate"),
            node("NonZero", [name("candidate")], "where"),  # (2, M): batch, anchor
            node("Gather", [name("where"), name("anchor_row")], "anchors"),
            helper.make_node("Gather", [predictions, name("anchors")], [name("columns")], axis=2),
            node("Squeeze", [name("columns"), name("0")], "columns_2d"),
            node("Transpose", [name("columns_2d")], "rows", perm=[1, 0]),  # (M, 4 + nc + P)
            part("rows", "0", "2", "centre"),
            part("rows", "2", "4", "size"),
            node("Div", [name("size"), name("two")], "half"),
            node("Sub", [name("centre"), name("half")], "top_left"),
            node("Add", [name("centre"), name("half")], "bottom_right"),
            helper.make_node(
                "Concat", [name("top_left"), name("bottom_right")], [CANDIDATE_OUTPUTS[0]], axis=1
            ),
            node("Gather", [name("best"), name("anchors")], "batch_scores", axis=1),
            helper.make_node("Squeeze", [name("batch_scores"), name("0")], [CANDIDATE_OUTPUTS[1]]),
            node("Gather", [name("best_class"), name("anchors")], "batch_classes", axis=1),
            helper.make_node("Squeeze", [name("batch_classes"), name("0")], [CANDIDATE_OUTPUTS[2]]),
            helper.make_node(
                "Slice",
                [name("rows"), name("classes_end"), name("end"), name("axis_1")],
                [CANDIDATE_OUTPUTS[3]],
            ),
        ]
    )
    graph.input.append(helper.make_tensor_value_info(CLASSES_INPUT, TensorProto.BOOL, [n_classes]))
    shapes: tuple[list[int | None], ...] = ([None, 4], [None], [None], [None, info.n_protos])
    types = (score_type, score_type, TensorProto.INT64, score_type)
    outputs = [
        helper.make_tensor_value_info(output, elem_type, shape)
        for output, elem_type, shape in zip(CANDIDATE_OUTPUTS, types, shapes, strict=True)
    ]
    outputs += [o for o in graph.output if o.name != predictions]
    del graph.output[:]
    graph.output.extend(outputs)
    return composed


def _rename_input(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Every node (and subgraph node) reading `old` reads `new` instead."""
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        for attribute in node.attribute:
            for subgraph in (
                *attribute.graphs,
                *([attribute.g] if attribute.HasField("g") else []),
            ):
                _rename_input(subgraph, old, new)
