"""`rl-deploy sim --mode dds`: simulator, perception, policy and guard as ROS 2 processes.

perception_node and command_guard run for the whole evaluation; each episode starts a sim_node
for its seed and a policy_node asked for its target class (the target is a parameter read at
configure time), on one isolated DDS domain. Everything runs on the sim's /clock. This process
never imports rclpy: it starts processes and reads the episodes the sim node writes.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from rl_deploy.bench.dds import NodeProcess, launch, new_domain_id, parameters, ros_env, unavailable
from rl_deploy.errors import ConfigError, RlDeployError
from rl_deploy.sim.closed_loop import EpisodeResult, episode_seeds, load_results
from rl_deploy.sim.layout import sample_layout
from rl_deploy.sim.spec import SceneSpec

logger = logging.getLogger(__name__)

POLICY_PARAMS = "config/policy_node.yaml"
PERCEPTION_PARAMS = "config/perception_node.yaml"
GUARD_PARAMS = "config/command_guard.yaml"
REALTIME_FACTOR = 0.5  # sim seconds per wall second: leaves the 2-core CI machine headroom
START_SLACK_S = 120.0  # process start, model loading and discovery on a busy machine
# The sim waits while the stack's newest mask comes from a frame older than this: a tick period
# (0.1 s) plus a camera period (0.067 s) plus transport, so a busy machine slows the run down
# instead of starving the policy.
MAX_STACK_LAG_S = 0.3
# Camera-sized images between the sim and the stack, reliable: measured here, best-effort
# 640x480 frames were lost so often over Fast DDS that the policy acted on one frame for up to
# four control periods (sim_node publishes reliably, so a reliable reader matches).
CAMERA_QOS = "reliable:2"
# The policy's commands go to command_guard, which alone talks to the robot (the simulator).
POLICY_CMD_VEL, POLICY_ARM = "/rl_deploy/cmd_vel", "/rl_deploy/arm_command"


def run_over_dds(run: Any, scene: SceneSpec) -> list[EpisodeResult]:
    """The episodes of `run` (an evaluate.SimRun) over DDS; raises ConfigError without ROS."""
    reason = unavailable()
    if reason is not None:
        raise ConfigError(f"mode dds: {reason}")
    env = ros_env(new_domain_id())
    with tempfile.TemporaryDirectory(prefix="rl_deploy_sim_") as tmp:
        work = Path(tmp)
        log_dir = run.out_dir / "logs" if run.out_dir is not None else work
        log_dir.mkdir(parents=True, exist_ok=True)
        config = run.config
        robot = str(config.resolve(config.robot_profile))
        sim_time = ["-p", "use_sim_time:=true"]
        persistent = [
            launch(
                "perception_node",
                [
                    "--params-file",
                    PERCEPTION_PARAMS,
                    *sim_time,
                    *parameters(
                        {
                            "topics.depth": scene.topics.depth,
                            "detector.model": str(config.resolve(config.detector.model)),
                            "ros.qos.camera": CAMERA_QOS,
                        }
                    ),
                ],
                env,
                log_dir,
            ),
            launch(
                "command_guard",
                [
                    "--params-file",
                    GUARD_PARAMS,
                    *sim_time,
                    *parameters({"robot_profile": robot}),
                    *_remaps(
                        {
                            "cmd_vel_in": POLICY_CMD_VEL,
                            "arm_command_in": POLICY_ARM,
                            "cmd_vel": scene.topics.cmd_vel,
                            "arm_command": scene.topics.arm_command,
                        }
                    ),
                ],
                env,
                log_dir,
            ),
        ]
        results: list[EpisodeResult] = []
        clock_s = 1.0
        try:
            for seed in episode_seeds(run.seed, run.episodes):
                result = _episode(
                    run,
                    scene,
                    seed=seed,
                    clock_s=clock_s,
                    env=env,
                    log_dir=log_dir,
                    work=work,
                    robot=robot,
                )
                results.append(result)
                logger.info(
                    "seed %d %s: %s in %.1f s",
                    seed,
                    result.target_class,
                    "reached" if result.success else "failed",
                    result.elapsed_s,
                )
                # The next sim starts later on the clock: the long-lived nodes never see it go back.
                clock_s += result.elapsed_s + 2.0
                if not all(node.alive() for node in persistent):
                    raise RlDeployError(_logs("a stack node died", persistent))
        finally:
            for node in persistent:
                node.stop()
    return results


def _episode(
    run: Any,
    scene: SceneSpec,
    *,
    seed: int,
    clock_s: float,
    env: dict[str, str],
    log_dir: Path,
    work: Path,
    robot: str,
) -> EpisodeResult:
    config = run.config
    target = sample_layout(scene, seed).target_class
    policy = launch(
        "policy_node",
        [
            "--params-file",
            POLICY_PARAMS,
            *parameters(
                {
                    "use_sim_time": "true",
                    "policy.card": str(config.resolve(config.policy.card)),
                    "policy.target_class": target,
                    "robot_profile": robot,
                    "masks.source": "topics",
                    "ros.qos.camera": CAMERA_QOS,
                    "topics.cmd_vel": POLICY_CMD_VEL,
                    "topics.arm_command": POLICY_ARM,
                }
            ),
        ],
        env,
        log_dir,
    )
    result_path = work / f"episode_{seed}.npz"
    masks = f"{config.masks.topic_prefix}/{target}"
    wait_for = [POLICY_CMD_VEL, scene.topics.cmd_vel, masks]
    sim_params = {
        "scene": str(run.scene_path.resolve()),
        "seed": str(seed),
        "episodes": "1",
        "start_time_s": f"{clock_s:.3f}",
        "realtime_factor": str(REALTIME_FACTOR),
        "segmentation": "false",
        "depth_noise_std_m": str(run.depth_noise_std_m),
        "camera_tilt_deg": str(run.camera_tilt_rad * 57.29577951308232),
        "mask_topic": config.topics.mask_out,
        "max_stack_lag_s": str(MAX_STACK_LAG_S),
        "wait_for_publishers": "[" + ",".join(f'"{t}"' for t in wait_for) + "]",
        "result_path": str(result_path),
    }
    if run.record and run.out_dir is not None:
        sim_params["bag_dir"] = str((run.out_dir / "bags").resolve())
    sim = launch("sim_node", parameters(sim_params), env, log_dir)
    deadline = time.monotonic() + scene.task.max_episode_s / REALTIME_FACTOR + START_SLACK_S
    try:
        while sim.alive() and policy.alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        if not result_path.exists():
            raise RlDeployError(_logs(f"episode {seed} over DDS did not finish", [sim, policy]))
    finally:
        sim.stop()
        policy.stop()
    return load_results(result_path)[0]


def _remaps(names: dict[str, str]) -> list[str]:
    return [item for name, topic in names.items() for item in ("-r", f"{name}:={topic}")]


def _logs(what: str, nodes: list[NodeProcess]) -> str:
    tails = "\n".join(f"--- {node.name}:\n{node.stop()[-1500:]}" for node in nodes)
    return f"{what}; node logs:\n{tails}"
