"""``noetik train`` and ``noetik act``: fit any registered agent, then recommend with it.

A run folder holds ``run.json`` (what was trained on, how), the agent (``config.json``,
``spec.json``, ``model.safetensors``), ``metrics.csv`` and ``checkpoint/`` (resumable).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from noetik.cli.options import EnvOptionOpt, parse_env_options
from noetik.errors import ConfigError
from noetik.utils.io import expect_object, read_json

_OUT = Console()
if not _OUT.is_terminal:
    _OUT = Console(width=140)


def _config(algo: str, config_file: Path | None, seed: int | None, encoder: str | None) -> Any:
    import noetik.evaluation  # noqa: F401  (registers the simulator's oracle, greedy)
    from noetik.agents import ALGOS

    if algo not in ALGOS:
        raise ConfigError(f"unknown ALGO '{algo}'; choose one of {', '.join(sorted(ALGOS))}")
    cls = ALGOS[algo]
    fields: dict[str, Any] = {}
    where = "--config"
    if config_file is not None:
        where = f"--config {config_file}"
        fields = expect_object(read_json(config_file, "config file"), where, "config file")
    config = cls.from_dict(fields, where=where)
    if seed is not None:
        config = config.replace(seed=seed)
    if encoder is not None:
        if encoder not in ("mlp", "transformer"):
            raise ConfigError(f"--encoder must be mlp or transformer, got '{encoder}'")
        kind: Any = encoder
        config = config.replace(encoder=dataclasses.replace(config.encoder, kind=kind))
    return config


STEPS_HELP = (
    "How long to train. Offline (--data): gradient updates, each on --config's batch_size "
    "logged transitions. Online (--env): rollout iterations, each stepping --num-envs users "
    "for the algorithm's n_steps, then its update epochs."
)


def train(
    algo: str = typer.Argument(
        ..., help="Algorithm: iql, bc, dqn, cql, ppo, a2c (or a heuristic)."
    ),
    out: Path = typer.Option(..., "--out", help="Run folder to write (must not hold a run)."),
    data: Path | None = typer.Option(None, "--data", help="KuaiRand folder (offline training)."),
    env: str | None = typer.Option(None, "--env", help="Environment id (online training)."),
    steps: int = typer.Option(1_000, "--steps", help=STEPS_HELP),
    seed: int | None = typer.Option(None, "--seed", help="Seed (overrides the config's)."),
    config: Path | None = typer.Option(None, "--config", help="JSON file of agent config fields."),
    encoder: str | None = typer.Option(None, "--encoder", help="mlp or transformer."),
    reward: str | None = typer.Option(
        None,
        "--reward",
        help="Reward weights over the 12 signals, e.g. is_click=0.5,watch_ratio=0.5 "
        "(default; overrides --task's).",
    ),
    task_file: Path | None = typer.Option(
        None, "--task", help="JSON task file (data, reward, episodes, split, states, env)."
    ),
    sim: Path | None = typer.Option(
        None, "--sim", help="Simulator fitted on --data (noetik sim fit), for the online lens."
    ),
    num_envs: int = typer.Option(256, "--num-envs", help="Users per batched env (online)."),
    cache: Path | None = typer.Option(None, "--cache", help="Cache folder for typed copies."),
    out_of_core: bool | None = typer.Option(
        None,
        "--out-of-core/--in-memory",
        help="Train from transitions built per user shard on disk, or in memory (default: on "
        "disk for KuaiRand-27K only).",
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue OUT from its checkpoint."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the run in OUT."),
    env_option: list[str] | None = EnvOptionOpt,
) -> None:
    """Train ALGO offline on logged data (--data) or online in an environment (--env).

    The run folder records the whole task (task.json: data, reward, episodes, split, states,
    environment), which act, evaluate, explain and report reload."""
    from noetik.agents.core.runs import train_run

    agent_config = _config(algo, config, seed, encoder)
    task = _task(task_file, data, env, reward, sim, num_envs, cache, env_option or [])
    if out_of_core is not None:
        task = dataclasses.replace(
            task, data=dataclasses.replace(task.data, out_of_core=out_of_core)
        )
    result = train_run(agent_config, task, out, steps, resume=resume, overwrite=overwrite)
    shown = ", ".join(f"{k}={v:.4g}" for k, v in result.metrics.items())
    _OUT.print(f"trained {algo} for {result.steps:,} steps -> {out} ({task.describe()})")
    if shown:
        _OUT.print(f"last metrics: {shown}")


def _task(
    task_file: Path | None,
    data: Path | None,
    env: str | None,
    reward: str | None,
    sim: Path | None,
    num_envs: int,
    cache: Path | None,
    env_option: list[str],
) -> Any:
    """The task of ``noetik train``: ``--task``'s file (or the default task), then the flags."""
    from noetik.agents.core.task import EnvTask, TaskConfig, parse_reward, read_task

    if data is not None and env is not None:
        raise ConfigError("give either --data or --env, not both (neither: built-in data)")
    if task_file is not None and not task_file.is_file():
        raise ConfigError(f"--task: no such file {task_file}")
    task = read_task(task_file) if task_file is not None else TaskConfig()
    changes: dict[str, Any] = {}
    if data is not None or cache is not None:
        folder = str(data) if data is not None else task.data.folder
        changes["data"] = dataclasses.replace(
            task.data, folder=folder, cache_dir=str(cache) if cache else task.data.cache_dir
        )
    if reward is not None:
        changes["reward"] = parse_reward(reward)
    if sim is not None:
        changes["simulator"] = str(sim)
    options = parse_env_options(env_option)
    if env is not None or options:
        base = task.env or EnvTask(env or "")
        if not (env or base.id):
            raise ConfigError("--env-option needs --env (or a task file with an env)")
        changes["env"] = EnvTask(env or base.id, {**base.options, **options}, num_envs)
    return dataclasses.replace(task, **changes)


def act(
    run_dir: Path = typer.Argument(..., help="Run folder written by noetik train."),
    user: list[int] | None = typer.Option(None, "--user", help="User id (repeatable)."),
    k: int = typer.Option(10, "--k", help="Recommendations per user."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    n_users: int = typer.Option(3, "--sample", help="Users to sample when no --user is given."),
) -> None:
    """Top-k recommendations with scores for the given users (or a few sample users)."""
    import noetik.evaluation  # noqa: F401  (registers the simulator's oracle, greedy)
    from noetik.agents.core.runs import recommend_for_run

    if k < 1:
        raise ConfigError(f"--k must be >= 1, got {k}")
    recs = recommend_for_run(run_dir, user or None, k, n_users)
    if as_json:
        payload = [
            {
                "user_id": int(u),
                "items": [
                    {"rank": r + 1, "video_id": int(v), "action": int(a), "score": float(s)}
                    for r, (v, a, s) in enumerate(zip(vids, acts, scs, strict=True))
                ],
            }
            for u, vids, acts, scs in zip(
                recs.user_ids, recs.video_ids, recs.actions, recs.scores, strict=True
            )
        ]
        typer.echo(json.dumps(payload, indent=2))
        return
    table = Table("user", "rank", "video_id", "score", title=f"Top {k} ({run_dir})")
    for u, vids, scs in zip(recs.user_ids, recs.video_ids, recs.scores, strict=True):
        for r, (v, s) in enumerate(zip(vids, scs, strict=True)):
            table.add_row(str(u) if r == 0 else "", str(r + 1), str(v), f"{s:.4f}")
    _OUT.print(table)
