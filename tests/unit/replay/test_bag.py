"""Bag reading: real rosbag2 files from ROS 2 itself, generated bags, and short reads."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from rl_deploy.errors import BagError
from rl_deploy.replay import Bag, McapWriter, SyntheticBagSpec, write_synthetic_bag
from rl_deploy.replay.writer import QUEUE_MESSAGES

TALKER_COUNTS = {"/topic": 10, "/rosout": 10}
CDR_TEST_COUNTS = {"/array_topic": 4, "/test_topic": 3}


@pytest.mark.parametrize(
    ("name", "storage", "counts"),
    [
        ("mcap_talker", "mcap", TALKER_COUNTS),
        ("sqlite3_talker", "sqlite3", TALKER_COUNTS),
        ("mcap_cdr_test", "mcap", CDR_TEST_COUNTS),
        ("sqlite3_cdr_test", "sqlite3", CDR_TEST_COUNTS),
    ],
)
def test_real_rosbag2_files_read_completely(rosbag2_fixtures: Path, name, storage, counts):
    bag = Bag(rosbag2_fixtures / name)
    assert bag.storage == storage
    assert {n: t.message_count for n, t in bag.topics.items() if t.message_count} == counts
    assert dict(bag.read_all_counted()) == counts
    times = [m.log_time_ns for m in bag.messages()]
    assert times == sorted(times)


def test_talker_payload_decodes(rosbag2_fixtures: Path):
    from rl_deploy.codec import decode

    strings = [
        decode(m.data, "std_msgs/msg/String").data
        for m in Bag(rosbag2_fixtures / "mcap_talker").messages(["/topic"])
    ]
    assert strings == [f"Hello, world! {i}" for i in range(10)]


def test_message_definitions_found_in_both_storages(rosbag2_fixtures: Path):
    for name in ("mcap_cdr_test", "sqlite3_cdr_test"):
        topic = Bag(rosbag2_fixtures / name).topics["/test_topic"]
        assert topic.msgtype == "test_msgs/msg/BasicTypes"
        assert topic.msgdef is not None
        assert "float64 float64_value" in topic.msgdef


def test_short_read_is_an_error(rosbag2_fixtures: Path, tmp_path: Path):
    bag_dir = tmp_path / "short"
    shutil.copytree(rosbag2_fixtures / "sqlite3_talker", bag_dir)
    with sqlite3.connect(bag_dir / "talker.db3") as db:
        db.execute("DELETE FROM messages WHERE id IN (SELECT id FROM messages LIMIT 3)")
    with pytest.raises(BagError, match="read differs from its metadata"):
        Bag(bag_dir).read_all_counted()


def test_missing_bag_and_missing_storage_file(tmp_path: Path, rosbag2_fixtures: Path):
    with pytest.raises(BagError, match="does not exist"):
        Bag(tmp_path / "nope")
    bag_dir = tmp_path / "nofile"
    shutil.copytree(rosbag2_fixtures / "mcap_talker", bag_dir)
    (bag_dir / "talker.mcap").unlink()
    with pytest.raises(BagError, match="storage file"):
        Bag(bag_dir)


def test_corrupt_metadata_names_the_problem(tmp_path: Path):
    (tmp_path / "metadata.yaml").write_text("rosbag2_bagfile_information: {version: 9}\n")
    with pytest.raises(BagError, match="malformed metadata"):
        Bag(tmp_path)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_generated_bag_round_trips_in_both_storages(tmp_path: Path, storage):
    spec = SyntheticBagSpec(seconds=0.5, storage=storage, width=64, height=48)
    bag = Bag(write_synthetic_bag(tmp_path / "bag", spec))
    counts = bag.read_all_counted()
    assert counts["/camera/depth/image_raw"] == 15
    assert counts["/camera/segmentation"] == 15
    assert counts["/joint_states"] == 25
    assert counts["/amcl_pose"] == 5


@pytest.mark.parametrize("compression", ["lz4", "zstd", "none"])
def test_writer_compressions_read_back(tmp_path: Path, compression: str):
    path = tmp_path / f"{compression}.mcap"
    payloads = [bytes([i]) * (1000 + i) for i in range(5)]
    with McapWriter(path, compression=compression) as writer:
        writer.add_topic("/blob", "std_msgs/msg/ByteMultiArray")
        for i, data in enumerate(payloads):
            writer.write("/blob", 1_000 + i, data)
    bag = Bag(path)
    assert [m.data for m in bag.messages()] == payloads
    assert [m.log_time_ns for m in bag.messages()] == [1_000 + i for i in range(5)]


def test_writer_refuses_an_unknown_compression(tmp_path: Path):
    with pytest.raises(BagError, match="'bz2'"):
        McapWriter(tmp_path / "x.mcap", compression="bz2")


@pytest.mark.parametrize("background", [True, False])
def test_writer_keeps_the_order_of_writes_past_its_queue(tmp_path: Path, background: bool):
    path, n = tmp_path / "ordered.mcap", 3 * QUEUE_MESSAGES
    topics = []
    with McapWriter(path, background=background) as writer:
        writer.add_topic("/a", "std_msgs/msg/ByteMultiArray")
        for i in range(n):
            if i == n // 2:  # a topic declared while messages are queued
                writer.add_topic("/b", "std_msgs/msg/ByteMultiArray")
            topics.append("/b" if i >= n // 2 and i % 3 == 0 else "/a")
            writer.write(topics[-1], 1_000 + i, i.to_bytes(2, "little") * 5_000)
    messages = list(Bag(path).messages())
    assert [int.from_bytes(m.data[:2], "little") for m in messages] == list(range(n))
    assert [m.topic for m in messages] == topics
    assert writer.counts == {"/a": topics.count("/a"), "/b": topics.count("/b")}


def test_writer_thread_failure_is_raised_in_the_caller():
    writer = McapWriter("/dev/full")  # every flush fails: no space left on the device
    writer.add_topic("/a", "std_msgs/msg/ByteMultiArray")
    with pytest.raises(BagError, match=r"writing /dev/full: .*No space left"):
        for i in range(200):  # 1 MB chunks reach the file in the writer's thread, and fail
            writer.write("/a", i, bytes(100_000))
    with pytest.raises(BagError, match="No space left"):
        writer.close()  # the file is closed, and the error kept
    writer.close()  # closed: nothing more to raise


def test_writer_closes_after_a_put_whose_wakeup_was_lost(tmp_path: Path):
    """Ctrl-C in the middle of put()'s notify leaves a message queued with its waiter never
    woken (and the next notify spent on a stale waiter): close() must still finish."""
    path = tmp_path / "interrupted.mcap"
    writer = McapWriter(path)
    writer.add_topic("/a", "std_msgs/msg/ByteMultiArray")
    time.sleep(0.05)  # the writer's thread is waiting for the first message
    queue = writer._queue
    assert queue is not None
    with queue.mutex:  # what an interrupted put() leaves: the item in, the waiter asleep
        queue.queue.append((writer._channels["/a"], 1, b"\x00\x00\x00\x00"))
        queue.unfinished_tasks += 1
        stale = threading.Lock()
        stale.acquire()
        queue.not_empty._waiters.appendleft(stale)  # the next notify goes to it
    closing = threading.Thread(target=writer.close, daemon=True)
    closing.start()
    closing.join(timeout=10)
    assert not closing.is_alive(), "close() waits for ever"
    assert Bag(path).read_all_counted() == {"/a": 1}
