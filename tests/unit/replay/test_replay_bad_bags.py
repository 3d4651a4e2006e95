"""`rl-deploy replay` on bags that are damaged, odd, or in the way of their own output: a
BagError that says what is wrong, every recorded message kept, nothing read destroyed."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mcap.writer import Writer

from rl_deploy.cli import EXIT_FAILED, EXIT_INTERRUPTED, main
from rl_deploy.config import PipelineConfig
from rl_deploy.errors import BagError
from rl_deploy.replay import Bag, SyntheticBagSpec, replay, write_synthetic_bag
from rl_deploy.replay.runner import RECORDED_PREFIX

SMALL = SyntheticBagSpec(seconds=0.5, width=32, height=24)
VENDOR_TOPIC, VENDOR_TYPE = "/vendor/status", "vendor_msgs/msg/Status"


@pytest.fixture
def config(repo: Path) -> PipelineConfig:
    return PipelineConfig.from_mapping({}, base_dir=repo)


def sqlite_bag(tmp_path: Path) -> tuple[Path, Path]:
    """A small generated sqlite3 bag and its storage file."""
    bag = write_synthetic_bag(
        tmp_path / "bag", SyntheticBagSpec(**{**vars(SMALL), "storage": "sqlite3"})
    )
    return bag, next(bag.glob("*.db3"))


def execute(db3: Path, sql: str, *params: object) -> None:
    with sqlite3.connect(db3) as connection:
        connection.execute(sql, params)


@pytest.mark.parametrize("where", ["first", "last"])
def test_a_corrupt_log_time_is_refused_not_ticked_through(
    config: PipelineConfig, tmp_path: Path, where: str
) -> None:
    bag, db3 = sqlite_bag(tmp_path)
    if where == "first":  # log time 0: decades before the rest
        execute(db3, "UPDATE messages SET timestamp = 0 WHERE id = 1")
    else:  # eleven days after the rest
        last = "(SELECT max(id) FROM messages)"
        execute(db3, f"UPDATE messages SET timestamp = timestamp + {10**15} WHERE id = {last}")
    with pytest.raises(BagError, match="corrupt timestamp"):
        replay(bag, tmp_path / "out", config, progress=False)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert "corrupt timestamp" in summary["bag_check"]
    assert summary["commands_out"] <= 10  # not ticked through the silence
    Bag(tmp_path / "out" / "output.mcap").read_all_counted()  # closed and readable


def test_replay_refuses_to_overwrite_the_bag_it_reads(
    config: PipelineConfig, tmp_path: Path
) -> None:
    bag = write_synthetic_bag(tmp_path / "bag", SMALL)
    first = tmp_path / "first"
    replay(bag, first, config, progress=False)
    recorded = first / "output.mcap"
    before = Bag(recorded).read_all_counted()
    with pytest.raises(BagError, match="overwrite the bag being replayed"):
        replay(recorded, first, config, progress=False)
    assert Bag(recorded).read_all_counted() == before


def test_a_bags_own_stack_outputs_are_moved_under_recorded(
    config: PipelineConfig, tmp_path: Path
) -> None:
    """A robot's recording holds the commands the stack sent then: they stay apart from the
    commands it sends now."""
    bag = write_synthetic_bag(tmp_path / "bag", SMALL)
    first = replay(bag, tmp_path / "first", config, progress=False)
    second = replay(tmp_path / "first" / "output.mcap", tmp_path / "second", config, progress=False)
    counts = Bag(tmp_path / "second" / "output.mcap").read_all_counted()
    cmd_vel = config.topics.cmd_vel
    assert counts[RECORDED_PREFIX + cmd_vel] == first.summary["commands_out"]
    assert counts[cmd_vel] == second.summary["commands_out"]
    assert second.summary["recorded_outputs_moved"][cmd_vel] == RECORDED_PREFIX + cmd_vel


def add_vendor_topic(db3: Path, messages: int) -> None:
    """A topic of a type no typestore knows, whose definition the bag does not keep."""
    with sqlite3.connect(db3) as connection:
        start = connection.execute("SELECT min(timestamp) FROM messages").fetchone()[0]
        connection.execute(
            "INSERT INTO topics (id, name, type, serialization_format, offered_qos_profiles, "
            "type_description_hash) VALUES (99, ?, ?, 'cdr', '', '')",
            (VENDOR_TOPIC, VENDOR_TYPE),
        )
        for i in range(messages):
            connection.execute(
                "INSERT INTO messages (topic_id, timestamp, data) VALUES (99, ?, ?)",
                (start + 1000 + i, bytes([0, 1, 0, 0, i])),
            )


def list_in_metadata(bag: Path, messages: int) -> None:
    path = bag / "metadata.yaml"
    info = yaml.safe_load(path.read_text())
    entry = {
        "message_count": messages,
        "topic_metadata": {"name": VENDOR_TOPIC, "type": VENDOR_TYPE},
    }
    info["rosbag2_bagfile_information"]["topics_with_message_count"].append(entry)
    path.write_text(yaml.safe_dump(info))


def test_a_topic_of_unknown_type_is_copied_with_its_type_name(
    config: PipelineConfig, tmp_path: Path
) -> None:
    bag, db3 = sqlite_bag(tmp_path)
    add_vendor_topic(db3, 3)
    list_in_metadata(bag, 3)
    result = replay(bag, tmp_path / "out", config, progress=False)
    assert result.summary["copied_without_definition"] == [VENDOR_TOPIC]
    out = Bag(tmp_path / "out" / "output.mcap")
    assert out.topics[VENDOR_TOPIC].msgtype == VENDOR_TYPE
    assert [m.data[-1] for m in out.messages([VENDOR_TOPIC])] == [0, 1, 2]


def test_a_topic_the_metadata_leaves_out_is_copied_and_reported(
    config: PipelineConfig, tmp_path: Path
) -> None:
    bag, db3 = sqlite_bag(tmp_path)
    add_vendor_topic(db3, 2)  # in the storage file only
    with pytest.raises(BagError, match=f"{VENDOR_TOPIC}: read 2, metadata 0"):
        replay(bag, tmp_path / "out", config, progress=False)
    assert Bag(tmp_path / "out" / "output.mcap").read_all_counted()[VENDOR_TOPIC] == 2


def test_the_writer_refuses_one_topic_with_two_types(tmp_path: Path) -> None:
    from rl_deploy.replay import McapWriter

    with McapWriter(tmp_path / "x.mcap") as writer:
        writer.add_topic("/a", "std_msgs/msg/String")
        writer.add_topic("/a", "std_msgs/msg/String")  # the same again is fine
        with pytest.raises(BagError, match="/a is std_msgs/msg/String already"):
            writer.add_topic("/a", "geometry_msgs/msg/Twist")


@pytest.mark.parametrize(
    ("sql", "named"),
    [
        ("UPDATE messages SET timestamp = 'noon' WHERE id = 3", "timestamp 'noon'"),
        ("UPDATE messages SET data = 'text' WHERE id = 3", "data of type str"),
    ],
)
def test_malformed_sqlite_rows_are_bag_errors(
    config: PipelineConfig, tmp_path: Path, sql: str, named: str
) -> None:
    bag, db3 = sqlite_bag(tmp_path)
    execute(db3, sql)
    with pytest.raises(BagError, match=named):
        replay(bag, tmp_path / "out", config, progress=False)
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["bag_check"].count(named)


def test_an_mcap_schema_that_is_not_utf8_is_a_bag_error(tmp_path: Path) -> None:
    path = tmp_path / "x.mcap"
    with path.open("wb") as stream:
        writer = Writer(stream)
        writer.start(profile="ros2", library="test")
        schema = writer.register_schema("std_msgs/msg/String", "ros2msg", b"string data\xff")
        writer.register_channel("/chatter", "cdr", schema)
        writer.finish()
    with pytest.raises(BagError, match=r"std_msgs/msg/String.*not UTF-8"):
        Bag(path)


def test_an_empty_mcap_error_says_why(tmp_path: Path) -> None:
    (tmp_path / "empty.mcap").write_bytes(b"")
    with pytest.raises(BagError) as raised:
        Bag(tmp_path / "empty.mcap")
    assert not str(raised.value).rstrip().endswith(":")


def test_out_dir_problems(
    repo: Path, config: PipelineConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bag = write_synthetic_bag(tmp_path / "bag", SMALL)
    a_file = tmp_path / "taken"
    a_file.write_text("mine")
    assert main(["replay", str(bag), "--out", str(a_file), "--no-progress"]) == EXIT_FAILED
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --out") and "is a file" in err and "\n" not in err
    assert a_file.read_text() == "mine"

    out = tmp_path / "out"  # a previous run's files go, so they cannot pass for this run's
    out.mkdir()
    (out / "summary.json").write_text('{"bag_check": "ok"}')
    (out / "report.html").write_text("old")
    (out / "notes.txt").write_text("mine")
    _, db3 = sqlite_bag(tmp_path / "broken")
    execute(db3, "UPDATE messages SET timestamp = 'noon' WHERE id = 3")
    with pytest.raises(BagError):
        replay(db3.parent, out, config, progress=False)
    assert json.loads((out / "summary.json").read_text())["bag_check"] != "ok"
    assert not (out / "report.html").exists()
    assert (out / "notes.txt").read_text() == "mine"


def test_sigterm_leaves_a_readable_output_and_a_partial_summary(repo: Path, tmp_path: Path) -> None:
    bag = write_synthetic_bag(tmp_path / "bag", SyntheticBagSpec(seconds=120, width=64, height=48))
    out = tmp_path / "out"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rl_deploy.cli",
            "replay",
            str(bag),
            "--out",
            str(out),
            "--no-progress",
        ],
        cwd=repo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / "output.mcap").exists() and process.poll() is None:
            assert time.monotonic() < deadline, "the replay never started writing"
            time.sleep(0.05)
        time.sleep(0.5)  # into the bag
        assert process.poll() is None, "the replay ended before it could be interrupted"
        os.kill(process.pid, signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == EXIT_INTERRUPTED, stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] is True and summary["bag_check"] == "interrupted"
    counts = Bag(out / "output.mcap").read_all_counted()
    assert 0 < counts["/camera/depth/image_raw"] < 120 * 30
    assert counts[PipelineConfig().topics.cmd_vel] == summary["commands_out"] > 0
