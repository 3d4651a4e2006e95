"""`rl-deploy bench`: dispatch, one JSON object per run, the machine description, exit codes."""

from __future__ import annotations

import json

import pytest
from bench_helpers import run_bench

from rl_deploy.bench import _delegate
from rl_deploy.cli import main


def test_codec_on_a_tiny_image_reports_both_sides_and_the_machine(capsys):
    code, result = run_bench(capsys, "codec", "--width", "8", "--height", "6", "--rounds", "3")
    assert code == 0
    assert result["benchmark"] == "codec"
    assert [r["encoding"] for r in result["results"]] == ["rgb8", "16UC1"]
    for row in result["results"]:
        assert row["same_pixels"] and row["same_message"]  # both sides decode the same image
        assert row["ours_decode_ms"] > 0 and row["rclpy_decode_ms"] > 0
        assert row["ratio"] == pytest.approx(row["rclpy_decode_ms"] / row["ours_decode_ms"], 0.05)
        message_ms = row["ours_message_decode_ms"]  # the whole-message path, timed beside it
        assert row["message_ratio"] == pytest.approx(row["rclpy_decode_ms"] / message_ms, 0.05)
        assert (row["width"], row["height"]) == (8, 6)
    assert set(result["targets"]) == {"decode_ratio_rgb8", "decode_ratio_16UC1"}
    assert result["targets"]["decode_ratio_rgb8"]["limit"] == 4.0
    machine = result["machine"]
    assert machine["cores"] >= 1 and machine["cpu"] and machine["memory_gib"] > 0


def test_no_machine_leaves_it_out(capsys):
    _, result = run_bench(
        capsys, "codec", "--width", "4", "--height", "4", "--rounds", "1", "--no-machine"
    )
    assert "machine" not in result


def test_unknown_benchmark_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "warp-drive"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_setup_errors_exit_2_with_the_cause(capsys, tmp_path):
    code = main(["bench", "policy", "--cards", str(tmp_path / "missing.yaml"), "--rounds", "1"])
    assert code == 2
    assert "missing.yaml" in capsys.readouterr().err


def test_a_delegated_benchmark_prints_only_its_json_on_stdout(capfd, tmp_path, monkeypatch):
    # a benchmark whose libraries log to stdout, as Ultralytics does, and write JSON to --out
    (tmp_path / "noisy_bench.py").write_text(
        "import json, os, sys\n"
        "def main(argv):\n"
        "    print('loading weights ...')\n"
        "    os.write(1, b'native chatter\\n')\n"
        "    out = argv[argv.index('--out') + 1]\n"
        "    open(out, 'w').write(json.dumps({'benchmark': 'noisy', 'argv': argv[:-2]}))\n"
        "    return 0\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert _delegate("noisy_bench", "main", ["--imgsz", "320"]) == 0
    out, err = capfd.readouterr()
    assert json.loads(out) == {"benchmark": "noisy", "argv": ["--imgsz", "320"]}
    assert "loading weights" in err and "native chatter" in err


def test_the_users_out_gets_a_copy_of_a_delegated_benchmarks_json(capfd, tmp_path, monkeypatch):
    (tmp_path / "quiet_bench.py").write_text(
        "import json\n"
        "def main(argv):\n"
        "    out = argv[argv.index('--out') + 1]\n"
        "    open(out, 'w').write(json.dumps({'benchmark': 'quiet', 'argv': argv[:-2]}))\n"
        "    return 0\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    mine = tmp_path / "mine.json"
    assert _delegate("quiet_bench", "main", ["--out", str(mine), "--frames", "1"]) == 0
    expected = {"benchmark": "quiet", "argv": ["--frames", "1"]}  # one --out reaches it: ours
    assert json.loads(capfd.readouterr().out) == expected
    assert json.loads(mine.read_text()) == expected
    assert main(["bench", "perception", "--out", str(tmp_path)]) == 2
    assert "--out" in capfd.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["faults", "--trials", "0"],
        ["fuzz", "--seconds", "nan"],
        ["codec", "--rounds", "0"],
        ["replay", "--seconds", "0"],
        ["soak", "--minutes", "-1"],
        ["e2e", "--camera-hz", "0"],
        ["perception-paired", "--imgsz", "0"],
        ["perception", "--imgsz", "100"],
    ],
)
def test_counts_sizes_and_durations_that_cannot_be_run_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", *argv])
    assert exit_info.value.code == 2
    assert f"argument {argv[1]}" in capsys.readouterr().err
