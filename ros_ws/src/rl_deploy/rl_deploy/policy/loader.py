"""Load a policy card from its YAML (or from the card embedded in an ONNX file) and check it.

The YAML file is the source of truth; a card embedded in the ONNX metadata must agree with it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import onnx

from rl_deploy.errors import CardError, ModelContractError
from rl_deploy.policy.card import CARD_METADATA_KEY, PolicyCard
from rl_deploy.policy.contract import check_card_against_model
from rl_deploy.policy.parse import parse_card


def load_card(path: str | Path) -> PolicyCard:
    """Parse and validate a card, then check it against its ONNX graph.

    `path` is the card YAML (its `onnx` is relative to it) or an ONNX file with an embedded card.
    Raises CardError (bad card, missing file, embedded card differs) or ModelContractError.
    """
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        model = parse_model(read_model_bytes(path), path)
        text = embedded_card_text(model)
        if text is None:
            raise CardError(f"{path}: no card embedded (metadata_props key '{CARD_METADATA_KEY}')")
        card = dataclasses.replace(parse_card(text, path.parent), onnx_path=path.resolve())
        check_card_against_model(card, model)
        return card
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise CardError(f"{path}: cannot read the card: {err}") from err
    try:
        card = parse_card(text, path.parent)
    except CardError as err:
        raise CardError(f"{path}: {err}") from err
    if not card.onnx_path.is_file():
        raise CardError(f"{path}: onnx: file not found, got '{card.onnx_path}'")
    model = parse_model(read_model_bytes(card.onnx_path), card.onnx_path)
    check_card_against_model(card, model)
    check_embedded_card(card, model, path)
    return card


def read_model_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise CardError(f"onnx: cannot read the model: {err}") from err


def parse_model(model_bytes: bytes, path: Path) -> onnx.ModelProto:
    """The graph structure only (protobuf; external weight files are not opened)."""
    try:
        model = onnx.load_model_from_string(model_bytes)
    except Exception as err:  # protobuf's DecodeError; its module ships no type stubs
        raise ModelContractError(f"{path}: not an ONNX model: {err}") from err
    if not model.graph.node:  # an empty file parses as an empty ModelProto
        raise ModelContractError(f"{path}: not an ONNX model: no graph ({len(model_bytes)} bytes)")
    return model


def embedded_card_text(model: onnx.ModelProto) -> str | None:
    for prop in model.metadata_props:
        if prop.key == CARD_METADATA_KEY:
            return str(prop.value)
    return None


def check_embedded_card(card: PolicyCard, model: onnx.ModelProto, card_path: Path) -> None:
    """CardError when the ONNX carries a card that disagrees with the file card."""
    text = embedded_card_text(model)
    if text is None:
        return
    try:
        embedded = parse_card(text, card_path.parent)
    except CardError as err:
        raise CardError(f"{card.onnx_path.name}: embedded card is invalid: {err}") from err
    difference = first_difference(card, embedded, "")
    if difference:
        raise CardError(
            f"{card_path}: differs from the card embedded in {card.onnx_path.name} "
            f"(metadata '{CARD_METADATA_KEY}'): {difference}; regenerate one from the other"
        )


def first_difference(file_value: object, embedded_value: object, path: str) -> str | None:
    """Path and both values of the first field where two cards differ, or None."""
    if dataclasses.is_dataclass(file_value) and type(file_value) is type(embedded_value):
        for field in dataclasses.fields(file_value):
            found = first_difference(
                getattr(file_value, field.name),
                getattr(embedded_value, field.name),
                f"{path}.{field.name}" if path else field.name,
            )
            if found:
                return found
        return None
    if (
        isinstance(file_value, tuple)
        and isinstance(embedded_value, tuple)
        and len(file_value) == len(embedded_value)
    ):
        for index, (left, right) in enumerate(zip(file_value, embedded_value, strict=True)):
            found = first_difference(left, right, f"{path}[{index}]")
            if found:
                return found
        return None
    if file_value != embedded_value:
        return f"{path}: file {file_value!r}, embedded {embedded_value!r}"
    return None
