"""Loading a detector: Ultralytics metadata, refusal of files that are not YOLO-seg exports."""

from __future__ import annotations

import onnx
import pytest
from perception_helpers import POLICY_ONNX, SHIPPED_ONNX

from rl_deploy.errors import ConfigError, ModelContractError
from rl_deploy.perception.model import CARD_METADATA_KEY, provider_list
from rl_deploy.perception.runner import DetectorConfig, YoloSegRunner, load_runner
from rl_deploy.perception.synthetic import SCENE_CLASSES


def _rewrite_metadata(tmp_path, drop=(), set_values=None):
    model = onnx.load(str(SHIPPED_ONNX))
    kept = [(p.key, p.value) for p in model.metadata_props if p.key not in drop]
    kept = [(k, (set_values or {}).get(k, v)) for k, v in kept]
    del model.metadata_props[:]
    for key, value in kept:
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    path = tmp_path / "model.onnx"
    onnx.save(model, str(path))
    return path


def test_shipped_detector_metadata():
    runner = load_runner(SHIPPED_ONNX)
    info = runner.info
    assert info.names == SCENE_CLASSES
    assert info.imgsz == (256, 320)  # the 4:3 camera at 320, padded to the stride
    assert info.stride == 32
    assert not info.end2end and not info.dynamic
    assert info.n_protos == 32
    assert runner.provider == "CPUExecutionProvider"
    assert CARD_METADATA_KEY in info.metadata


def test_shipped_detector_is_small():
    assert SHIPPED_ONNX.stat().st_size < 6_000_000


def test_model_without_names_is_refused_with_what_was_found(tmp_path):
    path = _rewrite_metadata(tmp_path, drop=("names",))
    with pytest.raises(ModelContractError, match="no class names") as err:
        load_runner(path)
    assert "output0" in str(err.value) and "imgsz" in str(err.value)


def test_model_without_any_metadata_runs_with_configured_names(tmp_path):
    model = onnx.load(str(SHIPPED_ONNX))
    del model.metadata_props[:]
    path = tmp_path / "bare.onnx"
    onnx.save(model, str(path))
    runner = load_runner(path, class_names=SCENE_CLASSES)
    assert runner.info.imgsz == (256, 320)  # from the static input shape
    assert runner.info.names == SCENE_CLASSES


def test_wrong_number_of_configured_names_is_refused(tmp_path):
    with pytest.raises(ModelContractError, match="neither"):
        load_runner(SHIPPED_ONNX, class_names=("cup", "bottle"))


def test_detection_only_task_is_refused(tmp_path):
    path = _rewrite_metadata(tmp_path, set_values={"task": "detect"})
    with pytest.raises(ModelContractError, match="not a segmentation model"):
        load_runner(path)


def test_policy_network_is_refused_at_start_up():
    with pytest.raises(ModelContractError, match="found inputs"):
        load_runner(POLICY_ONNX)


def test_missing_and_corrupt_files_are_refused(tmp_path):
    with pytest.raises(ModelContractError, match="does not exist"):
        load_runner(tmp_path / "nowhere.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a protobuf at all")
    with pytest.raises(ModelContractError, match="cannot load"):
        load_runner(garbage)


def test_unavailable_providers_fall_back_to_cpu():
    chosen = provider_list(("TensorrtExecutionProvider", "CUDAExecutionProvider"), None, False)
    assert chosen == ["CPUExecutionProvider"]
    runner = YoloSegRunner(
        DetectorConfig(model=str(SHIPPED_ONNX), providers=("CUDAExecutionProvider",))
    )
    assert runner.provider == "CPUExecutionProvider"


def test_bad_thresholds_are_config_errors():
    with pytest.raises(ConfigError, match=r"conf=1\.5"):
        load_runner(SHIPPED_ONNX, conf=1.5)
    with pytest.raises(ConfigError, match="io_binding"):
        load_runner(SHIPPED_ONNX, io_binding="sometimes")
