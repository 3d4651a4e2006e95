"""rl_deploy_ros: rclpy nodes around the rl_deploy core (ament_python, built by colcon).

Launch files, params and robot profiles live at the repository's top level and are
installed into share/rl_deploy_ros, where `ros2 launch` and the nodes find them.
"""

import os
from pathlib import Path

from setuptools import setup

PACKAGE = "rl_deploy_ros"
HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]


def shared(folder: str, pattern: str) -> list[tuple[str, list[str]]]:
    """data_files entries for REPO/folder/pattern, paths relative to this file."""
    files = sorted(p for p in (REPO / folder).glob(pattern) if p.is_file())
    groups: dict[str, list[str]] = {}
    for path in files:
        target = f"share/{PACKAGE}/{path.parent.relative_to(REPO).as_posix()}"
        groups.setdefault(target, []).append(os.path.relpath(path, HERE))
    return sorted(groups.items())


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=[PACKAGE],
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        *shared("launch", "*.launch.py"),
        *shared("config", "*.yaml"),
        *shared("config", "robots/*.yaml"),
        *shared("config", "dds/*.xml"),
        *shared("config", "scenes/**/*"),
        *shared("models", "*.yaml"),
        *shared("models", "*.onnx"),
        *shared("models", "detector/*"),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    license="Apache-2.0",
    description="rclpy lifecycle nodes, launch files and configuration of rl_deploy.",
    entry_points={
        "console_scripts": [
            f"command_guard = {PACKAGE}.command_guard:main",
            f"policy_node = {PACKAGE}.policy_node:main",
            f"perception_node = {PACKAGE}.perception_node:main",
            f"stack_node = {PACKAGE}.stack_node:main",
            f"bag_play = {PACKAGE}.bag_play:main",
            f"sim_node = {PACKAGE}.sim_node:main",
        ]
    },
)
