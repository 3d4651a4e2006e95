"""Open a YOLO-seg ONNX export: check its graph, read Ultralytics' metadata, pick providers.

A file that is not a segmentation export is refused here, at start-up, with what was found,
before onnxruntime builds anything (perception.graph then composes what the runner runs).
"""

from __future__ import annotations

import ast
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
import onnxruntime as ort
from onnx import TensorProto

from rl_deploy.errors import ModelContractError
from rl_deploy.integrity import verified_sha256
from rl_deploy.onnx_facts import checked_provider_names, element_type_name

logger = logging.getLogger(__name__)

CARD_METADATA_KEY = "rl_deploy_detector"  # JSON card written by `rl-deploy export-detector`
GPU_PROVIDERS = ("TensorrtExecutionProvider", "CUDAExecutionProvider")


@dataclass(frozen=True)
class ModelInfo:
    """What the runner needs to know about a YOLO-seg export."""

    path: str
    names: tuple[str, ...]  # class names by id
    imgsz: tuple[int, int]  # (height, width) the model was exported for
    stride: int  # largest feature stride; dynamic inputs are padded to a multiple of it
    dynamic: bool  # input height/width are symbolic: letterbox pads only to the stride
    end2end: bool  # output0 is (1, K, 6 + P) boxes after NMS, not (1, 4 + nc + P, N) raw
    n_protos: int  # P, number of mask prototypes
    input_name: str
    input_type: int  # onnx.TensorProto element type of the network input (FLOAT or FLOAT16)
    output_names: tuple[str, str]  # (predictions, prototypes)
    metadata: Mapping[str, str]  # the raw custom metadata of the file


def _literal(value: str, key: str, path: str) -> Any:
    """Ultralytics writes metadata with str(); JSON and Python literals both parse here."""
    try:
        return json.loads(value)
    except ValueError:
        pass
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError) as err:
        raise ModelContractError(f"{path}: metadata {key}={value[:80]!r} is unreadable") from err


def _parse_names(raw: Any, path: str) -> tuple[str, ...]:
    if isinstance(raw, Mapping):
        try:
            ordered = sorted((int(k), str(v)) for k, v in raw.items())
        except (TypeError, ValueError) as err:
            raise ModelContractError(f"{path}: class ids in metadata names must be ints") from err
        if [k for k, _ in ordered] != list(range(len(ordered))):
            raise ModelContractError(f"{path}: class ids in metadata names are not 0..N-1")
        return tuple(v for _, v in ordered)
    if isinstance(raw, list | tuple):
        return tuple(str(v) for v in raw)
    raise ModelContractError(f"{path}: metadata names must be a mapping or list, got {raw!r}")


def _is_positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


Shape = list[int | str | None]  # static sizes, symbolic names, None where unknown


def _shape(value: onnx.ValueInfoProto) -> Shape:
    dims = value.type.tensor_type.shape.dim
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in dims]


def _describe(graph: onnx.GraphProto, metadata: Mapping[str, str]) -> str:
    inputs = [(i.name, _shape(i)) for i in _graph_inputs(graph)]
    outputs = [(o.name, _shape(o)) for o in graph.output]
    return f"inputs {inputs}, outputs {outputs}, metadata keys {sorted(metadata)}"


