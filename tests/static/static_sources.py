"""What the static checks read without running ROS: launch files, setup.py, params files."""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
ROS_PACKAGE = ROOT / "ros_ws" / "src" / "rl_deploy_ros"
LAUNCH_FILES = sorted((ROOT / "launch").glob("*.launch.py"))
PACKAGE = "rl_deploy_ros"

if str(ROS_PACKAGE) not in sys.path:  # the node modules' parameter specs, without colcon
    sys.path.insert(0, str(ROS_PACKAGE))


def console_scripts() -> dict[str, str]:
    """name → "module:function" from rl_deploy_ros/setup.py's entry points."""
    tree = ast.parse((ROS_PACKAGE / "setup.py").read_text())
    scripts: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr | ast.Constant) and "=" in _text(node):
            name, _, target = _text(node).partition("=")
            if ":" in target:
                scripts[name.strip()] = target.strip().replace("{PACKAGE}", PACKAGE)
    return scripts


def _text(node: ast.AST) -> str:
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else ""
    if isinstance(node, ast.JoinedStr):
        return "".join(
            v.value if isinstance(v, ast.Constant) else "{" + ast.unparse(v.value) + "}"
            for v in node.values
        )
    return ""


@dataclass
class LaunchFile:
    """The parts of a launch file the checks need, read from its syntax tree."""

    path: Path
    arguments: dict[str, str] = field(default_factory=dict)  # name → description
    defaults: dict[str, str] = field(default_factory=dict)  # name → literal default
    used: set[str] = field(default_factory=set)  # LaunchConfiguration names read
    nodes: list[dict[str, Any]] = field(default_factory=list)  # Node(...) literal keywords
    includes: dict[str, set[str]] = field(default_factory=dict)  # file → launch_arguments keys
    share_paths: list[tuple[str, ...]] = field(default_factory=list)  # [SHARE, "a", "b"] parts
    functions: set[str] = field(default_factory=set)

    @classmethod
    def read(cls, path: Path) -> LaunchFile:
        tree = ast.parse(path.read_text(), str(path))
        launch = cls(path)
        constants = {
            target.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                launch.functions.add(node.name)
            elif isinstance(node, ast.Assign) and "ARGUMENTS" in map(ast.unparse, node.targets):
                launch._argument_table(node.value)
            elif isinstance(node, ast.Call):
                launch._call(node, constants)
        return launch

    def _argument_table(self, table: ast.expr) -> None:
        for row in table.elts:  # type: ignore[attr-defined]
            name, default, description = row.elts
            self.arguments[name.value] = _text(description)
            if isinstance(default, ast.Constant) and isinstance(default.value, str):
                self.defaults[name.value] = default.value

    def _call(self, node: ast.Call, constants: dict[str, Any]) -> None:
        callee = ast.unparse(node.func)
        first = node.args[0] if node.args else None
        literal = first.value if isinstance(first, ast.Constant) else None
        keywords = {k.arg: k.value for k in node.keywords}
        if callee == "DeclareLaunchArgument" and isinstance(literal, str):
            self.arguments[literal] = _text(keywords.get("description", ast.Constant("")))
        elif callee in ("LaunchConfiguration", "arg") and isinstance(literal, str):
            self.used.add(literal)
        elif callee == "Node":
            self.nodes.append(
                {
                    key: constants.get(value.id, value.id)
                    if isinstance(value, ast.Name)
                    else getattr(value, "value", None)
                    for key, value in keywords.items()
                }
            )
        elif callee == "PathJoinSubstitution" and isinstance(first, ast.List) and first.elts:
            rest = first.elts[1:]
            if ast.unparse(first.elts[0]) == "SHARE" and all(
                isinstance(e, ast.Constant) for e in rest
            ):
                self.share_paths.append(tuple(e.value for e in rest))  # type: ignore[attr-defined]
        elif callee == "IncludeLaunchDescription" and first is not None:
            self.includes[ast.unparse(first)] = _argument_keys(keywords.get("launch_arguments"))


def _argument_keys(arguments: ast.expr | None) -> set[str]:
    """Keys of `{...}.items()` given as launch_arguments (literal keys and dict comprehensions)."""
    if not (isinstance(arguments, ast.Call) and isinstance(arguments.func, ast.Attribute)):
        return set()
    mapping = arguments.func.value
    if not isinstance(mapping, ast.Dict):
        return set()
    keys = {k.value for k in mapping.keys if isinstance(k, ast.Constant)}
    for value in mapping.values:
        if isinstance(value, ast.DictComp):
            keys |= {e.value for e in value.generators[0].iter.elts}  # type: ignore[attr-defined]
    return keys


def params_document(node: str) -> dict[str, Any]:
    """The `ros__parameters` of config/<node>.yaml, flattened to dotted names."""
    document = yaml.safe_load((ROOT / "config" / f"{node}.yaml").read_text())
    key = f"/**/{node}"  # the node in any namespace
    assert list(document) == [key], f"config/{node}.yaml must hold only `{key}:`"
    return dict(_flatten(document[key]["ros__parameters"]))


def _flatten(mapping: dict[str, Any], prefix: str = ""):
    for key, value in mapping.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield prefix + key, value
