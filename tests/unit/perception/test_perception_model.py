"""Loading a detector: Ultralytics metadata, refusal of files that are not YOLO-seg exports."""

from __future__ import annotations

import functools

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from perception_helpers import POLICY_ONNX, SHIPPED_ONNX, frames, shipped_runner

from rl_deploy.errors import ConfigError, ModelContractError
from rl_deploy.perception.letterbox import LetterboxBuffer
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


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("imgsz", "[320]", r"imgsz=\[320\] disagrees with the input's \(H, W\) = \(256, 320\)"),
        ("imgsz", "None", "imgsz=None must be"),
        ("imgsz", "'abc'", "imgsz='abc' must be"),
        ("imgsz", "1e999", "imgsz=inf must be"),
        ("imgsz", "0", "imgsz=0 must be"),
        ("imgsz", "[256, -320]", r"imgsz=\[256, -320\] must be"),
        ("imgsz", "[1, 2, 3]", "must be a size or"),
        ("stride", "None", "stride=None must be"),
        ("stride", "0", "stride=0 must be"),
        ("stride", "[32]", r"stride=\[32\] must be"),
        ("names", "{None: 'cup', 1: 'bottle'}", "class ids in metadata names must be ints"),
    ],
)
def test_unusable_metadata_values_are_refused_by_name(tmp_path, key, value, message):
    path = _rewrite_metadata(tmp_path, drop=(CARD_METADATA_KEY,), set_values={key: value})
    with pytest.raises(ModelContractError, match=message):
        load_runner(path)


def test_metadata_edited_after_the_export_disagrees_with_the_embedded_card(tmp_path):
    names = "{0: 'dog', 1: 'cat', 2: 'cow', 3: 'pig', 4: 'hen'}"
    with pytest.raises(ModelContractError, match="names: card"):
        load_runner(_rewrite_metadata(tmp_path, set_values={"names": names}))
    broken = _rewrite_metadata(tmp_path, set_values={CARD_METADATA_KEY: "{not json"})
    with pytest.raises(ModelContractError, match="is not JSON"):
        load_runner(broken)


def test_an_element_type_onnx_does_not_know_is_named(tmp_path):
    model = onnx.load(str(SHIPPED_ONNX))
    model.graph.input[0].type.tensor_type.elem_type = 99
    path = tmp_path / "odd_input.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelContractError, match="image input is unknown element type 99"):
        load_runner(path)


@functools.cache
def _bare_session() -> ort.InferenceSession:
    return ort.InferenceSession(str(SHIPPED_ONNX), providers=["CPUExecutionProvider"])


