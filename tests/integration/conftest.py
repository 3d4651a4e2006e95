"""Fixtures of the DDS integration tests: one colcon build per session, one domain per test."""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from ros_harness import DDS_TRANSPORT, NodeProcess, Probe, colcon_build, ros_run, workspace_env
from sim_camera import CameraBag, write_camera_bag

# Domains are spread at random so that two test sessions on one machine do not meet.
_DOMAINS = itertools.count(random.Random(os.getpid()).randrange(0, 100))


@pytest.fixture(scope="session")
def ros_install(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workspace as colcon builds and installs it, from the current sources."""
    return colcon_build(tmp_path_factory.mktemp("ros_ws"))


@pytest.fixture(scope="session")
def camera_bag(tmp_path_factory: pytest.TempPathFactory) -> CameraBag:
    """Simulator renders in which the shipped detector finds the target, as an .mcap bag."""
    return write_camera_bag(tmp_path_factory.mktemp("camera") / "standing_robot.mcap")


@pytest.fixture
def domain_id(monkeypatch: pytest.MonkeyPatch) -> int:
    domain = 1 + next(_DOMAINS) % 200
    monkeypatch.setenv("ROS_DOMAIN_ID", str(domain))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    monkeypatch.delenv("ROS_LOCALHOST_ONLY", raising=False)
    for key, value in DDS_TRANSPORT.items():
        monkeypatch.setenv(key, value)
    return domain


@pytest.fixture
def ros_env(ros_install: Path, domain_id: int) -> dict[str, str]:
    return workspace_env(ros_install, domain_id)


@pytest.fixture
def probe(domain_id: int) -> Iterator[Probe]:
    probe = Probe(domain_id)
    yield probe
    probe.close()


@pytest.fixture
def start_node(
    ros_env: dict[str, str], tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., NodeProcess]]:
    """Start nodes like `ros2 run`; all are stopped after the test, logs shown on failure."""
    started: list[NodeProcess] = []

    def start(name: str, ros_args: list[str], args: list[str] = ()) -> NodeProcess:
        node = ros_run(ros_env, tmp_path, name, ros_args, list(args))
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for node in started:
            print(f"----- {node.name} (rc {node.process.returncode}) -----\n{node.log()}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
