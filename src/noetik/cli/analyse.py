"""``noetik analyse``: behavioural findings about the people behind a KuaiRand log."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import typer

from noetik.errors import ConfigError


def analyse(
    data_dir: Path | None = typer.Argument(
        None, help="KuaiRand folder (default: the built-in synthetic dataset)."
    ),
    log: str = typer.Option("log_standard", "--log", help="log_standard or log_random."),
    cache: Path | None = typer.Option(None, "--cache", help="Cache folder of typed copies."),
    boot: int = typer.Option(500, "--boot", help="Bootstrap replicates (users resampled)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the bootstrap."),
    out: Path | None = typer.Option(
        None, "--out", help="Folder for behaviour.md and the figures (PNG)."
    ),
) -> None:
    """Attention over time, preferences and drift, emotional response and habit formation,
    each with a 95 % interval over users: prints the findings (Markdown tables with --out)."""
    from noetik.analysis import (
        BehaviourConfig,
        analyse_behaviour,
        behaviour_markdown,
        findings,
        save_figures,
    )
    from noetik.data.dataset import load_kuairand
    from noetik.utils.io import write_text

    if log not in ("log_standard", "log_random"):
        raise ConfigError(f"--log must be log_standard or log_random, got {log!r}")
    ds = load_kuairand(data_dir, cache_dir=cache)
    which: Literal["log_standard", "log_random"] = (
        "log_random" if log == "log_random" else "log_standard"
    )
    report = analyse_behaviour(ds, BehaviourConfig(log=which, n_boot=boot, seed=seed))
    for line in findings(report):
        typer.echo(f"* {line}")
    if out is not None:
        write_text(out / "behaviour.md", behaviour_markdown(report) + "\n")
        paths = save_figures(report, out)
        typer.echo(f"wrote {out / 'behaviour.md'} and {len(paths)} figures", err=True)
