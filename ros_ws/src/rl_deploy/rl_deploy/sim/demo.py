"""`rl-deploy demo` (and `make demo`): the product end to end without a robot.

A few closed-loop episodes of the example policy in the MuJoCo room through the whole stack
(detector masks, observation builder, ONNX policy, safety), each recorded as a bag; then every bag
is replayed with `rl-deploy replay`, which writes its own report.
"""

from __future__ import annotations

import json
from pathlib import Path

from rl_deploy.sim.evaluate import (
    DEFAULT_SCENE,
    HELD_OUT_SEED,
    SimRun,
    default_config,
    evaluate,
    sim_config,
)

DEMO_EPISODES = 3


def run_demo(out: Path, episodes: int = DEMO_EPISODES) -> int:
    from rl_deploy.cli import main as cli_main

    run = SimRun(
        mode="stack",
        episodes=episodes,
        seed=HELD_OUT_SEED,
        scene_path=Path(DEFAULT_SCENE),
        config=sim_config(default_config(), "stack"),
        out_dir=out / "sim",
        record=True,
    )
    summary, _ = evaluate(run)
    replays = []
    for bag in sorted((out / "sim" / "bags").glob("*.mcap")):
        target = out / "replay" / bag.stem
        args = ["replay", str(bag), "--config", str(bag.with_suffix(".yaml"))]
        code = cli_main([*args, "--out", str(target), "--no-progress"])
        if code != 0:
            return code
        replays.append(str(target / "report.html"))
    shown = {key: value for key, value in summary.items() if key != "per_episode"}
    print(json.dumps(shown, indent=2))
    print(f"closed-loop report: {out / 'sim' / 'report.html'}")
    for report in replays:
        print(f"replay report: {report}")
    return 0
