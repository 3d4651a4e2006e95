"""What the core hands back to its hosts: serialized messages addressed to a topic."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Output:
    """One message to publish (or record): CDR bytes for `topic`, of ROS type `msgtype`."""

    topic: str
    msgtype: str  # e.g. "geometry_msgs/msg/Twist"
    data: bytes
