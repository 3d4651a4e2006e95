"""`rl-deploy` refuses bad arguments with one line naming the argument, and exit status 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from rl_deploy.cli import EXIT_BAD_SETUP, main
from rl_deploy.errors import ConfigError
from rl_deploy.safety import load_robot_limits
from rl_deploy.sim.scene import load_scene

NOT_UTF8 = b"robot:\n  name: \xff\xfe\n"


def refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run `rl-deploy argv`, expect exit 2, return its one line of stderr."""
    assert main(argv) == EXIT_BAD_SETUP
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err, err
    return err


def test_export_detector_refuses_missing_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refused(["export-detector", str(tmp_path / "nope.pt"), "--out", "x.onnx"], capsys)
    assert "weights" in err and "nope.pt" in err


@pytest.mark.parametrize(
    ("extra", "named"),
    [(["--imgsz", "0"], "--imgsz"), (["--imgsz", "320", "320", "320"], "--imgsz")],
)
def test_export_detector_refuses_bad_imgsz(
    extra: list[str], named: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"")
    err = refused(
        ["export-detector", str(weights), "--out", str(tmp_path / "d.onnx"), *extra], capsys
    )
    assert named in err


def test_export_detector_refuses_a_directory_as_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"")
    out = tmp_path / "dir.onnx"
    out.mkdir()
    assert "--out" in refused(["export-detector", str(weights), "--out", str(out)], capsys)


def test_train_detector_refuses_bad_arguments_before_rendering(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    work = tmp_path / "work"
    err = refused(["train-detector", "--work-dir", str(work), "--imgsz", "0"], capsys)
    assert "--imgsz" in err and "0" in err
    err = refused(
        ["train-detector", "--work-dir", str(work), "--model", str(tmp_path / "m.yaml")], capsys
    )
    assert "--model" in err and "m.yaml" in err
    err = refused(["train-detector", "--work-dir", str(work), "--val-fraction", "1.5"], capsys)
    assert "--val-fraction" in err
    assert not work.exists()  # nothing was rendered


def test_make_bag_refuses_an_existing_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bag"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    err = refused(["make-bag", str(out), "--seconds", "0.2"], capsys)
    assert "exists" in err
    assert (out / "keep.txt").read_text() == "mine"


def test_make_bag_refuses_a_non_positive_duration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = refused(["make-bag", str(tmp_path / "bag"), "--seconds", "-1"], capsys)
    assert "--seconds" in err
    assert not (tmp_path / "bag").exists()


def test_replay_refuses_a_config_that_is_not_utf8(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "params.yaml"
    config.write_bytes(NOT_UTF8)
    err = refused(
        ["replay", str(tmp_path / "bag"), "--out", str(tmp_path / "o"), "--config", str(config)],
        capsys,
    )
    assert "params.yaml" in err


def test_scene_and_robot_profile_that_are_not_utf8_are_config_errors(tmp_path: Path) -> None:
    path = tmp_path / "file.yaml"
    path.write_bytes(NOT_UTF8)
    with pytest.raises(ConfigError, match=r"file\.yaml"):
        load_scene(path)
    with pytest.raises(ConfigError, match=r"file\.yaml"):
        load_robot_limits(path)


@pytest.mark.parametrize("command", [["sim", "--episodes", "1"], ["demo"]])
def test_sim_and_demo_refuse_an_out_that_is_a_file_before_any_episode(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    taken = tmp_path / "taken"
    taken.write_text("mine")
    assert main([*command, "--out", str(taken)]) == EXIT_BAD_SETUP
    assert "is a file" in capsys.readouterr().err
    assert taken.read_text() == "mine"


@pytest.mark.parametrize(
    ("extra", "named"),
    [(["--seed", "-1"], "--seed"), (["--depth-noise", "nan"], "--depth-noise")],
)
def test_sim_refuses_a_bad_seed_or_fault(
    extra: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sim", "--episodes", "1", *extra]) == EXIT_BAD_SETUP
    assert named in capsys.readouterr().err


def test_train_detector_never_replaces_a_directory_that_is_not_a_dataset(tmp_path: Path) -> None:
    from rl_deploy.tools.detector_train import generate_dataset

    (tmp_path / "notes.txt").write_text("precious")
    with pytest.raises(ConfigError, match="not a dataset"):
        generate_dataset(tmp_path, 2, seed=0, imgsz=64)
    assert (tmp_path / "notes.txt").read_text() == "precious"
