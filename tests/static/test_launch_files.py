"""Launch files cannot run here (no `ros2 launch`): check what they name against the package."""

from __future__ import annotations

import importlib

import pytest
from static_sources import LAUNCH_FILES, PACKAGE, ROOT, LaunchFile, console_scripts

LAUNCHES = {path.name: LaunchFile.read(path) for path in LAUNCH_FILES}
# Packages a launch file may start that this repository does not provide (Gazebo's bridge).
EXTERNAL_PACKAGES = {"ros_gz_bridge"}


def test_the_three_launch_files_exist():
    assert set(LAUNCHES) == {"robot.launch.py", "sim_gazebo.launch.py", "replay.launch.py"}


@pytest.mark.parametrize("name", sorted(LAUNCHES))
def test_defines_generate_launch_description(name):
    assert "generate_launch_description" in LAUNCHES[name].functions


@pytest.mark.parametrize("name", sorted(LAUNCHES))
def test_every_argument_has_a_description(name):
    launch = LAUNCHES[name]
    assert launch.arguments, "no DeclareLaunchArgument found"
    empty = [arg for arg, text in launch.arguments.items() if len(text.strip()) < 10]
    assert not empty, f"arguments without a description: {empty}"


@pytest.mark.parametrize("name", sorted(LAUNCHES))
def test_every_configuration_read_is_declared(name):
    launch = LAUNCHES[name]
    undeclared = sorted(launch.used - set(launch.arguments))
    assert not undeclared, f"LaunchConfiguration of undeclared arguments: {undeclared}"


@pytest.mark.parametrize("name", sorted(LAUNCHES))
def test_nodes_name_installed_entry_points(name):
    scripts = console_scripts()
    for node in LAUNCHES[name].nodes:
        if node["package"] == PACKAGE:
            assert node["executable"] in scripts, node
        else:
            assert node["package"] in EXTERNAL_PACKAGES, node


def test_entry_points_resolve_to_main_functions():
    scripts = console_scripts()
    assert set(scripts) >= {"policy_node", "perception_node", "command_guard", "stack_node"}
    for target in scripts.values():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), target


@pytest.mark.parametrize("name", sorted(LAUNCHES))
def test_share_paths_exist_in_the_repository(name):
    # share/rl_deploy_ros/{launch,config,models} are installed from the top-level folders.
    paths = LAUNCHES[name].share_paths
    assert paths, "no installed file referenced"
    for parts in paths:
        assert ROOT.joinpath(*parts).exists(), parts


@pytest.mark.parametrize("name", ["sim_gazebo.launch.py", "replay.launch.py"])
def test_included_stack_gets_only_arguments_it_declares(name):
    robot = LAUNCHES["robot.launch.py"]
    includes = LAUNCHES[name].includes
    (passed,) = [keys for source, keys in includes.items() if "robot.launch.py" in source]
    assert passed, "no launch arguments passed to robot.launch.py"
    assert passed <= set(robot.arguments), sorted(passed - set(robot.arguments))


@pytest.mark.parametrize("name", sorted(LAUNCHES))
def test_default_robot_profile_and_card_exist(name):
    defaults = LAUNCHES[name].defaults
    if "robot" in defaults:
        assert (ROOT / "config" / "robots" / f"{defaults['robot']}.yaml").exists()
    if "card" in defaults:
        assert (ROOT / defaults["card"]).exists()
    if "scene" in defaults:
        assert (ROOT / "config" / "scenes" / "generated" / defaults["scene"] / "world.sdf").exists()


def test_gazebo_reads_the_class_id_from_its_rgb8_label_map():
    # Gazebo's labels_map is rgb8 (config/scenes/README.md): on the default channel (-1, a
    # single-channel image) every segmentation frame would be refused and the robot held still.
    includes = LAUNCHES["sim_gazebo.launch.py"].includes
    (passed,) = [keys for source, keys in includes.items() if "robot.launch.py" in source]
    assert "segmentation_channel" in passed


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_flags_in_expressions_read_true_as_conditions_do(path):
    """IfCondition takes true and 1 in any case; an expression comparing a flag with 'true'
    alone would read single_process:=True as false and start the other set of nodes."""
    text = path.read_text()
    assert "== 'true'" not in text and "!= 'true'" not in text


def test_the_true_test_agrees_with_if_condition():
    namespace: dict[str, object] = {}
    source = (ROOT / "launch" / "robot.launch.py").read_text()
    line = next(line for line in source.splitlines() if line.startswith("TRUE_TEST ="))
    exec(line, namespace)
    for flag, truth in [
        ("true", True),
        ("True", True),
        ("1", True),
        ("false", False),
        ("0", False),
    ]:
        assert eval(f"'{flag}{namespace['TRUE_TEST']}") is truth, flag
