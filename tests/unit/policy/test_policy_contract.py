"""Card against graph: one ModelContractError naming every offending tensor and both sides."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from policy_helpers import card_dict, write_card

from rl_deploy.errors import ModelContractError
from rl_deploy.policy import load_card


def test_every_mismatch_is_listed_with_card_and_graph_shapes(tmp_path: Path):
    data = card_dict("example_reach")
    data["inputs"][0]["shape"] = [1, 1, 96, 128]  # wrong static dims
    data["inputs"][3]["dtype"] = "float64"  # wrong dtype
    data["inputs"][3]["statistics"] = {"mean": 0.0, "std": 1.0, "min": -1.0, "max": 1.0}
    data["outputs"][0]["name"] = "actions"  # not a graph output
    data["decoding"]["base"]["output"] = "actions"
    data["decoding"]["arm"]["output"] = "actions"
    del data["inputs"][4]  # prev_action: the graph has an input the card lacks
    with pytest.raises(ModelContractError) as caught:
        load_card(write_card(tmp_path, data))
    message = str(caught.value)
    assert "4 tensor(s)" in message
    assert "input 'depth': card (1, 1, 96, 128) float32, graph (1, 1, 120, 160) float32" in message
    assert "input 'joints': card (1, 3) float64, graph (1, 3) float32" in message
    assert "output 'actions': card (1, 5) float32, graph has no such output" in message
    assert "input 'prev_action': not in the card, graph (1, 5) float32" in message


def test_recurrent_state_shape_is_checked(tmp_path: Path):
    data = card_dict("ovmm_nav")
    data["recurrent"][1]["shape"] = [1, 1, 128]
    with pytest.raises(ModelContractError) as caught:
        load_card(write_card(tmp_path, data))
    message = str(caught.value)
    assert "input 'rnn_cell_states': card (1, 1, 128) float32, graph (2, 1, 128) float32" in message
    assert "output 'rnn_cell_states_out': card (1, 1, 128) float32, graph (2, 1, 128)" in message
    assert "2 tensor(s)" in message


def test_rank_mismatch_is_reported(tmp_path: Path):
    data = card_dict("ovmm_nav")
    data["recurrent"][0]["shape"] = [2, 128]
    with pytest.raises(
        ModelContractError,
        match=r"'rnn_hidden_states': card \(2, 128\) float32, "
        r"graph \(2, 1, 128\) float32",
    ):
        load_card(write_card(tmp_path, data))


def test_an_element_type_onnx_does_not_know_is_named(tmp_path: Path):
    data = card_dict("example_reach")
    path = write_card(tmp_path, data)
    model = onnx.load(tmp_path / data["onnx"])
    model.graph.input[0].type.tensor_type.elem_type = 99
    onnx.save(model, tmp_path / data["onnx"])
    with pytest.raises(ModelContractError, match=r"graph .* unknown element type 99"):
        load_card(path)
