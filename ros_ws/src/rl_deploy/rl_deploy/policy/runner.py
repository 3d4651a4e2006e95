"""Run a policy ONNX with ONNX Runtime, carrying its recurrent state from step to step.

The model file is hashed and its graph checked against the card before any session exists.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from rl_deploy.errors import ConfigError, ModelContractError
from rl_deploy.integrity import verified_sha256
from rl_deploy.onnx_facts import checked_provider_names
from rl_deploy.policy.card import PolicyCard, TensorSpec
from rl_deploy.policy.contract import check_card_against_model
from rl_deploy.policy.loader import parse_model, read_model_bytes

logger = logging.getLogger(__name__)

DEFAULT_PROVIDERS: tuple[str, ...] = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "CPUExecutionProvider",
)
Array = npt.NDArray[np.generic]


def select_providers(requested: Sequence[str]) -> list[str]:
    """The requested providers this onnxruntime build offers, in the requested order."""
    available = ort.get_available_providers()
    chosen = [name for name in checked_provider_names(requested) if name in available]
    if not chosen:
        raise ConfigError(
            f"providers: none of {list(requested)} is available in this onnxruntime "
            f"(available: {available})"
        )
    return chosen


class PolicyRunner:
    """One ONNX Runtime session for a card; `run` feeds the recurrent outputs back as inputs."""

    def __init__(
        self,
        card: PolicyCard,
        providers: Sequence[str] = DEFAULT_PROVIDERS,
        *,
        intra_op_threads: int | None = None,
        expected_sha256: str | None = None,
    ) -> None:
        self.card = card
        model_bytes = read_model_bytes(card.onnx_path)
        self.sha256 = verified_sha256(model_bytes, expected_sha256, str(card.onnx_path))
        # Protobuf parsing only: an ONNX file never runs code when loaded (nothing is unpickled).
        check_card_against_model(card, parse_model(model_bytes, card.onnx_path))
        options = ort.SessionOptions()
        if intra_op_threads is not None:
            options.intra_op_num_threads = intra_op_threads
        self.intra_op_threads = options.intra_op_num_threads  # 0: onnxruntime's default
        chosen = select_providers(providers)
        try:
            self.session = ort.InferenceSession(model_bytes, sess_options=options, providers=chosen)
        except Exception as err:  # ORT raises its own untyped Fail/InvalidGraph errors
            raise ModelContractError(
                f"{card.onnx_path}: ONNX Runtime cannot load the model: {err}"
            ) from err
        self._provider: str = self.session.get_providers()[0]
        logger.info(
            "policy '%s' %s runs on %s (requested %s)",
            card.name,
            card.onnx_path.name,
            self._provider,
            list(providers),
        )
        self._feed_specs: dict[str, TensorSpec] = {spec.name: spec.tensor for spec in card.inputs}
        self._feed_types = {
            name: (spec.shape, np.dtype(spec.dtype)) for name, spec in self._feed_specs.items()
        }
        outputs = list(card.outputs) + [state.output_tensor for state in card.recurrent]
        self._output_names = [out.name for out in outputs]
        # Symbolic graph dims let a model return other shapes than the card's: checked per run.
        self._output_types = [(out.shape, np.dtype(out.dtype)) for out in outputs]
        self._state: dict[str, Array] = {}
        self.reset()
        self._warm_up()

    @property
    def provider(self) -> str:
        """The execution provider the session actually uses (first of its list)."""
        return self._provider

    @property
    def recurrent_state(self) -> dict[str, Array]:
        """Copies of the state each recurrent input will receive on the next run()."""
        return {name: value.copy() for name, value in self._state.items()}

    def reset(self) -> None:
        """Zero every recurrent state (start of an episode)."""
        self._state = {
            state.input: np.zeros(state.shape, dtype=state.dtype) for state in self.card.recurrent
        }

    def run(self, feeds: Mapping[str, Array]) -> dict[str, Array]:
        """Outputs by name (card outputs, then recurrent outputs); state advances one step."""
        inputs = {}
        for name, (shape, dtype) in self._feed_types.items():
            value = feeds.get(name)
            if value is None or value.shape != shape or value.dtype != dtype:
                raise ModelContractError(self._feed_problems(feeds))
            inputs[name] = value
        inputs.update(self._state)
        results = self._session_run(inputs)
        outputs: dict[str, Array] = dict(zip(self._output_names, results, strict=True))
        for state in self.card.recurrent:
            self._state[state.input] = outputs[state.output]
        return outputs

    def _session_run(self, inputs: Mapping[str, Array]) -> list[Array]:
        try:
            results: list[Array] = self.session.run(self._output_names, inputs)
        except Exception as err:  # a runtime failure must stop the robot, not the host
            raise ModelContractError(f"{self.card.onnx_path}: inference failed: {err}") from err
        for name, value, (shape, dtype) in zip(
            self._output_names, results, self._output_types, strict=True
        ):
            if value.shape != shape or value.dtype != dtype:
                raise ModelContractError(
                    f"{self.card.onnx_path}: output '{name}': card {shape} {dtype}, "
                    f"got {value.shape} {value.dtype}"
                )
        return results

    def _feed_problems(self, feeds: Mapping[str, Array]) -> str:
        problems = []
        for name, (shape, dtype) in self._feed_types.items():
            value = feeds.get(name)
            if value is None:
                problems.append(f"input '{name}': missing from the feeds")
            elif value.shape != shape or value.dtype != dtype:
                problems.append(
                    f"input '{name}': card {shape} {dtype}, fed {value.shape} {value.dtype}"
                )
        return "; ".join(problems)

    def _warm_up(self) -> None:
        # The first run allocates and (on GPU providers) builds kernels; do it before step one.
        zeros = {
            name: np.zeros(spec.shape, dtype=spec.dtype) for name, spec in self._feed_specs.items()
        }
        self._session_run({**zeros, **self._state})
