"""Detection2DArray CDR written field by field: the typestore's bytes for the typed message."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rl_deploy import codec
from rl_deploy.codec.detections import detection2d_array
from rl_deploy.codec.typestore import DETECTION2D_ARRAY, EncodeError
from rl_deploy.perception.detections import Detections
from rl_deploy.perception.messages import DetectionMessages

STAMPS = st.integers(0, 2**31 * 10**9 - 1)
NAMES = st.lists(st.text(min_size=1, max_size=9), min_size=1, max_size=5, unique=True)
COORDS = st.floats(-1e4, 1e4, width=32)


def detections(names: list[str], rows: list[tuple[int, float, list[float]]]) -> Detections:
    count = len(rows)
    return Detections(
        boxes_xyxy=np.array([box for _, _, box in rows], np.float32).reshape(count, 4),
        scores=np.array([score for _, score, _ in rows], np.float32),
        class_ids=np.array([class_id for class_id, _, _ in rows], np.intp),
        mask_coeffs=np.zeros((count, 32), np.float32),
        protos=np.zeros((32, 1, 1), np.float32),
        frame_hw=(480, 640),
        names=tuple(names),
    )


@settings(max_examples=80, deadline=None)
@given(names=NAMES, frame=st.text(max_size=30), stamp_ns=STAMPS, data=st.data())
def test_bytes_equal_the_typestore_s(names, frame, stamp_ns, data):
    # Class names and frames of every length: each shifts the alignment of what follows.
    row = st.tuples(
        st.integers(0, len(names) - 1),
        st.floats(0, 1, width=32),
        st.lists(COORDS, min_size=4, max_size=4),
    )
    found = detections(names, data.draw(st.lists(row, max_size=14)))
    typed = DetectionMessages().detection_array(found, stamp_ns, frame)
    written = detection2d_array(stamp_ns, frame, found.class_names, found.scores, found.boxes_xyxy)
    assert written == codec.encode(typed, DETECTION2D_ARRAY)
    back = codec.decode(written, DETECTION2D_ARRAY)
    assert [d.results[0].hypothesis.class_id for d in back.detections] == found.class_names
    assert [d.id for d in back.detections] == [str(i) for i in range(len(found))]


def test_mismatched_fields_and_stamps_are_refused_by_name():
    found = detections(["cup"], [(0, 0.9, [1.0, 2.0, 3.0, 4.0])])
    with pytest.raises(EncodeError, match="2 class ids, 1 scores"):
        detection2d_array(0, "cam", ["cup", "cup"], found.scores, found.boxes_xyxy)
    with pytest.raises(EncodeError, match="stamp_ns"):
        detection2d_array(2**31 * 10**9, "cam", ["cup"], found.scores, found.boxes_xyxy)
