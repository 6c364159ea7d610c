"""``noetik sim``: fit the KuaiRand user response model and validate it on random exposure."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from noetik.cli.options import EnvOptionOpt, parse_env_options
from noetik.data.dataset import load_kuairand
from noetik.errors import ConfigError
from noetik.utils.progress import make_progress

sim_app = typer.Typer(
    help="Fit and validate the user response model (the simulator behind the environment).",
    no_args_is_help=True,
)
_OUT = Console()
if not _OUT.is_terminal:
    _OUT = Console(width=140)
_ERR = Console(stderr=True)


@sim_app.command("fit")
def fit(
    data_dir: Path | None = typer.Argument(
        None,
        help="Folder holding KuaiRand CSV files. Default: the built-in synthetic dataset.",
        show_default=False,
    ),
    out: Path = typer.Option(..., "--out", help="Run folder to write the simulator into."),
    epochs: int = typer.Option(6, "--epochs", help="Training epochs."),
    seed: int = typer.Option(0, "--seed", help="Seed (same seed, same weights)."),
    random_users: str = typer.Option(
        "0.7",
        "--random-users",
        help="Random-log users to train on: a fraction (lowest ids first, e.g. 0.7) or ids "
        "(e.g. 0-349). The others are held out for validation.",
    ),
    random_weight: float = typer.Option(
        1.0, "--random-weight", help="Loss weight of a random-exposure row."
    ),
    holdout_log: Path | None = typer.Option(
        None, "--holdout-log", help="Also write the held-out users' random rows to this CSV."
    ),
    cache: Path | None = typer.Option(None, "--cache", help="Cache folder for typed copies."),
    members: int = typer.Option(
        0,
        "--members",
        help="Also fit an ensemble of this many members (>= 2) on the same examples, for "
        "the env's ensemble/pessimism options (0: none; add one later with 'sim ensemble').",
    ),
) -> None:
    """Train the debiased response model and the uncorrected baseline; save them to --out."""
    from noetik.simulators.kuairand import ResponseModelConfig, fit_response_model
    from noetik.simulators.kuairand.examples import parse_user_spec, write_random_rows

    config = ResponseModelConfig(
        epochs=epochs,
        seed=seed,
        random_users=parse_user_spec(random_users),
        random_weight=random_weight,
    )
    ens_config = _ensemble_config(members, seed) if members else None
    ds = load_kuairand(data_dir, cache_dir=cache)
    with make_progress() as progress:
        sim = fit_response_model(ds, config, progress=progress, ensemble=ens_config)
    sim.save(out)
    meta = sim.meta
    _OUT.print(
        f"trained on {meta['n_standard_rows']:,} standard and {meta['n_random_rows']:,} "
        f"random-exposure rows ({len(meta['train_random_users']):,} random-log users); "
        f"{len(meta['heldout_random_users']):,} random-log users held out"
    )
    if holdout_log is not None:
        users = np.asarray(meta["heldout_random_users"], dtype=np.int64)
        if not len(users):
            raise ConfigError("--holdout-log: no random-log user is held out (--random-users)")
        rows = write_random_rows(ds, users, holdout_log)
        _OUT.print(f"wrote {rows:,} held-out random-exposure rows to {holdout_log}")
    _OUT.print(f"saved simulator to {out}")


def _ensemble_config(members: int, seed: int) -> Any:
    """The :class:`EnsembleConfig` of ``--members`` and ``--seed`` (a ConfigError naming
    ``--members`` when it is below 2)."""
    from noetik.simulators.kuairand.ensemble import EnsembleConfig

    if members < 2:
        raise ConfigError(f"--members must be >= 2, got {members}")
    return EnsembleConfig(members=members, seed=seed)


@sim_app.command("ensemble")
def ensemble(
    sim_dir: Path = typer.Argument(..., help="Run folder written by 'noetik sim fit'."),
    members: int = typer.Option(5, "--members", help="Ensemble members K (>= 2)."),
    seed: int = typer.Option(0, "--seed", help="Seed of resamples and initialisations."),
) -> None:
    """Add (or replace) an ensemble in an existing simulator folder, without refitting it.

    The training examples are rebuilt from the dataset the folder names (its data_dir,
    cache_dir and training users); each member trains on a bootstrap resample of them.
    members.safetensors and simulator.json are written atomically.
    """
    from noetik.simulators.kuairand.ensemble import add_members

    config = _ensemble_config(members, seed)
    with make_progress() as progress:
        sim = add_members(sim_dir, config, progress=progress)
    losses = [round(loss[-1], 4) for loss in sim.meta["ensemble"]["losses"]]
    _OUT.print(f"final training loss of each member: {losses}")
    _OUT.print(f"saved {len(sim.members)} ensemble members to {sim_dir}")


@sim_app.command("validate")
def validate(
    run_dir: Path = typer.Argument(..., help="Run folder written by 'noetik sim fit'."),
    log: Path = typer.Option(
        ..., "--log", help="Random-exposure log CSV (official log schema) of unseen users."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Score the simulator, the uncorrected model and a popularity baseline on a random log."""
    from noetik.simulators.kuairand import load_simulator
    from noetik.simulators.kuairand.validate import score_examples, seen_users
    from noetik.simulators.kuairand.validate import validation_examples as examples_of

    if not log.is_file():
        raise ConfigError(f"--log: no such file: {log}")
    sim = load_simulator(run_dir)
    with make_progress() as progress:
        examples = examples_of(sim, log, progress=progress)
    overlap = seen_users(sim, examples)
    if overlap:
        _ERR.print(
            f"warning: {len(overlap)} user(s) of {log.name} had random-exposure rows in "
            "training; these figures are not held-out figures"
        )
    result = score_examples(sim, examples)
    if as_json:
        typer.echo(json.dumps(result, indent=2, default=_json_number))
        return
    n_users = len(np.unique(examples.user_id))
    _OUT.print(f"{len(examples):,} random-exposure rows of {n_users:,} users from {log}")
    _OUT.print(_table(result, _title(len(overlap), n_users)))


