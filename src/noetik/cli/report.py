"""``noetik report``: one self-contained HTML page about a run (see :mod:`noetik.reports`)."""

from __future__ import annotations

from pathlib import Path

import typer

from noetik.errors import ConfigError


def report(
    run_dir: Path = typer.Argument(
        ..., help="Run folder written by noetik train (or by noetik choices fit)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="HTML file to write (default: RUN_DIR/report.html)."
    ),
    leaderboard: Path | None = typer.Option(
        None,
        "--leaderboard",
        help="leaderboard.json or its folder (default: found in, beside or above the run folder).",
    ),
    sim: Path | None = typer.Option(
        None, "--sim", help="Simulator folder (default: the run's sim_dir env option)."
    ),
    tradeoff: Path | None = typer.Option(
        None, "--tradeoff", help="Folder written by scripts/tradeoff_sweep.py."
    ),
    trust: Path | None = typer.Option(
        None, "--trust", help="trust.json of noetik sim trust, or its folder (default: found)."
    ),
    users: int = typer.Option(
        3, "--users", help="Sample users whose recommendations are explained."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampled users and decisions."),
) -> None:
    """Write RUN_DIR's report: config, training curves, leaderboard, simulator fidelity,
    explained recommendations, faithfulness, the simulator's agreement with real exposure, the
    trade-off front and behavioural analysis.
    A choices run folder gets its model comparison, parameter recovery and behaviour."""
    import noetik.evaluation  # noqa: F401  (registers the simulator's oracle, greedy)
    from noetik.reports import write_report

    if users < 1:
        raise ConfigError(f"--users must be >= 1, got {users}")
    given = (("--leaderboard", leaderboard), ("--sim", sim), ("--tradeoff", tradeoff))
    for name, path in (*given, ("--trust", trust)):
        if path is not None and not path.exists():
            raise ConfigError(f"{name}: no such file or folder {path}")
    path = write_report(
        run_dir,
        out,
        leaderboard=leaderboard,
        sim_dir=sim,
        tradeoff_dir=tradeoff,
        trust=trust,
        users=users,
        seed=seed,
    )
    typer.echo(str(path))
