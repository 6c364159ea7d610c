"""``noetik evaluate``: the leaderboard of trained runs."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from noetik.cli.options import EnvOptionOpt, parse_env_options
from noetik.errors import ConfigError

_OUT = Console()
if not _OUT.is_terminal:
    _OUT = Console(width=160)

SHOWN = ("return", "length", "is_click_rate", "watch_ratio", "is_like_rate", "is_hate_rate")


def evaluate(
    run_dirs: list[Path] = typer.Argument(..., help="Run folders written by noetik train."),
    env: str = typer.Option("noetik/KuaiRand-v0", "--env", help="Simulator to evaluate in."),
    env_option: list[str] | None = EnvOptionOpt,
    users: int = typer.Option(1_000, "--users", help="Simulated users (one session each)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the simulated users."),
    out: Path | None = typer.Option(None, "--out", help="Folder for leaderboard.json/.csv."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Compare runs: mean and 95 % interval of each metric, one session per simulated user."""
    from noetik.evaluation.leaderboard import evaluate_run, write_leaderboard
    from noetik.utils.progress import make_progress, track

    if users < 1:
        raise ConfigError(f"--users must be >= 1, got {users}")
    kwargs = parse_env_options(env_option or [])
    entries = []
    with make_progress() as progress:
        for run in track(run_dirs, len(run_dirs), "Evaluating runs", progress):
            entries.append(evaluate_run(run, env, users, kwargs, seed))
    if out is not None:
        for path in write_leaderboard(entries, out):
            typer.echo(f"wrote {path}", err=as_json)
    if as_json:
        typer.echo(json.dumps(entries, indent=2))
        return
    table = Table("run", "algo", *SHOWN, title=f"Leaderboard: {users:,} users of {env}")
    for entry in entries:
        cells = []
        for metric in SHOWN:
            v = entry["online"].get(metric)
            cells.append(f"{v['mean']:.3f} [{v['low']:.3f}, {v['high']:.3f}]" if v else "-")
        table.add_row(Path(entry["run"]).name, entry["algo"], *cells)
    _OUT.print(table)
