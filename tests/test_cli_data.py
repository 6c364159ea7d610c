"""End to end through the CLI: synth -> prepare -> info --json -> episodes, tiny sizes."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from noetik.cli.main import main


def test_data_pipeline_through_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, cache = tmp_path / "data", tmp_path / "cache"
    synth = ["data", "synth", str(data), "--users", "40", "--videos", "120", "--seed", "3"]
    assert main(synth) == 0
    assert main(["data", "prepare", str(data), "--cache", str(cache)]) == 0
    assert len(list(cache.glob("*.parquet"))) == 6
    capsys.readouterr()
    assert main(["data", "info", str(data), "--cache", str(cache), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    random_log = pl.read_csv(data / "log_random_4_22_to_5_08_pure.csv")
    assert info["release"] == "pure"
    assert info["missing"] == []
    assert info["n_users"] == 40
    assert info["n_videos"] == 120
    assert info["logs"]["log_random"]["rows"] == random_log.height
    assert info["logs"]["log_random"]["rates"]["is_click"] == pytest.approx(
        random_log["is_click"].mean()
    )
    assert info["logs"]["log_random"]["duration_zero_share"] == pytest.approx(
        (random_log["duration_ms"] == 0).mean()
    )
    assert main(["data", "episodes", str(data), "--cache", str(cache), "--mode", "window"]) == 0
    out = capsys.readouterr().out
    assert "transitions in" in out
    assert out.count("episode ") == 3
    assert "reward = 0.5*is_click + 0.5*watch_ratio" in out


def test_help_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["data", "--help"], ["data", "synth", "--help"], ["--version"]):
        assert main(argv) == 0
    assert "noetik 0.1.0" in capsys.readouterr().out


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "episodes", "--mode", "weekly", "--n", "1"]) == 2
    assert "episodes.mode must be 'session' or 'window'" in capsys.readouterr().err
