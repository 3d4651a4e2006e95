"""The codec of the core: CDR bytes ⇄ rosbags messages ⇄ numpy arrays and core dataclasses.

Converters read fields by name, so rclpy messages work wherever a rosbags message does.
"""

from rl_deploy.codec.camera_info import Intrinsics, intrinsics_from_camera_info
from rl_deploy.codec.commands import (
    TRAJECTORY_STARTS_ON_RECEIPT,
    DiagnosticLevel,
    DiagnosticStatusData,
    diagnostic_array,
    float64_multi_array,
    joint_trajectory,
    twist,
    twist_stamped,
)
from rl_deploy.codec.frames import ImageFrame, decode_image, decode_input
from rl_deploy.codec.header import (
    duration_to_ns,
    make_header,
    ns_to_duration,
    ns_to_stamp,
    stamp_to_ns,
)
from rl_deploy.codec.images import (
    DEPTH_ENCODINGS,
    SUPPORTED_ENCODINGS,
    array_to_image,
    compressed_to_array,
    decode_compressed,
    depth_image,
    depth_to_metres,
    image_to_array,
    mask_to_image,
    rgb_from_compressed,
    rgb_from_image,
)
from rl_deploy.codec.joints import joint_positions, joint_velocities, named_positions
from rl_deploy.codec.pose import POSE_MSGTYPES, TransformTree, pose2d_from_pose, pose_from_message
from rl_deploy.codec.typestore import TYPESTORE, EncodeError, decode, encode, message_class
from rl_deploy.errors import DecodeError, StaleInputError

__all__ = [
    "DEPTH_ENCODINGS",
    "POSE_MSGTYPES",
    "SUPPORTED_ENCODINGS",
    "TRAJECTORY_STARTS_ON_RECEIPT",
    "TYPESTORE",
    "DecodeError",
    "DiagnosticLevel",
    "DiagnosticStatusData",
    "EncodeError",
    "ImageFrame",
    "Intrinsics",
    "StaleInputError",
    "TransformTree",
    "array_to_image",
    "compressed_to_array",
    "decode",
    "decode_compressed",
    "decode_image",
    "decode_input",
    "depth_image",
    "depth_to_metres",
    "diagnostic_array",
    "duration_to_ns",
    "encode",
    "float64_multi_array",
    "image_to_array",
    "intrinsics_from_camera_info",
    "joint_positions",
    "joint_trajectory",
    "joint_velocities",
    "make_header",
    "mask_to_image",
    "message_class",
    "named_positions",
    "ns_to_duration",
    "ns_to_stamp",
    "pose2d_from_pose",
    "pose_from_message",
    "rgb_from_compressed",
    "rgb_from_image",
    "stamp_to_ns",
    "twist",
    "twist_stamped",
]
