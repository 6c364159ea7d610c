"""``noetik sweep``: hyperparameter, seed and interpretability-weight sweeps, in this process
or as Ray Tune trials."""

from __future__ import annotations

from pathlib import Path

import typer

from noetik.cli.options import RayAddressOpt
from noetik.errors import ConfigError


def sweep(
    config: Path = typer.Argument(
        ..., help="Sweep config (.toml or .json): data, grid, seeds, term, weights, steps."
    ),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Sweep folder: trials/ (one run folder per trial), results.json/.csv, table.md, "
        "pareto.png. Finished trials in it are reused. Default: sweeps/CONFIG-NAME.",
    ),
    ray: bool = typer.Option(
        False,
        "--ray",
        help="Run the trials as Ray Tune trials (one CPU each): on a Ray instance started on "
        "this machine's cores, or on the cluster of --ray-address. Same results as without "
        "it. Needs the noetik\\[ray] extra.",
    ),
    ray_address: str | None = RayAddressOpt,
    cpus: int | None = typer.Option(
        None, "--cpus", help="--ray without an address: CPUs of the local Ray instance."
    ),
) -> None:
    """Train and measure one agent per point of the sweep's grid (hyperparameters x
    interpretability weights x seeds); write one results table and the Pareto plot of
    engagement against interpretability."""
    from noetik.analysis.sweeps import load_sweep_config, run_sweep
    from noetik.utils.progress import make_progress

    if cpus is not None and (cpus < 1 or ray_address is not None or not ray):
        raise ConfigError("--cpus needs --ray without --ray-address, and must be >= 1")
    parsed = load_sweep_config(config)
    folder = out if out is not None else Path("sweeps") / config.stem
    with make_progress() as progress:
        result = run_sweep(
            parsed,
            folder,
            ray=ray,
            ray_address=ray_address,
            num_cpus=cpus,
            progress=progress,
            where=str(config),
        )
    typer.echo((folder / "table.md").read_text(), nl=False)
    for path in result.files:
        typer.echo(f"wrote {path}")
