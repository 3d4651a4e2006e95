"""The graph the runner runs: a YOLO-seg export with work moved into onnxruntime's kernels.

Every composition computes what the export and the numpy recipe computed, with the same float32
operations: the uint8 frame's conversion to the input tensor in front (`with_uint8_input`),
Ultralytics' first filter over every anchor behind (`with_candidate_outputs`), and the box
head's distribution softmax on the last axis (`with_dfl_on_last_axis`). `rl-deploy bench
perception` times the composed graph against the export alone (ort_run_composed vs ort_run).
"""

from __future__ import annotations

from typing import Any

import onnx
from onnx import TensorProto, helper, numpy_helper

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


DFL = "rl_deploy/dfl"  # prefix of the names with_dfl_on_last_axis adds


def network_as_run(model: onnx.ModelProto) -> onnx.ModelProto:
    """The export's network as the runner runs it, without the work composed around it (the
    frame's conversion, the first filter): the peer for what the step adds to the network."""
    return with_dfl_on_last_axis(model)


def with_dfl_on_last_axis(model: onnx.ModelProto) -> onnx.ModelProto:
    """The same network, its box head's distribution softmax taken on the last axis.

    Ultralytics' DFL reshapes the box logits to (B, 4, R, A), transposes them to (B, R, 4, A),
    takes the softmax over the R bins (axis 1) and sums the bins with a 1x1 convolution of
    weights 0..R-1. onnxruntime computes a softmax off the last axis by transposing to it and
    back element by element: 1.7 of 19.8 ms of the 320 export's run on a 2-core EPYC VM. Here
    the logits go to (B, 4, A, R) in one transpose, the softmax runs on the last axis and a
    MatMul with the same weights sums the bins: the same outputs, bit for bit, in 0.4 ms.
    An export without that pattern is returned as it is.
    """
    nodes = list(model.graph.node)
    producers = {output: i for i, node in enumerate(nodes) for output in node.output}
    consumers: dict[str, list[int]] = {}
    for i, node in enumerate(nodes):
        for name in node.input:
            consumers.setdefault(name, []).append(i)
    weights = {init.name: init for init in model.graph.initializer}
    found = next(
        (
            dfl
            for i in range(len(nodes))
            if (dfl := _dfl_nodes(nodes, i, producers, consumers, weights))
        ),
        None,
    )
    if found is None:
        return model
    transpose, _, conv, reshape = (nodes[i] for i in found)
    bins = numpy_helper.to_array(weights[conv.input[1]]).reshape(-1, 1)  # (R, 1): 0..R-1
    last_axis, probabilities, expected = (
        f"{DFL}/{part}" for part in ("bins_last", "softmax", "sum")
    )
    replacement = [
        helper.make_node(
            "Transpose", [transpose.input[0]], [last_axis], perm=[0, 1, 3, 2], name=last_axis
        ),
        helper.make_node("Softmax", [last_axis], [probabilities], axis=-1, name=probabilities),
        helper.make_node("MatMul", [probabilities, f"{DFL}/bin_values"], [expected], name=expected),
        helper.make_node(
            "Reshape", [expected, reshape.input[1]], list(reshape.output), name=f"{DFL}/boxes"
        ),
    ]
    composed = onnx.ModelProto()
    composed.CopyFrom(model)
    graph = composed.graph
    graph.initializer.append(numpy_helper.from_array(bins, f"{DFL}/bin_values"))
    nodes = list(graph.node)  # the four nodes form a chain: all inputs are ready at the last
    del graph.node[:]
    for i, node in enumerate(nodes):
        if i == found[-1]:
            graph.node.extend(replacement)
        elif i not in found:
            graph.node.append(node)
    _drop_unread_initializer(graph, conv.input[1])
    return composed


def _drop_unread_initializer(graph: onnx.GraphProto, name: str) -> None:
    """onnxruntime warns of an initializer that no node reads (subgraphs aside: none here)."""
    read = any(name in node.input for node in graph.node) or any(
        value.name == name for value in graph.input
    )
    if not read:
        at = next(i for i, init in enumerate(graph.initializer) if init.name == name)
        del graph.initializer[at]


def _dfl_nodes(
    nodes: list[onnx.NodeProto],
    at: int,
    producers: dict[str, int],
    consumers: dict[str, list[int]],
    weights: dict[str, onnx.TensorProto],
) -> tuple[int, int, int, int] | None:
    """Indices of (transpose, softmax, conv, reshape) when nodes[at] is the softmax of a DFL."""

    def sole_consumer(node: int | None, op_type: str) -> int | None:
        after = [] if node is None else consumers.get(nodes[node].output[0], [])
        return after[0] if len(after) == 1 and nodes[after[0]].op_type == op_type else None

    softmax = nodes[at]
    if softmax.op_type != "Softmax" or _attribute(softmax, "axis", -1) != 1:
        return None
    transpose = producers.get(softmax.input[0])
    if transpose is None or sole_consumer(transpose, "Softmax") != at:
        return None
    conv = sole_consumer(at, "Conv")
    reshape = sole_consumer(conv, "Reshape")
    if conv is None or reshape is None:
        return None
    swaps_bins = nodes[transpose].op_type == "Transpose" and list(
        _attribute(nodes[transpose], "perm", [])
    ) == [0, 2, 1, 3]
    return (
        (transpose, at, conv, reshape) if swaps_bins and _sums_bins(nodes[conv], weights) else None
    )


def _sums_bins(conv: onnx.NodeProto, weights: dict[str, onnx.TensorProto]) -> bool:
    """A 1x1 convolution to one channel, without bias, groups, strides, dilation or padding."""
    kernel = weights.get(conv.input[1]) if len(conv.input) == 2 else None
    plain = _attribute(conv, "group", 1) == 1 and not any(
        set(_attribute(conv, name, [])) - {default}
        for name, default in (("strides", 1), ("dilations", 1), ("pads", 0))
    )
    return plain and kernel is not None and [*kernel.dims[:1], *kernel.dims[2:]] == [1, 1, 1]


def _attribute(node: onnx.NodeProto, name: str, default: Any) -> Any:
    found = next((a for a in node.attribute if a.name == name), None)
    return default if found is None else helper.get_attribute_value(found)


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
