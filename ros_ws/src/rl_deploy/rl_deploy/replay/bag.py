"""Raw rosbag2 reading (mcap and sqlite3) that cross-checks what it read against the metadata.

Messages are read straight from the storage files as CDR bytes, metadata.yaml as YAML.
A bag that reads short of what its metadata promises is an error, never a silent success.
"""

from __future__ import annotations

import heapq
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml
from mcap.reader import make_reader

from rl_deploy.errors import BagError

# Ten minutes without a single message is a corrupt log time (0, or years away), not a pause:
# a replay would tick through it until the disk is full, a player would sleep through it.
MAX_SILENCE_NS = 600 * 10**9


@dataclass(frozen=True)
class BagTopic:
    name: str
    msgtype: str  # e.g. "sensor_msgs/msg/Image"
    message_count: int  # as the metadata says
    msgdef: str | None = None  # ros2msg definition when the storage keeps one


@dataclass(frozen=True)
class BagMessage:
    topic: str
    log_time_ns: int  # receive time recorded by rosbag2
    data: bytes


class Bag:
    """A rosbag2 directory (metadata.yaml + storage files) or a bare .mcap file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise BagError(f"bag {self.path} does not exist")
        if self.path.is_file():
            self.storage, self.files = "mcap", [self.path]
            self.topics, self.start_ns, self.duration_ns = _mcap_summary(self.path)
        else:
            self.storage, self.files, self.topics, self.start_ns, self.duration_ns = (
                _rosbag2_metadata(self.path)
            )
        self.message_count = sum(t.message_count for t in self.topics.values())

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
        """All messages (of `topics`, if given) in log-time order across the bag's files."""
        wanted = set(self.topics if topics is None else topics)
        reader = _read_mcap if self.storage == "mcap" else _read_sqlite3
        streams = [reader(file, wanted) for file in self.files]
        yield from heapq.merge(*streams, key=lambda m: m.log_time_ns)

    def check_counts(self, seen: Mapping[str, int]) -> None:
        """Raise if any topic yielded a different number of messages than the metadata says."""
        wrong = {
            name: (seen.get(name, 0), topic.message_count)
            for name, topic in self.topics.items()
            if seen.get(name, 0) != topic.message_count
        }
        if wrong:
            detail = ", ".join(f"{n}: read {r}, metadata {m}" for n, (r, m) in wrong.items())
            raise BagError(f"bag {self.path} read differs from its metadata: {detail}")

    def read_all_counted(self) -> Counter[str]:
        """Read every message once and check the counts (for tools that only verify)."""
        seen: Counter[str] = Counter(m.topic for m in self.messages())
        self.check_counts(seen)
        return seen


def _rosbag2_metadata(
    path: Path,
) -> tuple[str, list[Path], dict[str, BagTopic], int, int]:
    metadata_path = path / "metadata.yaml"
    try:
        info = yaml.safe_load(metadata_path.read_text())["rosbag2_bagfile_information"]
        storage = info["storage_identifier"]
        files = [path / name for name in info["relative_file_paths"]]
        compression = info.get("compression_mode", "")
        start_ns = int(info["starting_time"]["nanoseconds_since_epoch"])
        duration_ns = int(info["duration"]["nanoseconds"])
        counts = {
            entry["topic_metadata"]["name"]: (
                entry["topic_metadata"]["type"],
                int(entry["message_count"]),
            )
            for entry in info["topics_with_message_count"]
        }
    except OSError as err:
        raise BagError(f"cannot open bag {path}: {err}") from err
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as err:
        raise BagError(f"bag {path}: malformed metadata.yaml ({err!r})") from err
    if compression:
        raise BagError(
            f"bag {path} is compressed ({compression}); decompress it first "
            "(ros2 bag convert, or rosbags-convert)"
        )
    if storage not in ("mcap", "sqlite3"):
        raise BagError(f"bag {path}: unsupported storage {storage!r} (mcap or sqlite3)")
    missing = [f for f in files if not f.exists()]
    if missing:
        raise BagError(f"bag {path}: storage file(s) missing: {[str(f) for f in missing]}")
    msgdefs: dict[str, str] = {}
    for file in files:
        if storage == "mcap":
            in_file = {t.name: (t.msgtype, t.msgdef) for t in _mcap_summary(file)[0].values()}
        else:
            by_type = _sqlite3_msgdefs(file)
            in_file = {n: (t, by_type.get(t)) for n, t in _sqlite3_topics(file).items()}
        for name, (msgtype, msgdef) in in_file.items():
            # A topic the metadata leaves out is still read: with a count of 0 it makes
            # check_counts fail once its messages are copied, rather than vanish unseen.
            counts.setdefault(name, (msgtype, 0))
            if msgdef:
                msgdefs[name] = msgdef
    topics = {
        name: BagTopic(name, msgtype, count, msgdefs.get(name))
        for name, (msgtype, count) in counts.items()
    }
    return storage, files, topics, start_ns, duration_ns


