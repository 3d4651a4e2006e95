"""`rl-deploy bench policy`: one policy step (observation build, run, decode) per card.

Peer: the bare ONNX Runtime `session.run` of the same model on the same, prebuilt feeds, in
the same process; the difference is what the card-driven code around the network costs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from rl_deploy.bench.measure import interleaved_ms, median, positive_int, ratio, summary
from rl_deploy.bench.world import SyntheticWorld
from rl_deploy.config import PolicyConfig
from rl_deploy.policy import Policy, PolicyCard, RawObservation
from rl_deploy.policy.runner import select_providers

CARDS = ("models/example_reach.yaml", "models/ovmm_nav.yaml")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cards", nargs="+", type=Path, default=[Path(c) for c in CARDS])
    parser.add_argument("--rounds", type=positive_int, default=200, help="timed steps per card")
    parser.add_argument(
        "--providers", nargs="+", default=list(PolicyConfig().providers), help="ONNX Runtime EPs"
    )
    parser.add_argument("--width", type=positive_int, default=640, help="camera width (px)")
    parser.add_argument("--height", type=positive_int, default=480, help="camera height (px)")


def run(args: argparse.Namespace) -> dict[str, Any]:
    from rl_deploy.replay.synthetic import SyntheticBagSpec

    world = SyntheticWorld(SyntheticBagSpec(width=args.width, height=args.height), frames=1)
    results = [_bench_card(card, world, args) for card in args.cards]
    return {
        "benchmark": "policy",
        "peer": "bare onnxruntime InferenceSession.run on prebuilt feeds (same model, same EP)",
        "ratio_means": "policy step p50 / bare run p50",
        "rounds": args.rounds,
        "camera": f"{args.width}x{args.height}",
        "results": results,
    }


def _bench_card(card_path: Path, world: SyntheticWorld, args: argparse.Namespace) -> dict[str, Any]:
    providers = select_providers(args.providers)
    policy = Policy.load(card_path, providers=providers)
    raw = raw_observation(policy.card, world)
    policy.reset(raw.pose)
    feeds = policy.builder.build(raw)
    policy.reset(raw.pose)
    card = policy.card
    feeds.update(
        {state.input: np.zeros(state.shape, dtype=state.dtype) for state in card.recurrent}
    )
    session = ort.InferenceSession(card.onnx_path.read_bytes(), providers=providers)
    stages: dict[str, list[float]] = {"observation": [], "inference": [], "decode": []}

    def ours() -> None:
        step = policy.step(raw)
        for name, values in stages.items():
            values.append(step.timings_ms[name])

    def peer() -> None:
        session.run(None, feeds)

    times = interleaved_ms({"step": ours, "bare_run": peer}, rounds=args.rounds)
    step_ms, bare_ms = summary(times["step"]), summary(times["bare_run"])
    return {
        "card": card.name,
        "provider": policy.runner.provider,
        "step_ms": step_ms,
        "stage_p50_ms": {name: round(median(v[-args.rounds :]), 4) for name, v in stages.items()},
        "bare_run_ms": bare_ms,
        "overhead_p50_ms": round(step_ms["p50"] - bare_ms["p50"], 4),
        "ratio": ratio(step_ms["p50"], bare_ms["p50"]),
    }


def raw_observation(card: PolicyCard, world: SyntheticWorld) -> RawObservation:
    """The world's first frame as the card's inputs: its target class, joints at mid-range."""
    class_ids = world.class_ids[0]
    target = card.target_classes[0]
    masks = {name: (class_ids == 1).view(np.uint8) for name in (target, *card.target_classes)}
    masks |= {"start_receptacle": (class_ids == 0).view(np.uint8)}
    return RawObservation(
        depth_m=world.depth_m[0],
        masks=masks,
        joints=np.full(len(card.joint_names), 0.1),
        pose=world.pose_at(world.spec.start_ns),
        target_class=target,
    )
