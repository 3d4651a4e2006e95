"""Mask prototypes only for frames that have a candidate: the export's prototype branch under an If.

A YOLO-seg export computes its mask prototypes (two 3x3 convolutions around a transposed one, at
a quarter of the input's size) on every frame: 16 % of the 320 export's run and 19 % of the 640
one on a 2-core EPYC VM. A frame with no candidate of the allowed classes (the policy's target
out of view) uses none of them. `with_protos_on_demand` moves that branch into an If on the
candidate count of the composed graph (perception.graph.with_candidate_outputs): the same
prototypes, bit for bit, when there is a candidate, and a (1, P, 0, 0) tensor when there is none.
"""

from __future__ import annotations

import onnx
from onnx import TensorProto, helper

from rl_deploy.perception.graph import CANDIDATE_OUTPUTS
from rl_deploy.perception.model import ModelInfo

PROTOS = "rl_deploy/protos"  # prefix of the names with_protos_on_demand adds


def with_protos_on_demand(model: onnx.ModelProto, info: ModelInfo) -> onnx.ModelProto:
    """The composed graph, its prototype output computed only when a frame has candidates.

    The branch is every node that only the prototype output needs; the initializers only it
    reads move into the If's graph with it (onnxruntime's layout passes look for a
    convolution's weights in the convolution's own graph). A graph whose prototypes share all
    of their work with the other outputs is returned as it is.
    """
    protos = info.output_names[1]
    nodes = list(model.graph.node)
    others = [output.name for output in model.graph.output if output.name != protos]
    branch = _ancestors(nodes, [protos]) - _ancestors(nodes, others)
    if not branch:
        return model
    composed = onnx.ModelProto()
    composed.CopyFrom(model)
    graph = composed.graph
    nodes = list(graph.node)
    branch_nodes = [nodes[i] for i in sorted(branch)]  # in the graph's (topological) order
    read_outside = {name for i, node in enumerate(nodes) if i not in branch for name in node.input}
    read_inside = {name for node in branch_nodes for name in node.input}
    moved = [
        init
        for init in graph.initializer
        if init.name in read_inside and init.name not in read_outside
    ]
    computed, none = f"{PROTOS}/computed", f"{PROTOS}/none"
    for node in branch_nodes:  # names stay unique across the graph and its branches
        node.output[:] = [computed if name == protos else name for name in node.output]
        node.input[:] = [computed if name == protos else name for name in node.input]
    elem_type = next(o for o in graph.output if o.name == protos).type.tensor_type.elem_type
    then_branch = helper.make_graph(
        branch_nodes,
        f"{PROTOS}/computed_branch",
        [],
        [helper.make_tensor_value_info(computed, elem_type, None)],
        initializer=moved,
    )
    empty = helper.make_tensor(none, elem_type, [1, info.n_protos, 0, 0], [])
    else_branch = helper.make_graph(
        [helper.make_node("Constant", [], [none], value=empty, name=none)],
        f"{PROTOS}/none_branch",
        [],
        [helper.make_tensor_value_info(none, elem_type, None)],
    )
    count, zero, found = f"{PROTOS}/count", f"{PROTOS}/zero", f"{PROTOS}/found"
    graph.initializer.append(helper.make_tensor(zero, TensorProto.INT64, [], [0]))
    kept = [node for i, node in enumerate(nodes) if i not in branch]
    moved_names = {init.name for init in moved}
    initializers = [init for init in graph.initializer if init.name not in moved_names]
    del graph.node[:], graph.initializer[:]
    graph.initializer.extend(initializers)
    graph.node.extend(kept)
    graph.node.extend(
        [
            helper.make_node("Size", [CANDIDATE_OUTPUTS[1]], [count], name=count),
            helper.make_node("Greater", [count, zero], [found], name=found),
            helper.make_node(
                "If",
                [found],
                [protos],
                name=f"{PROTOS}/if",
                then_branch=then_branch,
                else_branch=else_branch,
            ),
        ]
    )
    output = next(o for o in graph.output if o.name == protos)
    for axis, dim in enumerate(output.type.tensor_type.shape.dim):
        if axis >= 2:  # 0 x 0 on a frame without candidates
            dim.Clear()
            dim.dim_param = f"{PROTOS}/{'height' if axis == 2 else 'width'}"
    return composed


def _ancestors(nodes: list[onnx.NodeProto], outputs: list[str]) -> set[int]:
    """Indices of the nodes that the values `outputs` depend on."""
    producer = {name: i for i, node in enumerate(nodes) for name in node.output}
    found: set[int] = set()
    pending = [producer[name] for name in outputs if name in producer]
    while pending:
        index = pending.pop()
        if index in found:
            continue
        found.add(index)
        pending.extend(producer[name] for name in nodes[index].input if name in producer)
    return found
