"""Negative ids are rejected in every file that has id columns, as a user meets it: through the
CLI, with one ``error:`` line naming file, line and column, exit status 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from noetik.cli.main import main
from noetik.data.schema import ID_COLUMNS, SCHEMAS, FileKind
from tests.conftest import REPO
from tests.tiny import write_tiny_release

#: (file of the tiny Pure release, column, 0-based data row to make negative).
CASES: list[tuple[str, str, int]] = [
    ("log_standard_4_08_to_4_21_pure.csv", "user_id", 3),
    ("log_standard_4_22_to_5_08_pure.csv", "video_id", 5),
    ("log_random_4_22_to_5_08_pure.csv", "user_id", 0),
    ("log_random_4_22_to_5_08_pure.csv", "video_id", 2),
    ("user_features_pure.csv", "user_id", 1),
    ("video_features_basic_pure.csv", "video_id", 4),
    ("video_features_basic_pure.csv", "author_id", 2),
    ("video_features_basic_pure.csv", "music_id", 0),
    ("video_features_statistic_pure.csv", "video_id", 3),
]


def test_cases_cover_every_id_column() -> None:
    """Every id column of every file kind has a case (a new id column needs one too)."""
    kind_of = {
        "log_standard": FileKind.LOG_STANDARD,
        "log_random": FileKind.LOG_RANDOM,
        "user_features": FileKind.USER_FEATURES,
        "video_features_basic": FileKind.VIDEO_BASIC,
        "video_features_statistic": FileKind.VIDEO_STATISTIC,
    }
    covered = {
        (kind, column)
        for name, column, _ in CASES
        for prefix, kind in kind_of.items()
        if name.startswith(prefix)
    }
    expected = {(kind, c) for kind, schema in SCHEMAS.items() for c in schema if c in ID_COLUMNS}
    assert expected == covered


def _make_negative(path: Path, column: str, row: int, value: int = -7) -> None:
    frame = pl.read_csv(path, infer_schema=False)
    ids = frame[column].to_list()
    ids[row] = str(value)
    frame.with_columns(pl.Series(column, ids)).write_csv(path)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}:{c[1]}")
@pytest.mark.parametrize("command", ["info", "prepare"])
def test_negative_id_is_rejected(
    case: tuple[str, str, int], command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name, column, row = case
    data = write_tiny_release(tmp_path / "data", "pure")
    _make_negative(data / name, column, row)
    status = main(["data", command, str(data), "--cache", str(tmp_path / "cache")])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert err == (
        f"error: {data / name}, line {row + 2}, column '{column}': "
        "value -7 is negative (ids are 0 or more)"
    )


def test_negative_user_id_from_another_directory(tmp_path: Path) -> None:
    """`noetik data info` run as a program from elsewhere: no counts, one line, status 2."""
    data = write_tiny_release(tmp_path / "data", "pure")
    _make_negative(data / "log_random_4_22_to_5_08_pure.csv", "user_id", 1)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "NOETIK_CACHE_DIR": str(tmp_path / "c")}
    done = subprocess.run(
        [sys.executable, "-m", "noetik", "data", "info", str(data)],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        f"error: {data / 'log_random_4_22_to_5_08_pure.csv'}, line 3, column 'user_id': "
        "value -7 is negative (ids are 0 or more)"
    ]


def test_zero_ids_are_valid(tmp_path: Path) -> None:
    """Id 0 is a real id (the first user, a video without music): it stays valid."""
    data = write_tiny_release(tmp_path / "data", "pure")
    _make_negative(data / "video_features_basic_pure.csv", "music_id", 0, value=0)
    assert main(["data", "prepare", str(data), "--cache", str(tmp_path / "cache")]) == 0