def _mcap_summary(path: Path) -> tuple[dict[str, BagTopic], int, int]:
    try:
        with path.open("rb") as stream:
            summary = make_reader(stream).get_summary()
    except Exception as err:  # the mcap library raises bare exceptions on corrupt files
        raise BagError(f"cannot read mcap {path}: {err!r}") from err
    if summary is None or summary.statistics is None:
        raise BagError(f"mcap {path} has no summary section; re-index it (mcap recover)")
    counts = summary.statistics.channel_message_counts
    topics = {}
    for channel_id, channel in summary.channels.items():
        schema = summary.schemas.get(channel.schema_id)
        msgdef = None
        if schema and schema.encoding == "ros2msg":
            try:
                msgdef = schema.data.decode()
            except UnicodeDecodeError as err:
                raise BagError(
                    f"mcap {path}: the definition of {schema.name!r} (topic {channel.topic}) "
                    f"is not UTF-8 text ({err})"
                ) from err
        topics[channel.topic] = BagTopic(
            channel.topic, schema.name if schema else "", counts.get(channel_id, 0), msgdef
        )
    stats = summary.statistics
    return topics, stats.message_start_time, stats.message_end_time - stats.message_start_time


def _sqlite3_topics(path: Path) -> dict[str, str]:
    """Type by topic name, as the storage file's own topics table lists them."""
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = connection.execute("SELECT name, type FROM topics").fetchall()
        finally:
            connection.close()
    except sqlite3.Error as err:
        raise BagError(f"cannot read sqlite3 bag file {path}: {err}") from err
    return {str(name): str(msgtype) for name, msgtype in rows}


def _sqlite3_msgdefs(path: Path) -> dict[str, str]:
    """Message definitions by type; only bags from ROS 2 Iron on keep them."""
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = connection.execute(
                "SELECT topic_type, encoding, encoded_message_definition FROM message_definitions"
            ).fetchall()
        finally:
            connection.close()
    except sqlite3.Error:
        return {}
    return {msgtype: text for msgtype, encoding, text in rows if encoding == "ros2msg" and text}


def _read_mcap(path: Path, wanted: set[str]) -> Iterator[BagMessage]:
    with path.open("rb") as stream:
        try:
            for _schema, channel, message in make_reader(stream).iter_messages(
                topics=list(wanted), log_time_order=True
            ):
                yield BagMessage(channel.topic, message.log_time, message.data)
        except Exception as err:  # truncated chunk, bad CRC ...
            raise BagError(f"cannot read mcap {path}: {err}") from err


def _read_sqlite3(path: Path, wanted: set[str]) -> Iterator[BagMessage]:
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as err:
        raise BagError(f"cannot open sqlite3 bag file {path}: {err}") from err
    query = (
        "SELECT topics.name, messages.timestamp, messages.data FROM messages "
        "JOIN topics ON messages.topic_id = topics.id ORDER BY messages.timestamp"
    )
    try:
        for name, timestamp, data in connection.execute(query):
            if name not in wanted:
                continue
            if not isinstance(timestamp, int) or not isinstance(data, bytes):
                raise BagError(
                    f"sqlite3 bag file {path}: a message on {name} has timestamp "
                    f"{timestamp!r:.40} and data of type {type(data).__name__}; expected an "
                    "integer and a blob"
                )
            yield BagMessage(name, timestamp, data)
    except sqlite3.Error as err:
        raise BagError(f"cannot read sqlite3 bag file {path}: {err}") from err
    finally:
        connection.close()


def without_long_silences(messages: Iterable[BagMessage], path: Path) -> Iterator[BagMessage]:
    """`messages` as they come, and a BagError at the first one more than MAX_SILENCE_NS after
    its predecessor, naming both log times."""
    previous_ns: int | None = None
    for message in messages:
        if previous_ns is not None and message.log_time_ns - previous_ns > MAX_SILENCE_NS:
            raise BagError(
                f"bag {path}: no message for {(message.log_time_ns - previous_ns) / 1e9:.0f} s "
                f"before the one on {message.topic} at log time {message.log_time_ns} ns "
                f"(previous at {previous_ns} ns): a corrupt timestamp? Silences of up to "
                f"{MAX_SILENCE_NS // 10**9} s are played through"
            )
        previous_ns = message.log_time_ns
        yield message
