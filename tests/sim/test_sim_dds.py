"""`rl-deploy sim --mode dds`: the simulator, perception, policy and guard as separate ROS 2
processes on one DDS domain, closing the loop through real topics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from sim_helpers import ROOT

from rl_deploy import codec
from rl_deploy.codec.typestore import TWIST
from rl_deploy.replay import Bag
from rl_deploy.sim.evaluate import (
    HELD_OUT_SEED,
    SimRun,
    default_config,
    evaluate,
    sim_config,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_one_episode_over_dds(tmp_path: Path, scene_document: dict[str, Any], monkeypatch):
    monkeypatch.chdir(ROOT)  # the nodes read config/ and models/ from the working directory
    scene_document["task"]["max_episode_s"] = 3.0
    scene_path = tmp_path / "short_room.yaml"
    scene_path.write_text(yaml.safe_dump(scene_document))
    config = default_config(str(ROOT))
    run = SimRun(
        mode="dds",
        episodes=1,
        seed=HELD_OUT_SEED,
        scene_path=scene_path,
        config=sim_config(config, "dds"),
        out_dir=tmp_path / "out",
        record=True,
    )
    summary, results = evaluate(run)
    assert summary["mode"] == "dds" and summary["episodes"] == 1
    (result,) = results
    assert result.seed == HELD_OUT_SEED and result.elapsed_s == pytest.approx(3.0, abs=0.05)
    assert result.ticks > 0  # commands came back over DDS
    # The sim recorded what it sent and what came back: the guard's velocity commands moved it.
    bag = tmp_path / "out" / "bags" / f"episode_{HELD_OUT_SEED}.mcap"
    speeds = [
        codec.decode(message.data, TWIST).linear.x
        for message in Bag(bag).messages()
        if message.topic == "/cmd_vel"
    ]
    assert speeds and np.max(np.abs(speeds)) > 0.0
    assert result.path_length_m > 0.0
    logs = sorted(path.name.split("-")[0] for path in (tmp_path / "out" / "logs").iterdir())
    assert logs == ["command_guard", "perception_node", "policy_node", "sim_node"]
