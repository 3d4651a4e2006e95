"""The observation drift monitor: scores against a card's statistics, the window, the WARN entry,
and the pipeline reporting it on /diagnostics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from rl_deploy import codec
from rl_deploy.codec.typestore import DIAGNOSTIC_ARRAY
from rl_deploy.config import DriftConfig, PipelineConfig
from rl_deploy.drift import DRIFT_STATUS_NAME, DriftMonitor, drift_status
from rl_deploy.errors import ConfigError
from rl_deploy.policy import load_card
from rl_deploy.policy.parse import parse_card

CARD = Path(__file__).resolve().parents[2] / "models" / "example_reach.yaml"


@pytest.fixture(scope="module")
def card():
    return load_card(CARD)


def _feeds(card, rng, *, depth_shift=0.0, depth_scale=1.0):
    """Network inputs drawn from the card's own statistics (optionally shifted)."""
    feeds = {}
    for spec in card.inputs:
        stats = spec.statistics
        mean, std = np.asarray(stats.mean), np.asarray(stats.std)
        value = rng.normal(mean, std, size=spec.shape)
        if spec.name == "depth":
            value = (value - mean) * depth_scale + mean + depth_shift * std
        feeds[spec.name] = value.astype(np.float32)
    return feeds


ALL_INPUTS = ("depth", "target_mask", "pose", "joints", "prev_action")


def test_normalized_inputs_are_judged_after_their_normalization(card):
    # The builder feeds (x - mean) / std to a card with `normalize`: drawn from the training
    # statistics that is about N(0, 1), which must not read as a drift of the raw statistics.
    document = yaml.safe_load(CARD.read_text())
    for spec in document["inputs"]:
        spec["normalize"] = True
    normalized = parse_card(document, CARD.parent)
    monitor = DriftMonitor(normalized, DriftConfig(window=400, min_frames=10, inputs=ALL_INPUTS))
    rng = np.random.default_rng(0)
    for _ in range(400):
        feeds = _feeds(card, rng)
        for spec in card.inputs:
            mean, std = np.asarray(spec.statistics.mean), np.asarray(spec.statistics.std)
            feeds[spec.name] = ((feeds[spec.name] - mean) / std).astype(np.float32)
        monitor.update(feeds)
    scores = monitor.scores()
    assert all(score.score < 0.25 for score in scores.values()), scores


def test_a_bool_image_input_is_scored(card):
    monitor = DriftMonitor(card, DriftConfig(window=20, min_frames=10))
    rng = np.random.default_rng(0)
    for _ in range(20):
        feeds = _feeds(card, rng)
        feeds["target_mask"] = rng.random(feeds["target_mask"].shape) < 0.0125  # a bool card dtype
        monitor.update(feeds)
    assert monitor.scores()["target_mask"].frames == 20


def test_images_are_watched_by_default_and_others_on_request(card):
    assert DriftMonitor(card).inputs == ("depth", "target_mask")
    assert DriftMonitor(card, DriftConfig(inputs=("joints",))).inputs == ("joints",)
    with pytest.raises(ConfigError, match="gripper"):
        DriftMonitor(card, DriftConfig(inputs=("gripper",)))


def test_inputs_drawn_from_the_training_statistics_do_not_drift(card):
    monitor = DriftMonitor(card, DriftConfig(window=400, min_frames=10, inputs=ALL_INPUTS))
    rng = np.random.default_rng(0)
    for _ in range(400):
        monitor.update(_feeds(card, rng))
    scores = monitor.scores()
    assert set(scores) == set(ALL_INPUTS)
    # 400 frames: sampling error of a vector element's mean is 0.05 training stds.
    assert all(score.score < 0.25 for score in scores.values()), scores
    assert monitor.drifting() == []


def test_a_shifted_input_drifts_and_only_that_one(card):
    rng = np.random.default_rng(1)
    config = DriftConfig(window=200, min_frames=10, threshold=0.5, inputs=ALL_INPUTS)
    monitor = DriftMonitor(card, config)
    for _ in range(200):
        monitor.update(_feeds(card, rng, depth_shift=1.0))
    depth = monitor.scores()["depth"]
    assert depth.score == pytest.approx(1.0, abs=0.05)
    assert depth.mean_shift == pytest.approx(1.0, abs=0.05)
    assert [score.name for score in monitor.drifting()] == ["depth"]


