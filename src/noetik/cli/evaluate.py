"""``noetik evaluate``: the leaderboard of trained runs, or the OPE validation check."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from noetik.cli.options import EnvOptionOpt, RayAddressOpt, parse_env_options
from noetik.errors import ConfigError
from noetik.utils.bootstrap import format_estimate

if TYPE_CHECKING:
    from noetik.utils.shards import ShardEngine

_OUT = Console()
if not _OUT.is_terminal:
    _OUT = Console(width=200)

#: (lens, metric, column title) shown in the terminal table (the files hold every metric).
SHOWN = (
    ("online", "return", "return"),
    ("online", "is_click_rate", "click"),
    ("online", "watch_ratio", "watch ratio"),
    ("online", "distinct_fraction", "distinct"),
    ("online", "coverage", "coverage"),
    ("ope", "dr", "OPE: DR"),
    ("ope", "wpdis", "OPE: WPDIS"),
    ("ope", "snmips", "OPE: SNMIPS"),
    ("ope", "mips_ess", "MIPS ESS"),
    ("random_log", "click_auc", "random log: click AUC"),
    ("random_log", "click_ndcg@10", "click NDCG@10"),
    ("real_exposure", "click_snips", "real exposure: click SNIPS"),
    ("real_exposure", "click_gain", "click gain vs uniform"),
    ("real_exposure", "reward_snips", "reward SNIPS"),
    ("real_exposure", "ess", "ESS"),
)


def evaluate(
    run_dirs: list[Path] = typer.Argument(None, help="Run folders written by noetik train."),
    env: str = typer.Option(
        "noetik/KuaiRand-v0",
        "--env",
        help="--ope-check: the environment to validate in. The leaderboard evaluates each run "
        "in its own task's environment (--env-option adds options, e.g. sim_dir=SIM).",
    ),
    env_option: list[str] | None = EnvOptionOpt,
    users: int = typer.Option(1_000, "--users", help="Simulated users (one session each)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the simulated users and intervals."),
    random_log: Path | None = typer.Option(
        None,
        "--random-log",
        help="Random-exposure CSV for the random-log and real-exposure lenses.",
    ),
    real_exposure: bool = typer.Option(
        True,
        "--real-exposure/--no-real-exposure",
        help="With --random-log: importance-weighted one-step click / long-view / reward "
        "rates of each run's policy over the random-exposure pool.",
    ),
    ope: bool = typer.Option(True, "--ope/--no-ope", help="OPE lens on the runs' test split."),
    online: bool = typer.Option(
        True, "--online/--no-online", help="Online lens in each run's simulator."
    ),
    ope_check: bool = typer.Option(
        False, "--ope-check", help="Validate the OPE estimators against true values in --env."
    ),
    ope_datasets: int = typer.Option(
        50, "--ope-datasets", help="--ope-check: logged datasets (repeats) per target policy."
    ),
    ope_episodes: int = typer.Option(
        1_000, "--ope-episodes", help="--ope-check: episodes per logged dataset."
    ),
    user_block: int = typer.Option(
        1_000,
        "--user-block",
        help="Simulated users run together from one seed: the unit of seeding and of --ray's "
        "shards (the results depend on it, not on --ray).",
    ),
    ray: bool = typer.Option(
        False,
        "--ray",
        help="Shard the online lens's simulated users over Ray tasks: on a Ray instance "
        "started on this machine's cores, or on the cluster of --ray-address. Same results "
        "as without it. Needs noetik[ray].",
    ),
    ray_address: str | None = RayAddressOpt,
    out: Path | None = typer.Option(None, "--out", help="Folder for leaderboard.json/.csv."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Compare runs across four lenses (simulator, off-policy, random log, real exposure), each
    metric with its 95 % interval; or, with --ope-check, the OPE validation table of --env."""
    from noetik.evaluation.leaderboard import LeaderboardConfig, evaluate_runs, write_leaderboard
    from noetik.utils.progress import make_progress, track

    use_ray = ray or ray_address is not None
    if use_ray and (ope_check or not online):
        raise ConfigError("--ray shards the online lens's users: not with --ope-check/--no-online")
    if ope_check:
        _ope_check(env, seed, as_json, n_datasets=ope_datasets, n_episodes=ope_episodes)
        return
    if not run_dirs:
        raise ConfigError("give at least one RUN_DIR (or --ope-check)")
    if users < 1:
        raise ConfigError(f"--users must be >= 1, got {users}")
    if user_block < 1:
        raise ConfigError(f"--user-block must be >= 1, got {user_block}")
    if random_log is not None and not random_log.is_file():
        raise ConfigError(f"--random-log: no such file {random_log}")
    kwargs = parse_env_options(env_option or [])
    config = LeaderboardConfig(
        online=online,
        env_kwargs=tuple(sorted(kwargs.items())),
        n_users=users,
        block_users=user_block,
        seed=seed,
        ope=ope,
        random_log=None if random_log is None else str(random_log),
        real_exposure=real_exposure,
    )
    with contextlib.ExitStack() as stack:
        engine: ShardEngine | None = None
        if use_ray:  # Ray is imported here only
            from noetik.utils.ray_engine import ray_session

            engine = stack.enter_context(ray_session(ray_address))
        progress = stack.enter_context(make_progress())
        entries = evaluate_runs(
            run_dirs,
            config,
            lambda runs: track(runs, len(runs), "Evaluating runs", progress),
            progress,
            engine,
        )
    if out is not None:
        for path in write_leaderboard(entries, out):
            typer.echo(f"wrote {path}", err=as_json)
    if as_json:
        typer.echo(json.dumps(entries, indent=2))
        return
    _OUT.print(_table(entries, f"Leaderboard: {users:,} simulated users per run"))
    for line in _task_lines(entries):
        _OUT.print(line, markup=False, highlight=False)


