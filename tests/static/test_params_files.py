"""config/<node>.yaml against the parameters each node declares, and against the core's checks."""

from __future__ import annotations

import pytest
import rclpy
import yaml
from rclpy.node import Node
from static_sources import ROOT, params_document

from rl_deploy.config import PipelineConfig
from rl_deploy.guard import GuardConfig, GuardIO
from rl_deploy.safety import load_robot_limits
from rl_deploy_ros.params import ParamSpec, guard_specs, perception_specs, policy_specs

NODES = {
    "policy_node": policy_specs(),
    "perception_node": perception_specs(),
    "command_guard": guard_specs(),
}
PYTHON_TYPES = {"bool": bool, "integer": int, "double": float, "string": str}


def matches(spec: ParamSpec, value: object) -> bool:
    """Would ROS accept `value` from YAML for this declared type (no implicit conversions)?"""
    if spec.kind.endswith("[]"):
        item = PYTHON_TYPES[spec.kind[:-2]]
        return isinstance(value, list) and all(type(v) is item for v in value)
    return type(value) is PYTHON_TYPES[spec.kind]


@pytest.mark.parametrize("node", sorted(NODES))
def test_every_key_is_declared_with_its_type(node):
    specs = {spec.name: spec for spec in NODES[node]}
    document = params_document(node)
    unknown = sorted(set(document) - set(specs))
    assert not unknown, f"config/{node}.yaml sets parameters {node} does not declare: {unknown}"
    wrong = [(k, v, specs[k].kind) for k, v in document.items() if not matches(specs[k], v)]
    assert not wrong, f"values of the wrong type: {wrong}"


@pytest.mark.parametrize("node", sorted(NODES))
def test_required_parameters_are_set(node):
    document = params_document(node)
    required = [spec.name for spec in NODES[node] if spec.required]
    assert required, "each node has deployment-specific parameters"
    assert not [name for name in required if name not in document]


@pytest.mark.parametrize("node", sorted(NODES))
def test_every_parameter_has_a_description(node):
    undocumented = [spec.name for spec in NODES[node] if len(spec.description) < 10]
    assert not undocumented


@pytest.mark.parametrize("node", sorted(NODES))
def test_defaults_have_the_declared_type(node):
    assert all(matches(spec, spec.default) or spec.default == [] for spec in NODES[node])


@pytest.mark.parametrize("namespace", ["", "robot1"])
@pytest.mark.parametrize("node", sorted(NODES))
def test_params_file_reaches_the_node_in_any_namespace(node, namespace, monkeypatch):
    # rcl matches the file's keys against the node's full name: a bare `policy_node:` is
    # skipped by /robot1/policy_node, which then runs on code defaults (outputs included).
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    monkeypatch.setenv("ROS_DOMAIN_ID", str(150 + len(namespace) + sorted(NODES).index(node)))
    path = ROOT / "config" / f"{node}.yaml"
    context = rclpy.Context()
    rclpy.init(args=["--ros-args", "--params-file", str(path)], context=context)
    try:
        ros_node = Node(
            node,
            namespace=namespace,
            context=context,
            automatically_declare_parameters_from_overrides=True,
        )
        read = {name: p.value for name, p in ros_node.get_parameters_by_prefix("").items()}
        ros_node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
    document = params_document(node)
    assert {name: read.get(name) for name in document} == document


def test_policy_params_file_is_a_valid_pipeline_config():
    # The same file is what `rl-deploy replay --config` reads.
    config = PipelineConfig.from_yaml(ROOT / "config" / "policy_node.yaml")
    assert config.topics.cmd_vel == "/rl_deploy/cmd_vel"
    assert (ROOT / config.policy.card).exists()
    load_robot_limits(ROOT / config.robot_profile).require_joints(
        ("joint_lift", "joint_arm", "joint_wrist_yaw")
    )


def test_guard_params_file_builds_the_guard():
    values = params_document("command_guard")
    limits = load_robot_limits(ROOT / values["robot_profile"])
    config = GuardConfig(
        limits=limits,
        period_s=values["period_s"],
        input_timeout_s=values["input_timeout_s"],
        teleop_timeout_s=values["teleop_timeout_s"],
        joints_timeout_s=values["joints_timeout_s"],
    )
    GuardIO(
        arm_command_type=values["arm_command_type"],
        arm_joint_names=tuple(values["arm_joint_names"]),
    )
    # Catching a dead 10 Hz policy within two of its periods needs timeout + one tick < 0.2 s.
    assert config.input_timeout_s + config.period_s < 2 * 0.1


def test_guard_and_policy_profiles_agree():
    guard = params_document("command_guard")["robot_profile"]
    policy = params_document("policy_node")["robot_profile"]
    assert guard == policy
    profile = yaml.safe_load((ROOT / guard).read_text())
    assert set(profile) == {"robot"}
