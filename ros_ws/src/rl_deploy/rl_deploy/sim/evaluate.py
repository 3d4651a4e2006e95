"""`rl-deploy sim`: closed-loop evaluation of a policy through the stack on held-out seeds.

Modes: `gt` (ground-truth segmentation masks, the training condition), `stack` (the detector on
RGB, in process) and `dds` (simulator, perception, policy and guard as ROS 2 processes).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sys
import time
from pathlib import Path
from typing import Any

from rl_deploy.config import MaskSource, PipelineConfig
from rl_deploy.errors import ConfigError, RlDeployError
from rl_deploy.perception.runner import DetectorConfig
from rl_deploy.sim.scene import load_scene
from rl_deploy.sim.spec import SceneSpec

MODES = ("gt", "stack", "dds")
DEFAULT_SCENE = "config/scenes/example_room.yaml"
DEFAULT_ROBOT = "config/robots/stretch_like.yaml"
# The example detector fine-tuned on simulator renders as well (models/recipes/
# finetune_detector_sim.py): the shipped one learned programmatic scenes only.
DEFAULT_DETECTOR = "models/detector/detector_sim.onnx"
# Seeds from here on are never used in training (env i of a training run starts at
# i * 1000003; validation during training uses 400000+).
HELD_OUT_SEED = 500_000

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SimRun:
    mode: str
    episodes: int
    seed: int
    scene_path: Path
    config: PipelineConfig
    out_dir: Path | None  # report, per-episode bags, summary.json
    record: bool  # one .mcap per episode under out_dir/bags
    depth_noise_std_m: float = 0.0
    camera_tilt_rad: float = 0.0


MASK_SOURCES: dict[str, MaskSource] = {"gt": "segmentation", "stack": "detector", "dds": "topics"}


def sim_config(base: PipelineConfig, mode: str) -> PipelineConfig:
    """The pipeline settings of a mode: where masks come from, for the simulator's robot."""
    masks = dataclasses.replace(base.masks, source=MASK_SOURCES[mode])
    return dataclasses.replace(base, masks=masks)


def default_config(base_dir: str = "") -> PipelineConfig:
    """The simulator's robot profile and detector; everything else as the pipeline's defaults."""
    return PipelineConfig(
        robot_profile=DEFAULT_ROBOT,
        detector=DetectorConfig(model=DEFAULT_DETECTOR),
        base_dir=base_dir,
    )


def run_in_process(run: SimRun, scene: SceneSpec) -> list[Any]:
    """Modes gt and stack: host and pipeline in this process."""
    from rl_deploy.perception.runner import YoloSegRunner
    from rl_deploy.pipeline import load_policy
    from rl_deploy.safety import load_robot_limits
    from rl_deploy.sim.closed_loop import ClosedLoop, EpisodeRecorder, episode_seeds
    from rl_deploy.sim.host import HostOptions, MujocoSimHost

    config = run.config
    detector = None
    if config.masks.source == "detector":
        model = str(config.resolve(config.detector.model))
        detector = YoloSegRunner(dataclasses.replace(config.detector, model=model))
    options = HostOptions(
        rgb=run.mode == "stack",
        segmentation=run.mode == "gt",
        depth_noise_std_m=run.depth_noise_std_m,
        camera_pitch_offset_rad=run.camera_tilt_rad,
    )
    policy = load_policy(config)
    limits = load_robot_limits(config.resolve(config.robot_profile))
    host = MujocoSimHost(scene, options)
    recorder = EpisodeRecorder(run.out_dir / "bags") if run.record and run.out_dir else None
    loop = ClosedLoop(host, config, policy, limits, detector=detector)
    results = []
    try:
        for seed in episode_seeds(run.seed, run.episodes):
            result = loop.run_episode(seed, recorder)
            results.append(result)
            logger.info(
                "seed %d %s: %s in %.1f s",
                seed,
                result.target_class,
                "reached" if result.success else "failed",
                result.elapsed_s,
            )
            if recorder is not None:
                _write_replay_config(run, recorder.paths[-1], result.target_class)
    finally:
        host.close()
    return results


