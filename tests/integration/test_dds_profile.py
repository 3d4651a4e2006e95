"""The shipped Fast DDS profile (config/dds/fastdds_large_frames.xml) between real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from rl_deploy.bench.dds import LARGE_FRAMES_PROFILE, PROFILE, TRANSPORTS

SHM = Path("/dev/shm")
NS = {"dds": "http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles"}


def _profile_values(repo: Path) -> dict[str, int]:
    root = ET.parse(repo / LARGE_FRAMES_PROFILE).getroot()
    shm = next(
        d
        for d in root.iterfind(".//dds:transport_descriptor", NS)
        if d.findtext("dds:type", namespaces=NS) == "SHM"
    )
    return {
        "segment_size": int(shm.findtext("dds:segment_size", namespaces=NS) or 0),
        "max_message_size": int(shm.findtext("dds:maxMessageSize", namespaces=NS) or 0),
    }


def test_profile_takes_a_720p_rgb_frame_whole_and_a_history_of_them(repo):
    values = _profile_values(repo)
    frame = 1280 * 720 * 3 + 1024  # rgb8 data and the Image header
    assert values["max_message_size"] >= frame
    assert values["segment_size"] >= 5 * frame  # a best-effort history of 5 (SensorDataQoS)


def _segments() -> dict[str, int]:
    return {p.name: p.stat().st_size for p in SHM.glob("fastrtps_*") if p.is_file()}


def test_node_and_robot_side_talk_through_the_profiles_segments(repo):
    """`rl-deploy bench e2e` over DDS: policy_node and the bench's robot side both load the
    shipped profile (each maps a segment of its size) and the camera frames they exchange best
    effort are answered with commands.

    The bench runs in its own process: Fast DDS reads the profile file once per process, when
    the first participant is created, and this one may have made one already.
    """
    env = {k: v for k, v in os.environ.items() if k not in (PROFILE, TRANSPORTS)}
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"  # the bench's own participant too
    segment_size = _profile_values(repo)["segment_size"]
    before = set(_segments())
    large: set[str] = set()
    command = [
        str(Path(sys.executable).with_name("rl-deploy")),
        "bench",
        "e2e",
        "--dds",
        "on",
        "--masks",
        "segmentation",
        "--frames",
        "4",
        "--seconds",
        "3",
        "--no-machine",
    ]
    bench = subprocess.Popen(
        command, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    while bench.poll() is None:  # the segments live as long as their participants
        large.update(n for n, size in _segments().items() if size >= segment_size)
        time.sleep(0.2)
    out, err = bench.communicate()
    assert bench.returncode == 0, err[-3000:]
    dds = json.loads(out)["dds"]
    assert dds["dds_profile"] == str((repo / LARGE_FRAMES_PROFILE).resolve())
    assert len(large - before) >= 2, "node and robot side should each map a profile segment"
    assert dds["policy_commands"] >= 15, dds  # 10 Hz for 3 s, answering camera frames
