"""Scene loading and validation: the example loads; bad scenes fail naming the problem."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import yaml

from rl_deploy.errors import ConfigError
from rl_deploy.sim import SceneSpec, load_scene, parse_scene


def test_example_scene_matches_the_stack_contract(scene: SceneSpec) -> None:
    # Class ids as the pipeline's default masks config expects them.
    assert scene.classes == ("cup", "bottle", "bowl", "table", "shelf")
    assert [scene.class_id(name) for name in ("cup", "bottle", "bowl")] == [1, 2, 3]
    assert {obj.class_name for obj in scene.objects} == {"cup", "bottle", "bowl"}
    camera = scene.robot.camera
    assert (camera.width, camera.height) == (640, 480)
    assert math.degrees(camera.hfov_rad) == pytest.approx(42.0)
    assert camera.z_m == pytest.approx(1.3, abs=0.05)
    assert camera.pitch_rad > 0  # looks down
    arm = scene.robot.arm
    assert [j.name for j in arm.joints[:3]] == ["joint_lift", "joint_arm", "joint_wrist_yaw"]
    assert scene.task.control_rate_hz == 10.0
    assert scene.topics.rgb == "/camera/color/image_raw"
    assert scene.topics.arm_command == "/arm_controller/joint_trajectory"


def test_known_classes_bound_the_object_classes(scene_path: Path) -> None:
    load_scene(scene_path, known_classes=["cup", "bottle", "bowl"])
    with pytest.raises(ConfigError, match=r"object 'bottle_floor'.*unknown class 'bottle'"):
        load_scene(scene_path, known_classes=["cup", "bowl"])


def test_unknown_object_class_is_named(scene_document: dict[str, Any]) -> None:
    scene_document["objects"][0]["class"] = "teapot"
    with pytest.raises(ConfigError, match=r"object 'cup_floor'.*unknown class 'teapot'"):
        parse_scene(scene_document)


def test_class_shape_outside_the_class_table_is_named(scene_document: dict[str, Any]) -> None:
    scene_document["object_classes"]["mug"] = {"shape": "cup", "radius_m": 0.04, "height_m": 0.1}
    with pytest.raises(ConfigError, match=r"unknown class 'mug'"):
        parse_scene(scene_document)


def test_overlapping_objects_are_named(scene_document: dict[str, Any]) -> None:
    objects = scene_document["objects"]
    objects[1]["position_m"] = [objects[0]["position_m"][0] + 0.05, objects[0]["position_m"][1]]
    with pytest.raises(ConfigError, match=r"object 'bottle_floor' overlaps object 'cup_floor'"):
        parse_scene(scene_document)


def test_object_inside_furniture_footprint_is_refused(scene_document: dict[str, Any]) -> None:
    scene_document["objects"][0]["position_m"] = scene_document["furniture"][0]["position_m"]
    with pytest.raises(ConfigError, match=r"object 'cup_floor'.*overlaps furniture 'table'"):
        parse_scene(scene_document)


def test_object_off_its_support_is_refused(scene_document: dict[str, Any]) -> None:
    scene_document["objects"][3]["position_m"] = [0.0, 0.0]  # cup_table, far from the table
    with pytest.raises(ConfigError, match=r"object 'cup_table'.*does not fit on 'table'"):
        parse_scene(scene_document)


def test_object_outside_the_room_is_refused(scene_document: dict[str, Any]) -> None:
    scene_document["objects"][0]["position_m"] = [9.0, 0.0]
    with pytest.raises(ConfigError, match=r"object 'cup_floor'.*outside the room"):
        parse_scene(scene_document)


def test_robot_without_camera_is_refused(scene_document: dict[str, Any]) -> None:
    del scene_document["robot"]["camera"]
    with pytest.raises(ConfigError, match=r"robot 'stretch_like' has no camera"):
        parse_scene(scene_document)


def test_typo_in_a_key_is_refused(scene_document: dict[str, Any]) -> None:
    scene_document["robot"]["camera"]["hfov"] = 42.0
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['robot\.camera\.hfov'\]"):
        parse_scene(scene_document)


def test_bad_value_names_its_key(scene_document: dict[str, Any]) -> None:
    scene_document["robot"]["camera"]["width"] = "wide"
    with pytest.raises(ConfigError, match=r"robot\.camera\.width must be an integer"):
        parse_scene(scene_document)


def test_object_too_tall_for_its_shelf_level(scene_document: dict[str, Any]) -> None:
    scene_document["object_classes"]["bottle"]["height_m"] = 0.4  # boards are 0.35 m apart
    with pytest.raises(ConfigError, match=r"'bottle_shelf'.*does not fit under the next level"):
        parse_scene(scene_document)


def test_unreadable_file_names_the_path(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken\.yaml"):
        load_scene(path)


@pytest.mark.parametrize("text", ["", "- room\n"])
def test_a_scene_file_that_is_not_a_mapping_says_so(tmp_path: Path, text: str) -> None:
    path = tmp_path / "scene.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"scene\.yaml: the document must be a mapping"):
        load_scene(path)


def test_scene_file_round_trip(tmp_path: Path, scene_document: dict[str, Any]) -> None:
    path = tmp_path / "scene.yaml"
    path.write_text(yaml.safe_dump(scene_document), encoding="utf-8")
    assert load_scene(path) == parse_scene(scene_document)