def _write_replay_config(run: SimRun, bag: Path, target_class: str) -> Path:
    """A params file beside an episode's bag: `rl-deploy replay BAG --config` this file replays
    the episode through the same pipeline settings."""
    config = run.config
    document = {
        "robot_profile": str(config.resolve(config.robot_profile).resolve()),
        "policy": {
            "card": str(config.resolve(config.policy.card).resolve()),
            "target_class": target_class,
        },
        "masks": {"source": config.masks.source},
        "detector": {"model": str(config.resolve(config.detector.model).resolve())},
    }
    path = bag.with_suffix(".yaml")
    path.write_text(json.dumps(document, indent=2) + "\n")  # JSON is YAML
    return path


def evaluate(run: SimRun) -> tuple[dict[str, Any], list[Any]]:
    """Run the episodes of `run`; (summary JSON, per-episode results)."""
    from rl_deploy.sim.closed_loop import summarise

    scene = load_scene(run.scene_path)
    started = time.perf_counter()
    if run.mode == "dds":
        from rl_deploy.sim.dds_run import run_over_dds

        results = run_over_dds(run, scene)
    else:
        results = run_in_process(run, scene)
    summary = summarise(results, run.mode)
    summary["first_seed"] = run.seed
    summary["wall_s"] = round(time.perf_counter() - started, 1)
    summary["per_episode"] = [result.to_json() for result in results]
    if run.out_dir is not None:
        from rl_deploy.sim.report import write_sim_report

        run.out_dir.mkdir(parents=True, exist_ok=True)
        (run.out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        write_sim_report(results, summary, scene, run.out_dir / "report.html")
    return summary, results


MAX_TILT_DEG = 90.0  # beyond, the camera looks at the ceiling or at the robot


def check_out_dir(out: Path | None) -> None:
    """Before any episode runs: an --out that cannot become a directory is a ConfigError."""
    if out is not None and out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; it must be a directory for the reports")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rl-deploy sim", description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=MODES, default="gt")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=HELD_OUT_SEED, help="first episode seed")
    parser.add_argument("--scene", type=Path, default=Path(DEFAULT_SCENE))
    parser.add_argument(
        "--config", type=Path, help="pipeline config / policy_node params YAML (masks.source "
        "is set by --mode; default: built-in settings with the stretch_like robot profile)"
    )  # fmt: skip
    parser.add_argument("--out", type=Path, help="write report.html and summary.json here")
    parser.add_argument("--bag", action="store_true", help="record one .mcap per episode (--out)")
    parser.add_argument("--json", action="store_true", help="print only the summary JSON")
    parser.add_argument("--depth-noise", type=float, default=0.0, help="fault: depth noise std, m")
    parser.add_argument(
        "--camera-tilt-deg", type=float, default=0.0, help="fault: camera pitched further down"
    )
    return parser


def sim_main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.json else logging.INFO)
    try:
        if args.episodes < 1:
            raise ConfigError(f"--episodes must be >= 1, got {args.episodes}")
        if args.bag and args.out is None:
            raise ConfigError("--bag needs --out (the bags go to OUT/bags)")
        check_out_dir(args.out)
        if args.seed < 0:
            raise ConfigError(f"--seed must be >= 0, got {args.seed}")
        if not (math.isfinite(args.depth_noise) and args.depth_noise >= 0):
            raise ConfigError(f"--depth-noise must be a finite std >= 0 m, got {args.depth_noise}")
        if not abs(args.camera_tilt_deg) <= MAX_TILT_DEG:
            raise ConfigError(
                f"--camera-tilt-deg must be within ±{MAX_TILT_DEG}, got {args.camera_tilt_deg}"
            )
        base = PipelineConfig.from_yaml(args.config) if args.config else default_config()
        run = SimRun(
            mode=args.mode,
            episodes=args.episodes,
            seed=args.seed,
            scene_path=args.scene,
            config=sim_config(base, args.mode),
            out_dir=args.out,
            record=args.bag,
            depth_noise_std_m=args.depth_noise,
            camera_tilt_rad=math.radians(args.camera_tilt_deg),
        )
        summary, _ = evaluate(run)
    except RlDeployError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    shown = summary if not args.json else {k: v for k, v in summary.items() if k != "per_episode"}
    print(json.dumps(shown, indent=2))
    return 0
