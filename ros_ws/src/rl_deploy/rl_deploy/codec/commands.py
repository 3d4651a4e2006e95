"""Builders of the messages the stack publishes: base twist, arm trajectory, diagnostics.

Each returns a rosbags message for `encode`; values pass through unchanged (safety is upstream).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from rl_deploy.codec.header import make_header, ns_to_duration
from rl_deploy.codec.typestore import (
    DIAGNOSTIC_ARRAY,
    DIAGNOSTIC_STATUS,
    FLOAT64_MULTI_ARRAY,
    JOINT_TRAJECTORY,
    JOINT_TRAJECTORY_POINT,
    KEY_VALUE,
    MULTI_ARRAY_DIMENSION,
    MULTI_ARRAY_LAYOUT,
    TWIST,
    TWIST_STAMPED,
    VECTOR3,
    EncodeError,
    message_class,
)
from rl_deploy.command import ArmTarget, BaseVelocity

_EMPTY = np.zeros(0, dtype=np.float64)


class DiagnosticLevel(IntEnum):
    """diagnostic_msgs/DiagnosticStatus levels."""

    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3


@dataclass(frozen=True)
class DiagnosticStatusData:
    """One entry of /diagnostics, free of any message class."""

    name: str  # e.g. "rl_deploy: policy"
    level: DiagnosticLevel
    message: str  # one-line summary
    hardware_id: str = ""
    values: Mapping[str, str] = field(default_factory=dict)  # key → value, shown in order


def _vector3(x: float, y: float, z: float) -> Any:
    return message_class(VECTOR3)(x=float(x), y=float(y), z=float(z))


def twist(cmd: BaseVelocity) -> Any:
    """BaseVelocity → geometry_msgs/Twist (m/s, rad/s in base_link)."""
    return message_class(TWIST)(
        linear=_vector3(cmd.linear_x, cmd.linear_y, 0.0),
        angular=_vector3(0.0, 0.0, cmd.angular_z),
    )


def twist_stamped(cmd: BaseVelocity, stamp_ns: int, frame_id: str) -> Any:
    """BaseVelocity → geometry_msgs/TwistStamped (the Jazzy default of many base controllers)."""
    return message_class(TWIST_STAMPED)(header=make_header(stamp_ns, frame_id), twist=twist(cmd))


# A JointTrajectory's header.stamp is when its motion starts; 0 means on receipt.
TRAJECTORY_STARTS_ON_RECEIPT = 0


def joint_trajectory(
    target: ArmTarget, stamp_ns: int, frame_id: str, time_from_start_ns: int
) -> Any:
    """ArmTarget → JointTrajectory with one point reached `time_from_start_ns` after the stamp."""
    positions = np.asarray(target.positions, dtype=np.float64).reshape(-1)
    if positions.shape != (len(target.names),):
        raise EncodeError(
            f"ArmTarget has {len(target.names)} names {list(target.names)} "
            f"but positions of shape {np.shape(target.positions)}"
        )
    point = message_class(JOINT_TRAJECTORY_POINT)(
        positions=np.ascontiguousarray(positions),
        velocities=_EMPTY,
        accelerations=_EMPTY,
        effort=_EMPTY,
        time_from_start=ns_to_duration(time_from_start_ns),
    )
    return message_class(JOINT_TRAJECTORY)(
        header=make_header(stamp_ns, frame_id),
        joint_names=[str(name) for name in target.names],
        points=[point],
    )


def float64_multi_array(values: npt.ArrayLike, label: str = "") -> Any:
    """1-D values → std_msgs/Float64MultiArray with one dimension (ros2_control command form)."""
    data = np.ascontiguousarray(np.asarray(values, dtype=np.float64).reshape(-1))
    dimension = message_class(MULTI_ARRAY_DIMENSION)(
        label=label, size=int(data.size), stride=int(data.size)
    )
    layout = message_class(MULTI_ARRAY_LAYOUT)(dim=[dimension], data_offset=0)
    return message_class(FLOAT64_MULTI_ARRAY)(layout=layout, data=data)


def diagnostic_array(stamp_ns: int, statuses: Sequence[DiagnosticStatusData]) -> Any:
    """Statuses → diagnostic_msgs/DiagnosticArray for /diagnostics."""
    status_class, key_value_class = message_class(DIAGNOSTIC_STATUS), message_class(KEY_VALUE)
    return message_class(DIAGNOSTIC_ARRAY)(
        header=make_header(stamp_ns, ""),
        status=[
            status_class(
                level=int(DiagnosticLevel(status.level)),
                name=status.name,
                message=status.message,
                hardware_id=status.hardware_id,
                values=[
                    key_value_class(key=str(key), value=str(value))
                    for key, value in status.values.items()
                ],
            )
            for status in statuses
        ],
    )
