"""Helpers of the fault tests: the shipped policy_node config, read from the repository."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from rl_deploy.bench.e2e import bench_config
from rl_deploy.config import PipelineConfig

REPO = Path(__file__).resolve().parents[2]


def repo_config(masks: str = "segmentation") -> PipelineConfig:
    """config/policy_node.yaml with stamped commands, paths taken from the repository."""
    config = bench_config(REPO / "config" / "policy_node.yaml", masks)
    return dataclasses.replace(config, base_dir=str(REPO))
