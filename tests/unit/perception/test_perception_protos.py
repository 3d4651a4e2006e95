"""Mask prototypes on demand: the prototype branch under an If on the frame's candidate count."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from perception_helpers import REPO, SHIPPED_ONNX, frames

from rl_deploy.errors import ConfigError
from rl_deploy.perception.graph import network_as_run, with_candidate_outputs
from rl_deploy.perception.masks import class_masks
from rl_deploy.perception.model import load_model, read_model_info
from rl_deploy.perception.protos import PROTOS, with_protos_on_demand
from rl_deploy.perception.runner import load_runner

SIM_ONNX = REPO / "models" / "detector" / "detector_sim.onnx"


def _composed(path):
    model = load_model(path)
    info = read_model_info(model, path, ())
    return with_candidate_outputs(network_as_run(model), info, 0.25), info


@pytest.mark.parametrize("path", [SHIPPED_ONNX, SIM_ONNX], ids=["shipped", "sim"])
def test_frames_with_candidates_get_the_same_prototypes_bit_for_bit(path):
    on_demand = load_runner(path, protos_on_demand="on")
    always = load_runner(path, protos_on_demand="off")
    assert on_demand.protos_on_demand and not always.protos_on_demand
    rng = np.random.default_rng(3)
    noise = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    compared = 0
    for frame in (*frames(), noise):
        for classes in (None, on_demand.names[:1]):
            ours = on_demand.infer(on_demand.preprocess(frame), classes)
            reference = always.infer(always.preprocess(frame), classes)
            for a, b in zip(ours[:-1], reference[:-1], strict=True):
                np.testing.assert_array_equal(a, b)
            if len(ours[1]):
                np.testing.assert_array_equal(ours[-1], reference[-1])
                compared += 1
    assert compared >= 4


def _frame_missing_a_class(runner):
    """A frame with detections, but not of every class: the others have no candidate there."""
    for frame in frames():
        found = runner.detect(frame)
        if len(found) and len(set(found.class_names)) < len(runner.names):
            return frame, found
    raise AssertionError("no frame with some, but not all, classes")


def test_a_frame_without_candidates_skips_the_prototypes_and_reports_nothing():
    runner = load_runner(SHIPPED_ONNX)  # auto: on, on the CPU provider
    assert runner.protos_on_demand
    frame, everything = _frame_missing_a_class(runner)
    # A class absent from the frame: no anchor is a candidate, so no prototypes either.
    absent = next(name for name in runner.names if name not in everything.class_names)
    *candidates, protos = runner.infer(runner.preprocess(frame), (absent,))
    assert len(candidates[0]) == 0 and protos.shape == (1, runner.info.n_protos, 0, 0)
    nothing = runner.detect(frame, classes=(absent,))
    assert len(nothing) == 0 and runner.last_instances == 0
    masks = class_masks(nothing, runner.names, (120, 160))
    assert all(mask.shape == (120, 160) and not mask.any() for mask in masks.values())
    # And the next frame with candidates gets its prototypes again.
    again = runner.detect(frame)
    np.testing.assert_array_equal(again.protos, everything.protos)
    assert runner.last_instances == len(again) > 0


def test_io_binding_follows_the_prototypes_shape_from_frame_to_frame():
    bound = load_runner(SHIPPED_ONNX, io_binding="on")
    plain = load_runner(SHIPPED_ONNX, io_binding="off")
    frame, everything = _frame_missing_a_class(plain)
    absent = next(name for name in bound.names if name not in everything.class_names)
    for classes in (None, (absent,), None, (absent,)):
        ours, reference = bound.detect(frame, classes=classes), plain.detect(frame, classes=classes)
        np.testing.assert_array_equal(ours.boxes_xyxy, reference.boxes_xyxy)
        np.testing.assert_array_equal(ours.protos, reference.protos)


def test_the_branch_leaves_the_main_graph_with_its_weights():
    composed, info = _composed(SHIPPED_ONNX)
    on_demand = with_protos_on_demand(composed, info)
    onnx.checker.check_model(on_demand)
    protos = info.output_names[1]
    (if_node,) = [node for node in on_demand.graph.node if node.op_type == "If"]
    assert list(if_node.output) == [protos] and if_node.name == f"{PROTOS}/if"
    then_branch = next(a.g for a in if_node.attribute if a.name == "then_branch")
    moved = {init.name for init in then_branch.initializer}
    convs = [node for node in then_branch.node if node.op_type in ("Conv", "ConvTranspose")]
    assert len(convs) >= 3 and all(node.input[1] in moved for node in convs)
    main_initializers = {init.name for init in on_demand.graph.initializer}
    assert not moved & main_initializers
    main_ops = [node.name for node in on_demand.graph.node]
    assert not [name for name in main_ops if "/proto/" in name]
    # Every other output keeps its producers in the main graph.
    assert len(on_demand.graph.node) == len(composed.graph.node) - len(then_branch.node) + 3


def test_work_another_output_needs_stays_in_the_main_graph():
    composed, info = _composed(SHIPPED_ONNX)
    graph, protos = composed.graph, info.output_names[1]
    producer = next(node for node in graph.node if protos in node.output)
    producer.output[:] = ["before_protos"]  # an output of its own now, as well
    graph.node.append(onnx.helper.make_node("Identity", ["before_protos"], [protos]))
    graph.output.append(
        onnx.helper.make_tensor_value_info("before_protos", onnx.TensorProto.FLOAT, None)
    )
    (if_node,) = [n for n in with_protos_on_demand(composed, info).graph.node if n.op_type == "If"]
    then_branch = next(a.g for a in if_node.attribute if a.name == "then_branch")
    assert [node.op_type for node in then_branch.node] == ["Identity"]


def test_prototypes_another_output_reads_are_left_as_they_are():
    composed, info = _composed(SHIPPED_ONNX)
    graph = composed.graph
    graph.node.append(onnx.helper.make_node("Identity", [info.output_names[1]], ["copy"]))
    graph.output.append(onnx.helper.make_tensor_value_info("copy", onnx.TensorProto.FLOAT, None))
    assert with_protos_on_demand(composed, info) is composed


def test_protos_on_demand_must_be_auto_on_or_off():
    with pytest.raises(ConfigError, match="protos_on_demand must be auto, on or off, got 'yes'"):
        load_runner(SHIPPED_ONNX, protos_on_demand="yes")


def test_auto_is_on_where_the_session_runs_on_the_cpu_provider():
    # CUDA is requested first but this onnxruntime build lacks it: the CPU provider runs.
    runner = load_runner(SHIPPED_ONNX, providers=("CUDAExecutionProvider", "CPUExecutionProvider"))
    assert runner.provider == "CPUExecutionProvider" and runner.protos_on_demand
    assert not load_runner(SHIPPED_ONNX, protos_on_demand="off").protos_on_demand