def _bare_run(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The export as Ultralytics writes it, run by onnxruntime on Ultralytics' float tensor."""
    session = _bare_session()
    letterbox = LetterboxBuffer()
    letterbox.fill(frame, shipped_runner().geometry(frame.shape[:2]))
    predictions, protos = session.run(None, {"images": letterbox.tensor})
    return predictions[0], protos[0]


def _candidates(predictions: np.ndarray, n_classes: int, conf: float, allowed=None):
    """Ultralytics' first filter and box conversion in numpy, on the raw (4 + nc + P, N)."""
    rows = predictions[:, predictions[4 : 4 + n_classes].max(axis=0) > conf].T
    scores_all = rows[:, 4 : 4 + n_classes]
    classes = scores_all.argmax(axis=1)
    keep = np.ones(len(rows), bool) if allowed is None else np.isin(classes, allowed)
    centre, half = rows[keep, 0:2], rows[keep, 2:4] / 2
    return (
        np.concatenate([centre - half, centre + half], axis=1),
        scores_all[keep].max(axis=1),
        classes[keep],
        rows[keep, 4 + n_classes :],
    )


@pytest.mark.parametrize("uint8_input", [True, False])
def test_composed_graph_gives_the_bare_exports_candidates_bit_for_bit(uint8_input):
    runner = shipped_runner() if uint8_input else load_runner(SHIPPED_ONNX, uint8_input=False)
    expected_type = "tensor(uint8)" if uint8_input else "tensor(float)"
    assert runner.session.get_inputs()[0].type == expected_type
    portrait = np.ascontiguousarray(frames()[1].transpose(1, 0, 2))  # padded at the sides
    n_classes, found, without = len(runner.names), 0, 0
    for frame in (*frames(), portrait, frames()[2][:256, :320]):
        predictions, protos = _bare_run(frame)
        for classes, allowed in ((None, None), (runner.names[1:3], [1, 2])):
            *ours, our_protos = runner.infer(runner.preprocess(frame), classes)
            expected = _candidates(predictions, n_classes, runner.config.conf, allowed)
            for a, b in zip(ours, expected, strict=True):
                np.testing.assert_array_equal(a, b)
            if len(ours[0]):
                np.testing.assert_array_equal(our_protos[0], protos)
            else:  # nothing to mask: the prototypes are not computed (perception.protos)
                assert our_protos.shape == (1, len(protos), 0, 0)
                without += 1
            found += len(ours[0])
    assert found > 0 and without > 0


def _with_float16_input(tmp_path):
    """The shipped network behind a float16 image input, as a half-precision export takes."""
    model = onnx.load(str(SHIPPED_ONNX))
    graph = model.graph
    name = graph.input[0].name
    graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.FLOAT16
    for node in graph.node:
        node.input[:] = ["as_float" if i == name else i for i in node.input]
    graph.node.insert(0, onnx.helper.make_node("Cast", [name], ["as_float"], to=1))
    path = tmp_path / "half_input.onnx"
    onnx.save(model, str(path))
    return path


def test_float16_input_gets_the_frame_converted_in_the_graph(tmp_path):
    path = _with_float16_input(tmp_path)
    half = load_runner(path)
    assert half.info.input_type == onnx.TensorProto.FLOAT16
    compared = 0
    for frame in frames():
        ours, reference = half.detect(frame), shipped_runner().detect(frame)
        assert len(ours) == len(reference)
        np.testing.assert_allclose(ours.boxes_xyxy, reference.boxes_xyxy, atol=1.0)
        compared += len(ours)
    assert compared > 0
    with pytest.raises(ConfigError, match="float16 input: it needs uint8_input"):
        load_runner(path, uint8_input=False)


def test_integer_image_input_is_refused(tmp_path):
    model = onnx.load(str(SHIPPED_ONNX))
    model.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.INT64
    path = tmp_path / "int_input.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelContractError, match="image input is INT64, not float"):
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
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelContractError, match="holds no graph"):
        load_runner(empty)


def test_unavailable_providers_fall_back_to_cpu():
    chosen = provider_list(("TensorrtExecutionProvider", "CUDAExecutionProvider"), None, False)
    assert chosen == ["CPUExecutionProvider"]
    runner = YoloSegRunner(
        DetectorConfig(model=str(SHIPPED_ONNX), providers=("CUDAExecutionProvider",))
    )
    assert runner.provider == "CPUExecutionProvider"


def test_misspelt_or_malformed_provider_names_are_config_errors():
    with pytest.raises(ConfigError, match=r"\['CUDAExcutionProvider'\] are not onnxruntime"):
        load_runner(SHIPPED_ONNX, providers=("CUDAExcutionProvider", "CPUExecutionProvider"))
    with pytest.raises(ConfigError, match="must be a list of execution provider names"):
        provider_list("CUDAExecutionProvider", None, False)


def test_bad_thresholds_are_config_errors():
    with pytest.raises(ConfigError, match=r"conf=1\.5"):
        load_runner(SHIPPED_ONNX, conf=1.5)
    with pytest.raises(ConfigError, match=r"conf=1\.0"):  # scores must be above it: none is
        load_runner(SHIPPED_ONNX, conf=1.0)
    with pytest.raises(ConfigError, match="min_contrast"):  # NaN: every frame would be flat
        load_runner(SHIPPED_ONNX, min_contrast=float("nan"))
    with pytest.raises(ConfigError, match="io_binding"):
        load_runner(SHIPPED_ONNX, io_binding="sometimes")