def _json_number(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _fmt(value: float | None, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _title(n_seen: int, n_users: int) -> str:
    """The table's title: "held-out" only when none of the log's ``n_users`` was trained on."""
    if n_seen == 0:
        return "Held-out random exposure"
    if n_seen == n_users:
        return "Random exposure (users seen in training)"
    return f"Random exposure ({n_seen:,} of {n_users:,} users seen in training)"


def _table(result: dict[str, Any], title: str) -> Table:
    names = ["ours", *result[next(iter(result))]["baselines"]]
    table = Table("signal", "metric", *names, "observed", title=title)
    for signal, entry in result.items():
        models = [entry, *entry["baselines"].values()]
        metrics = ("auc", "mean_pred") if "auc" in entry else ("rmse", "corr", "mean_pred")
        for metric in metrics:
            observed = _fmt(entry["mean_true"]) if metric == "mean_pred" else ""
            cells = [_fmt(m[metric]) for m in models]
            table.add_row(signal, metric, *cells, observed)
    return table


@sim_app.command("trust")
def trust(
    sim_dir: Path = typer.Argument(..., help="Simulator folder with an ensemble."),
    runs: list[Path] = typer.Argument(..., help="Run folders of the policies (at least 3)."),
    log: Path = typer.Option(
        ..., "--log", help="Random-exposure CSV of users the simulator was not fitted on."
    ),
    kappa: float = typer.Option(1.0, "--kappa", help="Pessimism: reward r - kappa * sigma."),
    temperature: float = typer.Option(
        1.0, "--temperature", help="pi = softmax(standardised scores / temperature)."
    ),
    users: int = typer.Option(1_000, "--users", help="Simulated users per policy."),
    draws: int = typer.Option(8, "--draws", help="Videos drawn from pi per logged context."),
    n_boot: int = typer.Option(1_000, "--n-boot", help="Bootstrap resamples."),
    seed: int = typer.Option(0, "--seed", help="Seed of users, draws and bootstrap."),
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Folder for trust.json / trust.md (and each policy's figures, reused by a rerun).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    env_option: list[str] | None = EnvOptionOpt,
) -> None:
    """Rank the policies of RUNS by the simulator (plain and pessimistic) and by unbiased
    real exposure on the random log, and report how well the rankings agree (Kendall tau)."""
    from noetik.evaluation.trust import COLUMNS, TrustConfig, trust_table, write_trust

    for run in runs:
        if not run.is_dir():
            raise ConfigError(f"run folder not found: {run}")
    options = tuple(sorted(parse_env_options(env_option or []).items()))
    config = TrustConfig(
        kappa=kappa,
        temperature=temperature,
        n_users=users,
        draws=draws,
        n_boot=n_boot,
        seed=seed,
        env_options=options,
    )
    with make_progress() as progress:
        cache = None if out is None else out / "policies"
        result = trust_table(sim_dir, runs, log, config, progress=progress, cache_dir=cache)
    if out is not None:
        write_trust(result, out)
    if as_json:
        _OUT.print_json(json.dumps(result))
        return
    table = Table(title=f"Simulator vs real exposure (kappa {kappa}, {users:,} simulated users)")
    table.add_column("policy")
    for heading, _ in COLUMNS:
        table.add_column(heading, justify="right")
    table.add_column("ESS", justify="right")
    for row in result["policies"]:
        cells = [_estimate(row[key]) for _, key in COLUMNS]
        table.add_row(row["policy"], *cells, f"{row['ess']:.0f}")
    _OUT.print(table)
    for key, value in result["agreement"].items():
        _OUT.print(f"{key}: {_estimate(value)}")


def _estimate(value: dict[str, float]) -> str:
    return f"{value['mean']:.3f} [{value['low']:.3f}, {value['high']:.3f}]"
