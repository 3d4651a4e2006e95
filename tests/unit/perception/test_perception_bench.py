"""`rl-deploy bench perception` on a short run: every figure present, parity with Ultralytics."""

from __future__ import annotations

import json

import pytest
from perception_helpers import SHIPPED_ONNX, SHIPPED_PT

from rl_deploy.bench.perception import bench_perception_main, camera_imgsz

REQUIRED = (
    "imgsz",
    "ort_run_ms",
    "ort_run_composed_ms",
    "step_ms",
    "ultralytics_pt_ms",
    "ultralytics_onnx_ms",
    "mask_iou",
    "box_iou",
    "provider",
)


def test_camera_aspect_input_sizes():
    assert camera_imgsz(320) == (256, 320)
    assert camera_imgsz(640) == (480, 640)


@pytest.mark.slow
def test_short_run_reports_every_figure(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = [
        "--weights",
        str(SHIPPED_PT),
        "--onnx",
        str(SHIPPED_ONNX),
        "--imgsz",
        "320",
        "--frames",
        "3",
        "--rounds",
        "1",
        "--cache",
        str(tmp_path),
        "--json",
        "--out",
        str(out),
    ]
    assert bench_perception_main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    (result,) = printed["results"]
    for key in REQUIRED:
        assert key in result, key
    assert result["imgsz"] == 320 and result["input_hw"] == [256, 320]
    assert result["provider"] == "CPUExecutionProvider"
    assert all(result[k] > 0 for k in REQUIRED if k.endswith("_ms"))
    assert result["mask_iou"] >= 0.95 and result["box_iou"] >= 0.95
    assert result["parity_vs_ultralytics_onnx_same_file"]["mask_iou"] > 0.99
    # The run inside each step is timed in the same call: the step does more than its run.
    assert 0 < result["step_around_run_ms"] < result["step_ms"]
    assert result["step_over_own_run"] > 1
    assert SHIPPED_PT.with_suffix(".onnx") == SHIPPED_ONNX and SHIPPED_ONNX.is_file()
