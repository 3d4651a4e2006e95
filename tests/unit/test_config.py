"""Pipeline configuration: defaults, ROS params files, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from rl_deploy.config import PipelineConfig
from rl_deploy.errors import ConfigError


def test_ros_params_file_is_accepted(tmp_path: Path):
    path = tmp_path / "policy_node.yaml"
    path.write_text(
        "policy_node:\n  ros__parameters:\n"
        "    pose_source: odometry\n    topics: {pose: /odom}\n    sync_slop_s: 0.02\n"
        "    use_sim_time: true\n    ros: {autostart: true, qos: {camera: sensor_data}}\n"
    )
    config = PipelineConfig.from_yaml(path)
    assert config.pose_source == "odometry"
    assert config.topics.pose == "/odom"
    assert config.topics.depth == "/camera/depth/image_raw"
    assert config.sync_slop_s == 0.02
    assert config.resolve("models/x.yaml") == Path.cwd() / "models/x.yaml"
    assert config.resolve("/abs/card.yaml") == Path("/abs/card.yaml")
    pinned = PipelineConfig.from_mapping({"base_dir": str(tmp_path)})
    assert pinned.resolve("models/x.yaml") == tmp_path / "models/x.yaml"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"pose_source": "gps"}, r"pose_source must be one of .*got 'gps'"),
        ({"topics": {"dpeth": "/x"}}, r"unknown config key\(s\) \['topics.dpeth'\]"),
        ({"sync_slop_s": "fast"}, r"sync_slop_s must be a number, got 'fast'"),
        ({"sync_slop_s": 10**400}, r"sync_slop_s must be a number within float range, got 1000"),
        ({"timeouts": {"camera_s": -1}}, r"timeouts.camera_s must be a finite number > 0"),
        ({"timeouts": {"pose_s": 60.0}}, r"timeouts.pose_s must be at most 5.0, got 60.0"),
        ({"sync_slop_s": 2.0}, r"sync_slop_s must be at most 1.0"),
        ({"masks": {"depth_tolerance_m": -0.1}}, r"masks.depth_tolerance_m must be a finite"),
        ({"depth_min_valid_fraction": 1.5}, r"depth_min_valid_fraction must be at most 1.0"),
        ({"masks": {"class_ids": [1, 2]}}, r"same length"),
        ({"masks": {"class_ids": [1, "a"]}}, r"masks.class_ids must be a list of int"),
        ({"cmd_vel_stamped": "yes"}, r"cmd_vel_stamped must be true or false"),
        (
            {"detector": {"protos_on_demand": False}},
            r"detector.protos_on_demand must be a string, got False \(quote on / off",
        ),
        ({"policy": {"intra_op_threads": -2}}, r"policy.intra_op_threads must be >= -1, got -2"),
    ],
)
def test_bad_values_name_the_key(values, message):
    with pytest.raises(ConfigError, match=message):
        PipelineConfig.from_mapping(values)


def test_unreadable_file(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read config"):
        PipelineConfig.from_yaml(tmp_path / "missing.yaml")