def _graph_inputs(graph: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    """Inputs a caller feeds (older exports also list their weights as inputs)."""
    weights = {init.name for init in graph.initializer}
    return [value for value in graph.input if value.name not in weights]


def _class_names(
    metadata: Mapping[str, str], override: Sequence[str] | None, path: str, found: str
) -> tuple[str, ...]:
    if override:
        return tuple(override)
    if "names" in metadata:
        return _parse_names(_literal(metadata["names"], "names", path), path)
    raise ModelContractError(
        f"{path}: no class names (no Ultralytics 'names' metadata and none configured); "
        f"found {found}"
    )


def _input_size(
    shape: Sequence[Any], metadata: Mapping[str, str], path: str, found: str
) -> tuple[tuple[int, int], bool]:
    """(height, width) the model expects, and whether its input size is dynamic."""
    height, width = shape[2], shape[3]
    dynamic = not (isinstance(height, int) and isinstance(width, int))
    if "imgsz" in metadata:
        size = _literal(metadata["imgsz"], "imgsz", path)
        sizes = list(size) if isinstance(size, list | tuple) else [size]
        if len(sizes) not in (1, 2) or not all(_is_positive_int(v) for v in sizes):
            raise ModelContractError(
                f"{path}: metadata imgsz={size!r} must be a size or (height, width) > 0"
            )
        if not dynamic and (sizes[0], sizes[-1]) != (height, width):
            raise ModelContractError(
                f"{path}: metadata imgsz={size!r} disagrees with the input's (H, W) = "
                f"({height}, {width}); found {found}"
            )
        return (sizes[0], sizes[-1]), dynamic
    if not dynamic:
        return (int(height), int(width)), dynamic
    raise ModelContractError(f"{path}: dynamic input and no 'imgsz' metadata; found {found}")


def _check_card(metadata: Mapping[str, str], imgsz: tuple[int, int], path: str) -> None:
    """The card export-detector embedded must still describe the file: a mismatch means the
    metadata was edited after the export (or the card copied from another model)."""
    try:
        card = json.loads(metadata[CARD_METADATA_KEY])
    except ValueError as err:
        raise ModelContractError(f"{path}: metadata {CARD_METADATA_KEY} is not JSON") from err
    if not isinstance(card, Mapping):
        raise ModelContractError(f"{path}: metadata {CARD_METADATA_KEY} must hold a mapping")
    found = {
        "task": metadata.get("task", "segment"),
        "imgsz": list(imgsz),
        "names": list(_class_names(metadata, None, path, "")) if "names" in metadata else None,
    }
    differ = [
        f"{key}: card {card[key]!r}, model {value!r}"
        for key, value in found.items()
        if key in card and value is not None and card[key] != value
    ]
    if differ:
        raise ModelContractError(
            f"{path}: the embedded card ({CARD_METADATA_KEY}) disagrees with the model's "
            f"metadata: {'; '.join(differ)}"
        )


def read_model_info(
    model: onnx.ModelProto, path: str, names_override: Sequence[str] | None = None
) -> ModelInfo:
    """Check that `model` is a YOLO-seg export and read its metadata.

    Raises ModelContractError naming what was found when the graph or metadata do not fit.
    """
    metadata = {entry.key: entry.value for entry in model.metadata_props}
    found = _describe(model.graph, metadata)
    inputs = _graph_inputs(model.graph)
    input_shapes, output_shapes = (
        [_shape(i) for i in inputs],
        [_shape(o) for o in model.graph.output],
    )
    task = metadata.get("task")
    if task is not None and task != "segment":
        raise ModelContractError(f"{path}: not a segmentation model (task={task!r}); found {found}")
    if len(inputs) != 1 or len(input_shapes[0]) != 4 or input_shapes[0][1] not in (3, "3"):
        raise ModelContractError(f"{path}: expected one (1, 3, H, W) image input; found {found}")
    input_type = inputs[0].type.tensor_type.elem_type
    if input_type not in (TensorProto.FLOAT, TensorProto.FLOAT16):
        name = element_type_name(input_type)
        raise ModelContractError(f"{path}: image input is {name}, not float; found {found}")
    if len(output_shapes) != 2 or len(output_shapes[0]) != 3 or len(output_shapes[1]) != 4:
        raise ModelContractError(
            f"{path}: expected YOLO-seg outputs (predictions 3-D, prototypes 4-D); found {found}"
        )
    n_protos = output_shapes[1][1]
    if not isinstance(n_protos, int):
        raise ModelContractError(f"{path}: prototype count must be static; found {found}")

    names = _class_names(metadata, names_override, path, found)
    imgsz, dynamic = _input_size(input_shapes[0], metadata, path, found)
    if CARD_METADATA_KEY in metadata:
        _check_card(metadata, imgsz, path)
    stride = _literal(metadata.get("stride", "32"), "stride", path)
    if not _is_positive_int(stride):
        raise ModelContractError(f"{path}: metadata stride={stride!r} must be an integer > 0")

    rows, cols = output_shapes[0][1], output_shapes[0][2]
    raw_fits = rows == 4 + len(names) + n_protos
    e2e_fits = cols == 6 + n_protos
    declared = metadata.get("end2end") == "True" or "'nms': True" in metadata.get("args", "")
    if raw_fits and not (declared and e2e_fits):
        end2end = False
    elif e2e_fits:
        end2end = True
    else:
        raise ModelContractError(
            f"{path}: predictions have neither 4 + {len(names)} classes + {n_protos} rows (raw) "
            f"nor 6 + {n_protos} columns (with NMS); found {found}"
        )
    return ModelInfo(
        path=path,
        names=names,
        imgsz=imgsz,
        stride=stride,
        dynamic=dynamic,
        end2end=end2end,
        n_protos=n_protos,
        input_name=inputs[0].name,
        input_type=input_type,
        output_names=(model.graph.output[0].name, model.graph.output[1].name),
        metadata=metadata,
    )


def provider_list(
    requested: Sequence[str], trt_cache_dir: str | None, fp16: bool
) -> list[str | tuple[str, dict[str, Any]]]:
    """Requested providers that this onnxruntime build has, with their options; CPU always last."""
    available = set(ort.get_available_providers())
    chosen: list[str | tuple[str, dict[str, Any]]] = []
    for name in checked_provider_names(requested, "detector.providers"):
        if name not in available:
            logger.info("execution provider %s is not available here (have %s)", name, available)
            continue
        if name == "TensorrtExecutionProvider":
            options: dict[str, Any] = {"trt_fp16_enable": fp16}
            if trt_cache_dir:
                Path(trt_cache_dir).mkdir(parents=True, exist_ok=True)
                options |= {"trt_engine_cache_enable": True, "trt_engine_cache_path": trt_cache_dir}
            chosen.append((name, options))
        elif name != "CPUExecutionProvider":
            chosen.append(name)
    chosen.append("CPUExecutionProvider")
    return chosen


def load_model(path: str | Path, expected_sha256: str = "") -> onnx.ModelProto:
    """The parsed ONNX file; with `expected_sha256` its digest must match before it is parsed."""
    path = Path(path)
    if not path.is_file():
        raise ModelContractError(f"detector model {path} does not exist")
    try:
        model_bytes = path.read_bytes()
    except OSError as err:
        raise ModelContractError(f"detector model {path} cannot be read: {err}") from err
    verified_sha256(model_bytes, expected_sha256, f"detector model {path}")
    try:
        model = onnx.load_model_from_string(model_bytes)
    except Exception as err:  # protobuf's DecodeError and friends
        raise ModelContractError(f"{path}: cannot load it as ONNX: {err}") from err
    if not model.graph.node:
        raise ModelContractError(f"{path}: cannot load it as ONNX: the file holds no graph")
    return model


@dataclass
class _Threads:
    shared_pool: bool = False  # set by share_thread_pool


_THREADS = _Threads()


def share_thread_pool() -> None:
    """Open every later session of this module on one process-wide onnxruntime thread pool.

    For measurements that alternate two sessions call by call: both then run on the same
    workers, neither beside the other's idle ones spinning. onnxruntime then refuses any
    session with a pool of its own in this process (Ultralytics' included).
    """
    if not _THREADS.shared_pool:
        ort.capi._pybind_state.set_global_thread_pool_sizes(0, 0)  # onnxruntime's defaults
        _THREADS.shared_pool = True


SPINNING = "session.intra_op.allow_spinning"  # onnxruntime's session config key


def session_options(intra_op_threads: int = 0, spin_wait: bool = True) -> ort.SessionOptions:
    """Options for a session of this process: its own pool of `intra_op_threads` (0:
    onnxruntime's default) whose workers spin-wait between runs or sleep (`spin_wait`), or,
    after share_thread_pool, the shared one, whose settings rule."""
    options = ort.SessionOptions()
    if _THREADS.shared_pool:
        options.use_per_session_threads = False
    else:
        options.intra_op_num_threads = intra_op_threads
        options.add_session_config_entry(SPINNING, "1" if spin_wait else "0")
    return options


def open_session(
    model: onnx.ModelProto,
    path: str | Path,
    providers: Sequence[str] = ("CPUExecutionProvider",),
    trt_cache_dir: str | None = None,
    fp16: bool = False,
    *,
    intra_op_threads: int = 0,
    spin_wait: bool = True,
) -> ort.InferenceSession:
    """An InferenceSession of `model` (read from `path`) on the best available requested
    provider (logged)."""
    options = session_options(intra_op_threads, spin_wait)
    chosen = provider_list(providers, trt_cache_dir, fp16)
    try:
        session = ort.InferenceSession(model.SerializeToString(), options, providers=chosen)
    except Exception as err:  # onnxruntime raises its own unrelated exception types
        raise ModelContractError(
            f"{path}: onnxruntime cannot load it: {type(err).__name__}: {err}"
        ) from err
    logger.info(
        "detector %s runs on %s (requested %s)",
        Path(path).name,
        session.get_providers()[0],
        providers,
    )
    return session