def test_a_changed_spread_scores_by_the_spread_factor(card):
    rng = np.random.default_rng(6)
    for scale in (2.0, 0.5):
        config = DriftConfig(window=200, min_frames=10, threshold=1.0, spread_factor=1.4)
        monitor = DriftMonitor(card, config)
        for _ in range(200):
            monitor.update(_feeds(card, rng, depth_scale=scale))
        depth = monitor.scores()["depth"]
        assert depth.std_ratio == pytest.approx(scale, rel=0.03)
        assert depth.score == pytest.approx(np.log(2.0) / np.log(1.4), rel=0.05)
        assert abs(depth.mean_shift) < 0.05
        assert [score.name for score in monitor.drifting()] == ["depth"]


def test_no_score_before_min_frames_and_the_window_forgets(card):
    rng = np.random.default_rng(2)
    monitor = DriftMonitor(card, DriftConfig(window=100, min_frames=10, threshold=0.5))
    for _ in range(9):
        monitor.update(_feeds(card, rng, depth_shift=3.0))
    assert monitor.scores() == {}
    monitor.update(_feeds(card, rng, depth_shift=3.0))
    assert monitor.scores()["depth"].score > 2.5
    for _ in range(100):  # the fault is gone: a full window of nominal frames
        monitor.update(_feeds(card, rng))
    assert monitor.scores()["depth"].score < 0.1
    monitor.reset()
    assert monitor.scores() == {}


def test_out_of_range_fraction_counts_values_beyond_the_training_extremes(card):
    monitor = DriftMonitor(card, DriftConfig(window=5, min_frames=1, inputs=("joints",)))
    feeds = _feeds(card, np.random.default_rng(3))
    spec = next(s for s in card.inputs if s.name == "joints")
    feeds["joints"] = np.array([[spec.statistics.max[0] + 1.0, *spec.statistics.mean[1:]]])
    monitor.update(feeds)
    assert monitor.scores()["joints"].out_of_range == pytest.approx(1 / 3)


def test_the_diagnostics_entry_warns_with_the_drifting_inputs(card):
    monitor = DriftMonitor(card, DriftConfig(window=200, min_frames=5, threshold=0.5))
    status = drift_status(monitor, "example_reach")
    assert status.level == codec.DiagnosticLevel.OK and "collecting" in status.message
    rng = np.random.default_rng(4)
    for _ in range(200):
        monitor.update(_feeds(card, rng, depth_shift=2.0))
    status = drift_status(monitor, "example_reach")
    assert status.name == DRIFT_STATUS_NAME
    assert status.level == codec.DiagnosticLevel.WARN
    assert "depth" in status.message and "target_mask" not in status.message
    assert float(status.values["drift depth"]) > 1.5
    assert float(status.values["std_ratio depth"]) == pytest.approx(1.0, abs=0.05)
    assert float(status.values["threshold"]) == 0.5


@pytest.mark.parametrize(
    "drift",
    [
        {"threshold": 0.0},
        {"threshold": float("nan")},
        {"window": 10, "min_frames": 11},
        {"spread_factor": 1.0},
    ],
)
def test_bad_drift_settings_name_the_key(drift):
    with pytest.raises(ConfigError, match="drift"):
        PipelineConfig.from_mapping({"drift": drift})


def test_the_pipeline_reports_drift_on_diagnostics(card):
    from rl_deploy.pipeline import Pipeline
    from rl_deploy.policy import Policy
    from rl_deploy.safety import load_robot_limits

    root = CARD.parents[1]
    config = PipelineConfig.from_mapping(
        {"drift": {"window": 10, "min_frames": 5}}, base_dir=str(root)
    )
    policy = Policy.load(CARD, providers=["CPUExecutionProvider"])
    pipeline = Pipeline(
        config, policy, load_robot_limits(root / "config" / "robots" / "stretch_like.yaml")
    )
    rng = np.random.default_rng(5)
    for _ in range(10):
        pipeline.drift.update(_feeds(card, rng, depth_shift=2.0))
    outputs = pipeline.tick(1_000_000_000)  # no inputs yet: zero command, diagnostics due
    diagnostics = [o for o in outputs if o.topic == config.topics.diagnostics]
    assert diagnostics
    message = codec.decode(diagnostics[0].data, DIAGNOSTIC_ARRAY)
    entries = {status.name: status for status in message.status}
    assert entries[DRIFT_STATUS_NAME].level == codec.DiagnosticLevel.WARN
    assert "depth" in entries[DRIFT_STATUS_NAME].message
