"""Perception: the YOLO-seg detector run by ONNX Runtime, its masks and its ROS messages.

Ultralytics exports in, target masks and vision_msgs out; no torch at run time.
"""

from rl_deploy.perception.detections import Detections
from rl_deploy.perception.letterbox import LetterboxGeometry, letterbox_geometry
from rl_deploy.perception.masks import class_masks, decode_masks, depth_filter
from rl_deploy.perception.model import ModelInfo, open_session, read_model_info
from rl_deploy.perception.nms import class_aware_nms, nms_xyxy
from rl_deploy.perception.runner import DetectorConfig, YoloSegRunner, load_runner
from rl_deploy.perception.step import PerceptionConfig, PerceptionStep, PerceptionTopics

__all__ = [
    "Detections",
    "DetectorConfig",
    "LetterboxGeometry",
    "ModelInfo",
    "PerceptionConfig",
    "PerceptionStep",
    "PerceptionTopics",
    "YoloSegRunner",
    "class_aware_nms",
    "class_masks",
    "decode_masks",
    "depth_filter",
    "letterbox_geometry",
    "load_runner",
    "nms_xyxy",
    "open_session",
    "read_model_info",
]
