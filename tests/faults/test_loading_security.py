"""What the runtime loads cannot run code or widen limits: no unpickling anywhere in it, no
rclpy/torch/ultralytics pulled in, sha256 pins checked (test_inprocess_faults), and a policy card
asking for more speed than the robot profile allows never gets it."""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml
from fault_helpers import REPO, repo_config

from rl_deploy.bench.faults import VirtualRobot
from rl_deploy.bench.models import constant_policy, write_card_variant
from rl_deploy.bench.world import SyntheticWorld
from rl_deploy.pipeline import Pipeline
from rl_deploy.policy import Policy, RawObservation, load_card
from rl_deploy.policy.card import PolicyCard
from rl_deploy.replay.synthetic import SyntheticBagSpec

CORE = REPO / "ros_ws" / "src" / "rl_deploy" / "rl_deploy"
RUNTIME_MODULES = (
    "rl_deploy.codec",
    "rl_deploy.policy",
    "rl_deploy.pipeline",
    "rl_deploy.replay",
    "rl_deploy.safety",
    "rl_deploy.guard",
    "rl_deploy.perception",
    "rl_deploy.mask_sources",
    "rl_deploy.cli",
)
# Export-time code (torch, ultralytics) and the benchmark that compares against Ultralytics.
NOT_RUNTIME = (CORE / "tools", CORE / "bench" / "perception.py")
UNPICKLERS = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}


def test_runtime_modules_do_not_import_rclpy_torch_or_ultralytics(tmp_path):
    script = f"""
import json, sys
from pathlib import Path
for name in {RUNTIME_MODULES!r}:
    __import__(name)
from rl_deploy.config import PipelineConfig
from rl_deploy.pipeline import Pipeline
from rl_deploy.replay import SyntheticBagSpec, replay, write_synthetic_bag
spec = SyntheticBagSpec(seconds=0.5, width=64, height=48)
bag = write_synthetic_bag(Path({str(tmp_path)!r}) / "bag", spec)
config = PipelineConfig(base_dir={str(REPO)!r})
replay(bag, Path({str(tmp_path)!r}) / "out", config, progress=False)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("rclpy", "torch", "ultralytics"))
print(json.dumps(heavy))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, cwd=REPO
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []


def _runtime_sources() -> list[Path]:
    sources = [*CORE.rglob("*.py"), *(REPO / "ros_ws" / "src" / "rl_deploy_ros").rglob("*.py")]
    return [p for p in sources if not any(p == x or x in p.parents for x in NOT_RUNTIME)]


def _unpickling(path: Path) -> list[str]:
    """Imports of unpicklers or torch, torch.load / pickle.load(s) calls, allow_pickle=True."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        found += [f"import {n}" for n in names if n.split(".")[0] in UNPICKLERS | {"torch"}]
        if not isinstance(node, ast.Call):
            continue
        called = ast.unparse(node.func)
        owner, _, function = called.rpartition(".")
        if called.endswith("torch.load") or (owner in UNPICKLERS and function in ("load", "loads")):
            found.append(f"call {called}")
        found += [
            "allow_pickle=True"
            for keyword in node.keywords
            if keyword.arg == "allow_pickle"
            and not (isinstance(keyword.value, ast.Constant) and keyword.value.value is False)
        ]
    return found


def test_no_runtime_code_unpickles():
    sources = _runtime_sources()
    assert CORE / "pipeline.py" in sources and CORE / "policy" / "runner.py" in sources
    hits = {str(path.relative_to(REPO)): _unpickling(path) for path in sources}
    assert {path: found for path, found in hits.items() if found} == {}


def test_the_unpickling_scan_finds_what_it_looks_for(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import pickle\nimport torch\nimport numpy as np\n"
        "torch.load('w.pt')\npickle.loads(b'')\nnp.load('x.npy', allow_pickle=True)\n"
        "np.load('y.npy', allow_pickle=False)\n"
    )
    assert _unpickling(bad) == [
        "import pickle",
        "import torch",
        "call torch.load",
        "call pickle.loads",
        "allow_pickle=True",
    ]


def _slow_robot_profile(tmp_path: Path, linear_mps: float, angular_rps: float) -> Path:
    profile = yaml.safe_load((REPO / "config" / "robots" / "diff_drive_arm.yaml").read_text())
    profile["robot"]["base"].update(max_linear_mps=linear_mps, max_angular_rps=angular_rps)
    path = tmp_path / "slow_robot.yaml"
    path.write_text(yaml.safe_dump(profile))
    return path


def test_a_card_cannot_widen_the_robot_limits(tmp_path):
    config = repo_config()
    card_path = config.resolve(config.policy.card)
    card: PolicyCard = load_card(card_path)
    assert card.decoding.base is not None
    # the card allows 0.3 m/s and 0.8 rad/s; this policy always asks for the card's maximum
    flat_out = write_card_variant(card, card_path, constant_policy(card, 1.0), tmp_path)
    policy = Policy.load(flat_out, providers=["CPUExecutionProvider"])
    world = SyntheticWorld(SyntheticBagSpec(width=160, height=120), config.topics, frames=2)
    depth = world.depth_m[0]
    asked = policy.step(
        RawObservation(
            depth_m=depth,
            masks={"cup": (world.class_ids[0] == 1).view(np.uint8)},
            joints=np.array([0.5, 0.1, 0.0]),
            pose=world.pose_at(world.spec.start_ns),
            target_class="cup",
        )
    ).command.base
    assert (asked.linear_x, asked.angular_z) == (0.3, 0.8)
    # ... on a robot whose profile allows 0.1 m/s and 0.2 rad/s
    slow = dataclasses.replace(
        config,
        policy=dataclasses.replace(config.policy, card=str(flat_out)),
        robot_profile=str(_slow_robot_profile(tmp_path, 0.1, 0.2)),
    )
    robot = VirtualRobot(Pipeline.from_config(slow), world)
    records = robot.run(3.0)
    driven = [r.command.base for r in records if r.zero_reason is None]
    assert len(driven) >= 25
    assert max(abs(b.linear_x) for b in driven) == 0.1
    assert max(abs(b.angular_z) for b in driven) == 0.2
    for record in records:  # zero ticks included
        assert (
            abs(record.command.base.linear_x) <= 0.1 and abs(record.command.base.angular_z) <= 0.2
        )
