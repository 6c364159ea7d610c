"""``noetik sim fit`` and ``noetik sim validate`` end to end on a small synthetic dataset."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from noetik.cli.sim import sim_app
from noetik.data.synthetic import SynthConfig, synthesize
from noetik.errors import NoetikError
from noetik.simulators.kuairand import HEADS

runner = CliRunner()


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("simcli")
    data = root / "data"
    synthesize(data, SynthConfig.for_release("pure", users=200, videos=150, seed=4))
    args = ["fit", str(data), "--out", str(root / "run"), "--epochs", "1", "--random-users"]
    args += ["0-139", "--holdout-log", str(root / "holdout.csv"), "--cache", str(root / "c")]
    result = runner.invoke(sim_app, args)
    assert result.exit_code == 0, result.output
    assert "saved simulator" in result.output
    return root / "run", root / "holdout.csv"


def test_fit_writes_the_run(fitted: tuple[Path, Path]) -> None:
    run, holdout = fitted
    names = {p.name for p in run.iterdir()}
    assert {"simulator.json", "model.safetensors", "uncorrected.safetensors"} <= names
    meta = json.loads((run / "simulator.json").read_text())["meta"]
    assert meta["train_random_users"] == list(range(140))
    assert meta["heldout_random_users"] == list(range(140, 200))
    assert holdout.is_file()


def test_validate_json_and_table(fitted: tuple[Path, Path]) -> None:
    run, holdout = fitted
    result = runner.invoke(sim_app, ["validate", str(run), "--log", str(holdout), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert list(report) == list(HEADS)
    assert set(report["is_click"]["baselines"]) == {"popularity", "uncorrected"}
    table = runner.invoke(sim_app, ["validate", str(run), "--log", str(holdout)])
    assert table.exit_code == 0 and "is_click" in table.output and "popularity" in table.output


def test_user_errors_are_noetik_errors(fitted: tuple[Path, Path], tmp_path: Path) -> None:
    run, holdout = fitted
    missing = runner.invoke(sim_app, ["validate", str(tmp_path), "--log", str(holdout)])
    assert isinstance(missing.exception, NoetikError)
    no_log = runner.invoke(sim_app, ["validate", str(run), "--log", str(tmp_path / "x.csv")])
    assert isinstance(no_log.exception, NoetikError)
    bad = runner.invoke(sim_app, ["fit", "--out", str(tmp_path / "r"), "--random-users", "x"])
    assert isinstance(bad.exception, NoetikError)


def _random_log_of(data: Path, users: range, out: Path) -> Path:
    """The data's random-exposure rows of ``users``, written as an official log CSV."""
    log = pl.read_csv(data / "log_random_4_22_to_5_08_pure.csv")
    log.filter(pl.col("user_id").is_in(list(users))).write_csv(out)
    return out


@pytest.mark.parametrize(
    ("users", "title", "warned"),
    [
        (range(140, 200), "Held-out random exposure", False),
        (range(140), "Random exposure (users seen in training)", True),
        (range(100, 200), "Random exposure (40 of 100 users seen in training)", True),
    ],
    ids=["held-out", "seen", "mixed"],
)
def test_validate_title_says_whether_users_were_held_out(
    fitted: tuple[Path, Path], tmp_path: Path, users: range, title: str, warned: bool
) -> None:
    run, _ = fitted
    log = _random_log_of(run.parent / "data", users, tmp_path / "log.csv")
    result = runner.invoke(sim_app, ["validate", str(run), "--log", str(log)])
    assert result.exit_code == 0, result.output
    assert title in result.output
    assert ("Held-out" in result.output) == (not warned)
    assert ("not held-out figures" in result.output) == warned
