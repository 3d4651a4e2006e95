"""What the core hands back to its hosts: serialized messages addressed to a topic."""

from __future__ import annotations

import re
from dataclasses import dataclass

_NOT_IN_A_TOPIC_NAME = re.compile(r"[^A-Za-z0-9_]")


@dataclass(frozen=True)
class Output:
    """One message to publish (or record): CDR bytes for `topic`, of ROS type `msgtype`."""

    topic: str
    msgtype: str  # e.g. "geometry_msgs/msg/Twist"
    data: bytes


def mask_topic(prefix: str, class_name: str) -> str:
    """The topic of one class's mask: `<prefix>/<class>`, the class name made a valid ROS name
    segment ("dining table" -> dining_table; one starting with a digit gets a leading _)."""
    segment = _NOT_IN_A_TOPIC_NAME.sub("_", class_name)
    if not segment or segment[0].isdigit():
        segment = f"_{segment}"
    return f"{prefix.rstrip('/')}/{segment}"
