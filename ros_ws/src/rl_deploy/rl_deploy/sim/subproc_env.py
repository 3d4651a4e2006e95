"""Reach environments spread over worker processes (one per core), same API as `VecReachEnv`.

Workers are spawned, not forked: each creates its own GL context, which cannot cross a fork.
Env i gets the same seeds as in a single-process `VecReachEnv`, so results do not depend on
how many workers share the work.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rl_deploy.sim.scene import load_scene
from rl_deploy.sim.spec import SceneSpec
from rl_deploy.sim.train_env import (
    OBSERVATION_SHAPES,
    SEED_STRIDE,
    FloatArray,
    Observation,
    ReachEnvConfig,
    VecReachEnv,
)


def _serve(
    connection: Connection, scene: SceneSpec, count: int, config: ReachEnvConfig | None, seed: int
) -> None:
    # One software-rendering thread per worker: the workers already fill the cores.
    os.environ.setdefault("LP_NUM_THREADS", "1")
    envs = VecReachEnv(scene, count, config, seed=seed)
    try:
        while True:
            command, payload = connection.recv()
            if command == "reset":
                connection.send(envs.reset())
            elif command == "step":
                connection.send(envs.step(payload))
            elif command == "expert":
                connection.send(envs.expert_actions())
            elif command == "close":
                break
    finally:
        envs.close()
        connection.close()


class SubprocVecReachEnv:
    """`num_envs` environments in `workers` processes; batched arrays and auto-reset."""

    def __init__(
        self,
        scene: SceneSpec | str | Path,
        num_envs: int,
        config: ReachEnvConfig | None = None,
        seed: int = 0,
        workers: int = 2,
    ) -> None:
        spec = scene if isinstance(scene, SceneSpec) else load_scene(scene)
        workers = max(1, min(workers, num_envs))
        counts = [
            num_envs // workers + (1 if w < num_envs % workers else 0) for w in range(workers)
        ]
        context = mp.get_context("spawn")
        self.num_envs = num_envs
        self._counts = counts
        self._connections: list[Connection] = []
        self._processes = []
        first = 0
        for count in counts:
            parent, child = context.Pipe()
            process = context.Process(
                target=_serve,
                args=(child, spec, count, config, seed + first * SEED_STRIDE),
                daemon=True,
            )
            process.start()
            child.close()
            self._connections.append(parent)
            self._processes.append(process)
            first += count

    def reset(self) -> Observation:
        for connection in self._connections:
            connection.send(("reset", None))
        return _concat([connection.recv() for connection in self._connections])

    def step(
        self, actions: npt.ArrayLike
    ) -> tuple[Observation, FloatArray, npt.NDArray[np.bool_], list[dict[str, Any]]]:
        actions = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, 5)
        first = 0
        for connection, count in zip(self._connections, self._counts, strict=True):
            connection.send(("step", actions[first : first + count]))
            first += count
        results = [connection.recv() for connection in self._connections]
        infos = [info for result in results for info in result[3]]
        return (
            _concat([result[0] for result in results]),
            np.concatenate([result[1] for result in results]),
            np.concatenate([result[2] for result in results]),
            infos,
        )

    def expert_actions(self) -> FloatArray:
        """(num_envs, 5) the scripted expert's actions for the observations `step` returned."""
        for connection in self._connections:
            connection.send(("expert", None))
        return np.concatenate([connection.recv() for connection in self._connections])

    def close(self) -> None:
        for connection in self._connections:
            with contextlib.suppress(BrokenPipeError, OSError):  # the worker is gone already
                connection.send(("close", None))
        for process in self._processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
        self._connections.clear()
        self._processes.clear()


def _concat(batches: list[Observation]) -> Observation:
    return {key: np.concatenate([batch[key] for batch in batches]) for key in OBSERVATION_SHAPES}
