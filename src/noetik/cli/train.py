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
from noetik.errors import ConfigError, NoetikError

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
    if config_file is not None:
        try:
            fields = json.loads(config_file.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"--config {config_file}: cannot read JSON ({exc})") from None
    config = cls.from_dict(fields)
    if seed is not None:
        config = config.replace(seed=seed)
    if encoder is not None:
        if encoder not in ("mlp", "transformer"):
            raise ConfigError(f"--encoder must be mlp or transformer, got '{encoder}'")
        kind: Any = encoder
        config = config.replace(encoder=dataclasses.replace(config.encoder, kind=kind))
    return config


def train(
    algo: str = typer.Argument(
        ..., help="Algorithm: iql, bc, dqn, cql, ppo, a2c (or a heuristic)."
    ),
    out: Path = typer.Option(..., "--out", help="Run folder to write."),
    data: Path | None = typer.Option(None, "--data", help="KuaiRand folder (offline training)."),
    env: str | None = typer.Option(None, "--env", help="Environment id (online training)."),
    steps: int = typer.Option(1_000, "--steps", help="Gradient updates (offline) or iterations."),
    seed: int | None = typer.Option(None, "--seed", help="Seed (overrides the config's)."),
    config: Path | None = typer.Option(None, "--config", help="JSON file of config fields."),
    encoder: str | None = typer.Option(None, "--encoder", help="mlp or transformer."),
    num_envs: int = typer.Option(256, "--num-envs", help="Users per batched env (online)."),
    cache: Path | None = typer.Option(None, "--cache", help="Cache folder for typed copies."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoint."),
    env_option: list[str] | None = EnvOptionOpt,
) -> None:
    """Train ALGO offline on logged data (--data) or online in an environment (--env)."""
    from noetik.agents.core.runs import RunSource, train_run

    if data is not None and env is not None:
        raise ConfigError("give either --data or --env, not both (neither: built-in data)")
    agent_config = _config(algo, config, seed, encoder)
    options = tuple(sorted(parse_env_options(env_option or []).items()))
    source = RunSource(
        data_dir=str(data) if data else None,
        env_id=env,
        num_envs=num_envs,
        env_kwargs=options,
        cache_dir=str(cache) if cache else None,
    )
    result = train_run(agent_config, source, out, steps, resume=resume)
    shown = ", ".join(f"{k}={v:.4g}" for k, v in result.metrics.items())
    _OUT.print(f"trained {algo} for {result.steps:,} steps -> {out}")
    if shown:
        _OUT.print(f"last metrics: {shown}")


def act(
    run_dir: Path = typer.Argument(..., help="Run folder written by noetik train."),
    user: list[int] | None = typer.Option(None, "--user", help="User id (repeatable)."),
    k: int = typer.Option(10, "--k", help="Recommendations per user."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    n_users: int = typer.Option(3, "--sample", help="Users to sample when no --user is given."),
) -> None:
    """Top-k recommendations with scores for the given users (or a few sample users)."""
    import noetik.evaluation  # noqa: F401  (registers the simulator's oracle, greedy)
    from noetik.agents.core.runs import RUN_FILE, recommend_for_run

    if k < 1:
        raise ConfigError(f"--k must be >= 1, got {k}")
    if not (run_dir / RUN_FILE).is_file():
        raise NoetikError(f"{run_dir}: not a run folder (no {RUN_FILE}; run noetik train first)")
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
