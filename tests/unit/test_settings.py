"""Self-documenting config fields and building any config dataclass from a mapping."""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path

import pytest

from rl_deploy.config import PipelineConfig, config_from_mapping
from rl_deploy.errors import ConfigError
from rl_deploy.guard import GuardConfig, GuardIO
from rl_deploy.perception.step import PerceptionConfig
from rl_deploy.safety import load_robot_limits
from rl_deploy.settings import description_of, setting

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Example:
    limit_mps: float = setting(0.5, "m/s; the most it may go.")
    names: tuple[str, ...] = setting(("a", "b"), "Names, in order.")
    plain: int = 3


def test_setting_is_a_default_with_a_description():
    assert Example() == Example(limit_mps=0.5, names=("a", "b"), plain=3)
    described = {item.name: description_of(item) for item in fields(Example)}
    assert described == {
        "limit_mps": "m/s; the most it may go.",
        "names": "Names, in order.",
        "plain": "",
    }


def test_config_from_mapping_coerces_and_names_the_bad_key():
    config = config_from_mapping(Example, {"limit_mps": 1, "names": ["x"]})
    assert config == Example(limit_mps=1.0, names=("x",))
    with pytest.raises(ConfigError, match="names"):
        config_from_mapping(Example, {"names": "x"})
    with pytest.raises(ConfigError, match="typo"):
        config_from_mapping(Example, {"typo": 1})


def test_config_from_mapping_passes_given_objects_on():
    limits = load_robot_limits(ROOT / "config" / "robots" / "diff_drive_arm.yaml")
    config = config_from_mapping(GuardConfig, {"period_s": 0.05}, limits=limits)
    assert config.limits is limits
    assert config.period_s == 0.05
    with pytest.raises(ConfigError, match="input_timeout_s"):  # the guard's own checks still run
        config_from_mapping(GuardConfig, {"input_timeout_s": 0.01}, limits=limits)


def _settings(cls: type) -> list[str]:
    """Dotted names of the fields of a config tree that carry no description."""
    missing = []
    for item in fields(cls):
        if isinstance(item.default_factory, type):  # a nested config
            missing += [f"{item.name}.{name}" for name in _settings(item.default_factory)]
        elif not description_of(item):
            missing.append(item.name)
    return missing


@pytest.mark.parametrize("cls", [PipelineConfig, PerceptionConfig, GuardConfig, GuardIO])
def test_every_setting_of_the_configs_is_described(cls):
    # Hosts take their parameter descriptions from here; what is not a setting is listed.
    not_settings = {GuardConfig: ["limits"], GuardIO: ["topics"]}.get(cls, [])
    assert _settings(cls) == not_settings
