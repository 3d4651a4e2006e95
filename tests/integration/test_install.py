"""The colcon-installed package: entry points where `ros2 run` looks, and share files for launch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from ros_harness import ROOT, executable

pytestmark = pytest.mark.integration

sys.path.insert(0, str(ROOT / "tests" / "static"))
from static_sources import LAUNCH_FILES, console_scripts  # noqa: E402


def test_every_entry_point_is_installed_for_ros2_run(ros_env):
    for name in console_scripts():
        assert executable(ros_env, "rl_deploy_ros", name).name == name


def test_installed_entry_point_starts(ros_env):
    player = executable(ros_env, "rl_deploy_ros", "bag_play")
    result = subprocess.run(
        [str(player), "--help"],
        env=ros_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "--clock" in result.stdout


def test_share_holds_launch_config_and_models(ros_install: Path):
    share = ros_install / "rl_deploy_ros" / "share" / "rl_deploy_ros"
    for launch in LAUNCH_FILES:
        assert (share / "launch" / launch.name).is_file()
    for relative in (
        "config/policy_node.yaml",
        "config/robots/stretch_like.yaml",
        "config/dds/fastdds_large_frames.xml",
    ):
        assert (share / relative).is_file()
    assert (share / "models" / "example_reach.yaml").is_file()
    assert (share / "models" / "example_reach.onnx").is_file()
