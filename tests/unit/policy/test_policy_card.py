"""Policy card parsing: errors name key and value; embedded cards; the fixed reach contract."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx
import pytest
from policy_helpers import MODELS_DIR, card_dict, write_card

from rl_deploy.errors import CardError, ModelContractError
from rl_deploy.policy import CARD_METADATA_KEY, PolicyCard, load_card, parse_card

Edit = Callable[[dict[str, Any]], None]


def _set(path: str, value: object) -> Edit:
    """An edit that sets a dotted path (list items as numbers) in a card mapping."""

    def edit(card: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = card
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(last) if last.isdigit() else last] = value

    return edit


def _delete(path: str) -> Edit:
    def edit(card: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = card
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        del node[last]

    return edit


BAD_CARDS = [
    (_set("inputs.0.source", "lidar"), ["inputs[0].source", "'lidar'", "expected one of"]),
    (_set("inputs.3.shape", [1, 4]), ["inputs[3].shape", "[1, 4]", "expected 3 features"]),
    (_set("inputs.0.histroy", 2), ["inputs[0].histroy", "unknown key", "2"]),
    (_set("control_rate_hz", -5), ["control_rate_hz", "-5", "> 0"]),
    (_set("control_rate_hz", 5e-324), ["control_rate_hz", "5e-324", "[0.1, 1000.0] Hz"]),
    (_set("control_rate_hz", 0.05), ["control_rate_hz", "0.05", "[0.1, 1000.0] Hz"]),
    (_set("control_rate_hz", 1e6), ["control_rate_hz", "1000000.0", "[0.1, 1000.0] Hz"]),
    (_set("control_rate_hz", 1000), []),  # valid: the upper bound
    (_set("inputs.0.depth.max_m", 0.0), ["inputs[0].depth.max_m", "0.0"]),
    (_set("decoding.base.indices", [0, 9]), ["decoding.base.indices", "[0, 9]", "[0, 5)"]),
    (_set("decoding.arm.mode", "relative"), ["decoding.arm.mode", "'relative'"]),
    (_set("inputs.4.shape", [1, 4]), ["inputs[4].shape", "[1, 4]", "raw action vector"]),
    (_set("inputs.2.components", ["x", "z"]), ["inputs[2].components", "['x', 'z']"]),
    (_set("inputs.0.statistics.std", 0.0), ["inputs[0].statistics.std", "[0.0]", "> 0"]),
    (_set("inputs.1.resize.interpolation", "area"), ["inputs[1].resize.interpolation", "'area'"]),
    (_set("inputs.0.history", 2), ["inputs[0].shape", "[1, 1, 120, 160]", "history 2"]),
    (_set("inputs.3.normalize", True), []),  # valid: statistics are present
    (_set("inputs.3.dtype", "float128"), ["inputs[3].dtype", "'float128'"]),
    (_set("version", 1.0), ["version", "1.0", "string"]),
    (_set("decoding.base.fields", ["linear_x", "yaw_rate"]), ["decoding.base.fields", "yaw_rate"]),
    (_set("decoding.arm.scale", [1.0, 2.0]), ["decoding.arm.scale", "[1.0, 2.0]", "1 value or 3"]),
    (_set("decoding.base.output", "actions"), ["decoding.base.output", "'actions'"]),
    (_set("decoding.base.fields", []), ["decoding.base.fields", "[]", "at least one"]),
    (_set("decoding.arm.joints", []), ["decoding.arm.joints", "[]", "at least one"]),
    (_delete("name"), ["name", "required key is missing"]),
    (_delete("decoding.base"), []),  # valid: an arm-only policy
    (_set("inputs.1.name", "depth"), ["inputs/recurrent.input", "['depth']"]),
    (_set("recurrent", None), []),  # valid: empty means no recurrent state
    (_set("recurrent", {"input": "h"}), ["recurrent", "expected a list", "{'input': 'h'}"]),
    (_set("recurrent", [{"input": "h", "output": "h_out"}]), ["recurrent[0].shape", "missing"]),
]


@pytest.mark.parametrize(("edit", "expected"), BAD_CARDS)
def test_card_errors_name_key_and_value(edit: Edit, expected: list[str]):
    data = card_dict("example_reach")
    edit(data)
    if not expected:
        assert isinstance(parse_card(data, MODELS_DIR), PolicyCard)
        return
    with pytest.raises(CardError) as caught:
        parse_card(data, MODELS_DIR)
    for text in expected:
        assert text in str(caught.value)


@pytest.mark.parametrize("odd_key", [1, None, 2.5, True])
def test_unknown_keys_of_mixed_types_are_card_errors(odd_key: object):
    data = card_dict("example_reach")
    data[odd_key] = "x"  # YAML keys need not be strings: `1:`, `null:`
    data["foo"] = "y"
    with pytest.raises(CardError, match="unknown key"):
        parse_card(data, MODELS_DIR)
    data["inputs"][0]["depth"][odd_key] = "x"  # and below the top level
    del data[odd_key], data["foo"]
    data["inputs"][0]["depth"]["foo"] = "y"
    with pytest.raises(CardError, match=r"inputs\[0\]\.depth\..*unknown key"):
        parse_card(data, MODELS_DIR)


def test_normalize_without_statistics_is_rejected():
    data = card_dict("example_reach")
    del data["inputs"][3]["statistics"]
    data["inputs"][3]["normalize"] = True
    with pytest.raises(CardError, match=r"inputs\[3\]\.normalize.*statistics"):
        parse_card(data, MODELS_DIR)


def test_delta_arm_needs_measured_joints():
    data = card_dict("example_reach")
    data["decoding"]["arm"]["mode"] = "delta"
    data["decoding"]["arm"]["joints"] = ["joint_lift", "joint_arm", "joint_gripper"]
    with pytest.raises(CardError, match=r"decoding\.arm\.joints.*joint_gripper"):
        parse_card(data, MODELS_DIR)


def test_invalid_yaml_is_a_card_error():
    with pytest.raises(CardError, match="invalid YAML"):
        parse_card("name: [unclosed", MODELS_DIR)


def test_example_reach_contract_is_the_fixed_one(reach_card: PolicyCard):
    card = reach_card
    assert card.control_rate_hz == 10
    assert card.joint_names == ("joint_lift", "joint_arm", "joint_wrist_yaw")
    assert card.target_classes == ("cup", "bottle", "bowl")
    shapes = {spec.name: (spec.source, spec.shape, spec.dtype) for spec in card.inputs}
    assert shapes == {
        "depth": ("depth", (1, 1, 120, 160), "float32"),
        "target_mask": ("target_mask", (1, 1, 120, 160), "float32"),
        "pose": ("relative_pose", (1, 3), "float32"),
        "joints": ("joints", (1, 3), "float32"),
        "prev_action": ("prev_action", (1, 5), "float32"),
    }
    depth = card.input("depth").depth
    assert depth is not None
    assert (depth.min_m, depth.max_m, depth.scale, depth.fill_m) == (0.0, 10.0, 0.1, 0.0)
    assert card.input("pose").components == ("x", "y", "yaw")
    assert [(out.name, out.shape) for out in card.outputs] == [("action", (1, 5))]
    base, arm = card.decoding.base, card.decoding.arm
    assert base is not None and arm is not None
    assert base.targets == ("linear_x", "angular_z")
    assert arm.targets == ("joint_lift", "joint_arm", "joint_wrist_yaw")
    assert all(card.input(name).statistics is not None for name in shapes)


def test_ovmm_card_mirrors_homerobot(ovmm_card: PolicyCard):
    card = ovmm_card
    assert card.input("ovmm_nav_goal_segmentation").classes == ("object", "start_receptacle")
    assert card.input("robot_start_gps").components == ("x", "y")
    assert card.input("robot_start_compass").components == ("yaw",)
    assert card.input("not_done_masks").source == "not_done"
    assert [state.shape for state in card.recurrent] == [(2, 1, 128), (2, 1, 128)]
    assert card.action_size == 10
    base = card.decoding.base
    assert base is not None
    # 0.25 m and 30 degrees per step at the card's control rate.
    assert base.scale == pytest.approx(
        (0.25 * card.control_rate_hz, math.radians(30) * card.control_rate_hz), abs=1e-6
    )


def test_load_card_from_onnx_uses_the_embedded_card(reach_card: PolicyCard):
    assert load_card(MODELS_DIR / "example_reach.onnx") == reach_card


def test_embedded_card_that_differs_from_the_file_is_an_error(tmp_path: Path):
    data = card_dict("example_reach")
    data["decoding"]["base"]["scale"] = [0.5, 0.8]
    path = write_card(tmp_path, data)
    with pytest.raises(CardError, match=r"decoding\.base\.scale.*0\.5.*embedded.*0\.3"):
        load_card(path)


def test_card_without_embedded_copy_loads(tmp_path: Path):
    data = card_dict("example_reach")
    path = write_card(tmp_path, data)
    model = onnx.load(tmp_path / data["onnx"])
    kept = [prop for prop in model.metadata_props if prop.key != CARD_METADATA_KEY]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    onnx.save(model, tmp_path / data["onnx"])
    edited = copy.deepcopy(data)
    edited["decoding"]["base"]["scale"] = [0.5, 0.8]
    path = write_card(tmp_path, edited, with_onnx=False)
    base = load_card(path).decoding.base
    assert base is not None and base.scale == (0.5, 0.8)


def test_missing_onnx_file_is_a_card_error(tmp_path: Path):
    path = write_card(tmp_path, card_dict("example_reach"), with_onnx=False)
    with pytest.raises(CardError, match=r"onnx: file not found.*example_reach\.onnx"):
        load_card(path)


def test_a_card_that_is_not_utf8_is_a_card_error(tmp_path: Path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(CardError, match="cannot read the card"):
        load_card(path)


def test_an_onnx_named_in_capitals_is_read_as_a_model(tmp_path: Path):
    upper = tmp_path / "REACH.ONNX"
    upper.write_bytes((MODELS_DIR / "example_reach.onnx").read_bytes())
    assert load_card(upper).name == "example_reach"


def test_an_empty_model_file_is_not_an_onnx_model(tmp_path: Path):
    data = card_dict("example_reach")
    path = write_card(tmp_path, data, with_onnx=False)
    (tmp_path / data["onnx"]).write_bytes(b"")
    with pytest.raises(ModelContractError, match="not an ONNX model: no graph"):
        load_card(path)
