"""Policy cards, observation building, ONNX inference and action decoding.

`Policy.load(card_path)` ties them together; the pieces are usable on their own.
"""

from rl_deploy.policy.actions import ActionDecoder
from rl_deploy.policy.card import (
    CARD_METADATA_KEY,
    ContinuousDecoding,
    DecodingSpec,
    DepthPreprocess,
    DiscreteDecoding,
    ImageGeometry,
    InputSpec,
    PolicyCard,
    RecurrentSpec,
    Statistics,
    TensorSpec,
)
from rl_deploy.policy.contract import check_card_against_model
from rl_deploy.policy.facade import Policy, PolicyStep
from rl_deploy.policy.loader import load_card
from rl_deploy.policy.observation import ObservationBuilder, RawObservation
from rl_deploy.policy.parse import parse_card
from rl_deploy.policy.runner import DEFAULT_PROVIDERS, PolicyRunner

__all__ = [
    "CARD_METADATA_KEY",
    "DEFAULT_PROVIDERS",
    "ActionDecoder",
    "ContinuousDecoding",
    "DecodingSpec",
    "DepthPreprocess",
    "DiscreteDecoding",
    "ImageGeometry",
    "InputSpec",
    "ObservationBuilder",
    "Policy",
    "PolicyCard",
    "PolicyRunner",
    "PolicyStep",
    "RawObservation",
    "RecurrentSpec",
    "Statistics",
    "TensorSpec",
    "check_card_against_model",
    "load_card",
    "parse_card",
]
