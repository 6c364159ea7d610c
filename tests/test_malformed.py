"""Every malformed-input case: one clear line naming file/column/line, exit 2, no partial cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from noetik.cli.main import main
from tests.tiny import tiny_log

RANDOM = "log_random_4_22_to_5_08_pure.csv"


def _valid_csv() -> str:
    return tiny_log(rows=6, is_rand=1).write_csv()


def _edit_line(text: str, line: int, old: str, new: str) -> str:
    lines = text.splitlines(keepends=True)
    assert old in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    return "".join(lines)


def _replace_field(text: str, line: int, column: str, value: str) -> str:
    lines = text.splitlines(keepends=True)
    header = lines[0].strip().split(",")
    fields = lines[line - 1].rstrip("\n").split(",")
    fields[header.index(column)] = value
    lines[line - 1] = ",".join(fields) + "\n"
    return "".join(lines)


CASES: dict[str, tuple[str, list[str]]] = {
    "missing column": (
        _valid_csv().replace(",tab\n", "\n", 1).replace(",1\n", "\n"),
        ["missing column(s) 'tab'"],
    ),
    "extra column": (
        _valid_csv().replace(",tab\n", ",tab,extra\n", 1).replace(",1\n", ",1,9\n"),
        ["unexpected column(s) 'extra'"],
    ),
    "text in integer column": (
        _replace_field(_valid_csv(), 4, "play_time_ms", "abc"),
        ["line 4", "column 'play_time_ms'", "'abc' is not a valid integer"],
    ),
    "float in integer column": (
        _replace_field(_valid_csv(), 3, "is_click", "0.5"),
        ["line 3", "column 'is_click'", "'0.5' is not a valid integer"],
    ),
    "binary signal out of range": (
        _replace_field(_valid_csv(), 5, "is_like", "2"),
        ["line 5", "column 'is_like'", "value 2 is not 0 or 1"],
    ),
    "empty file": ("", ["file is empty"]),
    "header only": (_valid_csv().splitlines(keepends=True)[0], ["header but no data rows"]),
    "truncated file": (_valid_csv()[:-25], ["line 7", "missing value", "truncated"]),
    "empty field": (
        _replace_field(_valid_csv(), 2, "time_ms", ""),
        ["line 2", "column 'time_ms'", "missing value"],
    ),
    "ragged row": (
        _edit_line(_valid_csv(), 3, "\n", ",7,7\n"),
        ["line 3", "row has 21 fields, the header has 19"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_log(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, expected = CASES[case]
    data, cache = tmp_path / "data", tmp_path / "cache"
    data.mkdir()
    (data / RANDOM).write_text(text)
    status = main(["data", "prepare", str(data), "--cache", str(cache)])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert err.startswith(f"error: {data / RANDOM}"), err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for fragment in expected:
        assert fragment in err, (fragment, err)
    assert not cache.exists() or list(cache.iterdir()) == []


def test_bad_file_does_not_spoil_good_ones(tmp_path: Path) -> None:
    data, cache = tmp_path / "data", tmp_path / "cache"
    data.mkdir()
    (data / "log_standard_4_08_to_4_21_pure.csv").write_text(_valid_csv())
    (data / RANDOM).write_text(CASES["truncated file"][0])
    assert main(["data", "prepare", str(data), "--cache", str(cache)]) == 2
    names = sorted(p.name for p in cache.iterdir())
    assert names == [
        "log_standard_4_08_to_4_21_pure.json",
        "log_standard_4_08_to_4_21_pure.parquet",
    ]


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("missing dir", "no such directory"),
        ("file not dir", "is not a directory"),
        ("no official names", "unknown release"),
        ("mixed releases", "several releases"),
    ],
)
def test_bad_directories(
    setup: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "data"
    if setup == "file not dir":
        target.write_text("x")
    elif setup == "no official names":
        target.mkdir()
        (target / "interactions.csv").write_text(_valid_csv())
    elif setup == "mixed releases":
        target.mkdir()
        (target / RANDOM).write_text(_valid_csv())
        (target / "log_random_4_22_to_5_08_1k.csv").write_text(_valid_csv())
    status = main(["data", "info", str(target), "--cache", str(tmp_path / "c")])
    err = capsys.readouterr().err
    assert status == 2
    assert err.startswith(f"error: {target}")
    assert expected in err


def test_unreadable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / RANDOM).mkdir()  # a directory under a file's name cannot be read as a file
    (data / "log_standard_4_08_to_4_21_pure.csv").write_text(_valid_csv())
    status = main(["data", "prepare", str(data), "--cache", str(tmp_path / "c")])
    assert status == 2
    assert "error:" in capsys.readouterr().err


def test_wrong_release_argument(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["data", "synth", str(tmp_path / "x"), "--release", "2k"])
    assert status == 2
    assert "--release" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
