"""What the detector and the policy share about ONNX files and ONNX Runtime's providers."""

from __future__ import annotations

from collections.abc import Sequence

import onnxruntime as ort
from onnx import TensorProto

from rl_deploy.errors import ConfigError


def element_type_name(elem_type: int) -> str:
    """ONNX's name of a tensor element type ("FLOAT"); a file may hold a number ONNX lacks."""
    if elem_type in TensorProto.DataType.values():
        return str(TensorProto.DataType.Name(elem_type))
    return f"unknown element type {elem_type}"


def checked_provider_names(requested: object, key: str = "providers") -> tuple[str, ...]:
    """`requested` as execution provider names onnxruntime knows. ConfigError otherwise: a
    misspelt provider would be skipped like one this build lacks, and the network would run
    on the CPU without a word."""
    if (
        isinstance(requested, str)
        or not isinstance(requested, Sequence)
        or not all(isinstance(name, str) for name in requested)
    ):
        raise ConfigError(f"{key} must be a list of execution provider names, got {requested!r}")
    known = ort.get_all_providers()
    unknown = [name for name in requested if name not in known]
    if unknown:
        raise ConfigError(
            f"{key}: {unknown} are not onnxruntime execution providers "
            f"(this build has {ort.get_available_providers()})"
        )
    return tuple(requested)
