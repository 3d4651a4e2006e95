"""Detector results as ROS messages: vision_msgs Detection2DArray / LabelInfo and a debug overlay.

Every message is a rosbags dataclass from the codec's typestore, stamped with the RGB header.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from rl_deploy.codec import array_to_image, make_header, message_class
from rl_deploy.codec.typestore import (
    BOUNDING_BOX2D,
    DETECTION2D,
    DETECTION2D_ARRAY,
    LABEL_INFO,
    OBJECT_HYPOTHESIS,
    OBJECT_HYPOTHESIS_WITH_POSE,
    POINT2D,
    POSE_WITH_COVARIANCE,
    VISION_CLASS,
    VISION_POSE2D,
)
from rl_deploy.perception.detections import Detections
from rl_deploy.perception.masks import decode_masks

_ZERO_COVARIANCE = np.zeros(36, dtype=np.float64)


class DetectionMessages:
    """Builds vision_msgs messages; the message classes are looked up once."""

    def __init__(self) -> None:
        self._array = message_class(DETECTION2D_ARRAY)
        self._detection = message_class(DETECTION2D)
        self._bbox = message_class(BOUNDING_BOX2D)
        self._pose2d = message_class(VISION_POSE2D)
        self._point2d = message_class(POINT2D)
        self._hypothesis_with_pose = message_class(OBJECT_HYPOTHESIS_WITH_POSE)
        self._hypothesis = message_class(OBJECT_HYPOTHESIS)
        self._pose_cov = message_class(POSE_WITH_COVARIANCE)
        self._pose = message_class("geometry_msgs/msg/Pose")
        self._point = message_class("geometry_msgs/msg/Point")
        self._quaternion = message_class("geometry_msgs/msg/Quaternion")

    def detection_array(self, detections: Detections, stamp_ns: int, frame_id: str) -> Any:
        """Detection2DArray: one Detection2D per instance, class id as the class name.

        The typed message; the perception step writes its bytes directly
        (codec.detections.detection2d_array), tested against this.
        """
        header = make_header(stamp_ns, frame_id)
        empty_pose = self._pose_cov(
            pose=self._pose(
                position=self._point(x=0.0, y=0.0, z=0.0),
                orientation=self._quaternion(x=0.0, y=0.0, z=0.0, w=1.0),
            ),
            covariance=_ZERO_COVARIANCE,
        )
        items = []
        boxes = detections.boxes_xyxy.astype(np.float64)
        for index in range(len(detections)):
            x1, y1, x2, y2 = boxes[index]
            hypothesis = self._hypothesis_with_pose(
                hypothesis=self._hypothesis(
                    class_id=detections.names[detections.class_ids[index]],
                    score=float(detections.scores[index]),
                ),
                pose=empty_pose,
            )
            centre = self._pose2d(
                position=self._point2d(x=(x1 + x2) / 2, y=(y1 + y2) / 2), theta=0.0
            )
            items.append(
                self._detection(
                    header=header,
                    results=[hypothesis],
                    bbox=self._bbox(center=centre, size_x=x2 - x1, size_y=y2 - y1),
                    id=str(index),
                )
            )
        return self._array(header=header, detections=items)

    def label_info(
        self, names: tuple[str, ...], threshold: float, stamp_ns: int, frame_id: str
    ) -> Any:
        """LabelInfo: the model's class map (publish transient-local, once)."""
        vision_class = message_class(VISION_CLASS)
        return message_class(LABEL_INFO)(
            header=make_header(stamp_ns, frame_id),
            class_map=[vision_class(class_id=i, class_name=name) for i, name in enumerate(names)],
            threshold=float(threshold),
        )


_PALETTE = np.array(
    [
        (230, 25, 75),
        (60, 180, 75),
        (0, 130, 200),
        (245, 130, 48),
        (145, 30, 180),
        (70, 240, 240),
        (240, 50, 230),
        (210, 245, 60),
    ],
    dtype=np.uint8,
)


def overlay_image(
    rgb: npt.NDArray[np.uint8], detections: Detections, stamp_ns: int, frame_id: str
) -> Any:
    """rgb8 Image of the frame with masks tinted and boxes labelled (debugging only: slow)."""
    canvas = np.array(rgb, dtype=np.uint8, copy=True)
    masks = decode_masks(detections)
    for index in range(len(detections)):
        class_id = int(detections.class_ids[index])
        colour = _PALETTE[class_id % len(_PALETTE)]
        pixels = masks[index]
        canvas[pixels] = (canvas[pixels] // 2 + colour // 2).astype(np.uint8)
        x1, y1, x2, y2 = (round(float(v)) for v in detections.boxes_xyxy[index])
        bgr = tuple(int(c) for c in colour)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), bgr, 2)
        label = f"{detections.names[class_id]} {detections.scores[index]:.2f}"
        cv2.putText(canvas, label, (x1, max(y1 - 4, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, bgr, 1)
    return array_to_image(canvas, "rgb8", stamp_ns, frame_id)