def _task_lines(entries: list[dict[str, Any]]) -> list[str]:
    """What each run was evaluated under: its task, its online environment, refused lenses."""
    lines: list[str] = []
    tasks = {e["task"] for e in entries if "task" in e}
    if len(tasks) > 1:
        lines.append("The runs have different tasks; each is evaluated under its own:")
    for entry in entries:
        if "task" not in entry:
            continue
        name = Path(entry["run"]).name
        lines.append(f"{name}: task {entry['task']}")
        if entry.get("online_env"):
            lines.append(f"{name}: online lens in {entry['online_env']}")
        for lens, note in (entry.get("notes") or {}).items():
            # a note on a lens that ran qualifies its figures; on one that did not, says why
            verdict = f"{lens} lens" if entry.get(lens) else f"no {lens} lens"
            lines.append(f"{name}: {verdict}: {note}")
    return lines


def _table(entries: list[dict[str, Any]], title: str) -> Table:
    """The terminal table: the shown columns that at least one entry has."""
    columns = [c for c in SHOWN if any(c[1] in (e.get(c[0]) or {}) for e in entries)]
    table = Table("run", "algo", *(c[2] for c in columns), title=title)
    for entry in entries:
        cells = []
        for lens, metric, _ in columns:
            v = (entry.get(lens) or {}).get(metric)
            if not v:
                cells.append("-")
            elif v["low"] == v["high"] == v["mean"]:  # a count or diagnostic (e.g. ESS)
                cells.append(f"{v['mean']:,.4g}")
            else:
                cells.append(format_estimate(v["mean"], v["low"], v["high"], 3))
        table.add_row(Path(entry["run"]).name, entry["algo"], *cells)
    return table


def _ope_check(env: str, seed: int, as_json: bool, **changes: int) -> None:
    """Run the default OPE validation check of ``env`` (with ``changes``), print its table."""
    from noetik.evaluation.ope.check import default_check, format_table, run_ope_check
    from noetik.utils.progress import make_progress

    with make_progress() as progress:
        rows = run_ope_check(default_check(env, seed=seed, **changes), progress)
    typer.echo(json.dumps(rows, indent=2) if as_json else format_table(rows))
