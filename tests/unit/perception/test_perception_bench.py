"""`rl-deploy bench perception` on a short run: every figure present, parity with Ultralytics;
`bench perception-paired`, in a process of its own."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from perception_helpers import POLICY_ONNX, SHIPPED_ONNX, SHIPPED_PT, shipped_runner

from rl_deploy.bench.perception import bench_perception_main, camera_imgsz
from rl_deploy.perception.step import STEP_STAGES
from rl_deploy.tools.detector_export import sample_frames

REQUIRED = (
    "imgsz",
    "ort_run_ms",
    "ort_run_composed_ms",
    "network_run_ms",
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
    assert result["step_over_network_run"] > 0 and result["network_run_over_ort_run"] > 0
    assert SHIPPED_PT.with_suffix(".onnx") == SHIPPED_ONNX and SHIPPED_ONNX.is_file()


def test_paired_run_pairs_each_frame_with_the_bare_export(tmp_path):
    # In a process of its own: the shared thread pool it sets up would refuse every later
    # session with a pool of its own in this one.
    argv = ["bench", "perception-paired", "--imgsz", "320", "--frames", "3", "--rounds", "2"]
    argv += ["--onnx", str(SHIPPED_ONNX), "--cache", str(tmp_path), "--no-machine"]
    done = subprocess.run(
        [sys.executable, "-m", "rl_deploy.cli", *argv],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    (result,) = report["results"]
    assert result["imgsz"] == 320 and result["input_hw"] == [256, 320]
    assert result["pairs"] == 3 * 2
    assert result["provider"] == "CPUExecutionProvider"
    assert result["step_ms"] > 0 and result["ort_run_ms"] > 0
    assert result["step_over_ort_run"] > 0
    stages = result["stage_ms"]
    assert tuple(stages) == STEP_STAGES and all(ms > 0 for ms in stages.values())
    assert stages["network"] < result["step_ms"]
    # Against the export's network as the step runs it, in the same turns.
    assert result["network_run_ms"] > 0 and result["step_over_network_run"] > 0
    assert result["network_run_over_ort_run"] > 0
    # Frames without instances (without prototypes) are left out of the found ratio.
    empty = sum(len(shipped_runner().detect(frame)) == 0 for frame in sample_frames(3))
    assert result["frames_without_instances"] == empty and result["protos_on_demand"]
    assert result["step_over_network_run_found"] > 0
    for ratio in ("step_over_ort_run", "step_over_network_run_found"):
        check = report["targets"][f"{ratio}_320"]
        assert check["limit"] == 1.10 and check["met"] == (result[ratio] <= 1.10)


@pytest.mark.slow
def test_paired_run_that_exports_a_size_keeps_stdout_for_the_json(tmp_path):
    # 160 is no shipped size: Ultralytics exports it first, and logs the export as it goes.
    argv = ["bench", "perception-paired", "--imgsz", "160", "--frames", "2", "--rounds", "1"]
    argv += ["--weights", str(SHIPPED_PT), "--onnx", str(SHIPPED_ONNX), "--cache", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, "-m", "rl_deploy.cli", *argv, "--no-machine"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)["results"]  # nothing but the JSON on stdout
    assert result["input_hw"] == [128, 160] and result["pairs"] == 2
    assert (tmp_path / f"{SHIPPED_ONNX.stem}_128x160.onnx").is_file()
    assert "export success" in done.stderr  # Ultralytics' log, on stderr


def test_sessions_on_the_shared_pool_refuse_a_pool_of_their_own():
    code = (
        "import onnxruntime as ort\n"
        "from rl_deploy.perception.model import session_options, share_thread_pool\n"
        f"path = {str(POLICY_ONNX)!r}\n"
        "share_thread_pool()\n"
        "ort.InferenceSession(path, session_options(), providers=['CPUExecutionProvider'])\n"
        "try:\n"
        "    ort.InferenceSession(path, providers=['CPUExecutionProvider'])\n"
        "except Exception as err:\n"
        "    print('refused:', err)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "refused:" in done.stdout and "use_per_session_threads" in done.stdout
