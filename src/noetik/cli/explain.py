"""``noetik explain``: why a trained agent recommends what it does, in plain words.

For each user (``--user``, repeatable; else a few sampled users) the agent's top recommendation
is explained from integrated-gradients attributions and the data: the past videos, user traits
and context that drove it, the runner-ups and the margin to them, and how confident the model
is (see :mod:`noetik.explain.explanation`). ``--json`` prints the explanations as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from noetik.errors import ConfigError

if TYPE_CHECKING:
    from noetik.explain.explanation import Explanation

_OUT = Console()
if not _OUT.is_terminal:
    _OUT = Console(width=140)


def _table(e: Explanation) -> Table:
    """Candidates and drivers of one explanation as a compact table."""
    table = Table("what", "video / input", "value", "share / margin", box=None)
    for c in (e.recommended, *e.runner_ups):
        what = "recommended" if c.rank == 1 else f"runner-up {c.rank - 1}"
        margin = "" if c.rank == 1 else f"{c.margin:.3f}"
        table.add_row(what, str(c.item.video_id), f"p={c.probability:.4f}", margin)
    for d in e.history:
        table.add_row(
            f"history -{d.past.turns_ago}",
            str(d.past.item.video_id),
            f"attr={d.attribution:+.4f}",
            f"{100 * d.share:+.1f} %",
        )
    for s in e.state:
        table.add_row(
            s.group, Text(s.value_text), f"attr={s.attribution:+.4f}", f"{100 * s.share:+.1f} %"
        )
    return table


def explain(
    run_dir: Path = typer.Argument(..., help="Run folder written by noetik train (--data)."),
    user: list[int] | None = typer.Option(None, "--user", help="User id (repeatable)."),
    k: int = typer.Option(3, "--k", help="Runner-ups reported per recommendation."),
    method: str = typer.Option(
        "integrated_gradients",
        "--method",
        help="Attribution: integrated_gradients, saliency or input_x_gradient.",
    ),
    steps: int | None = typer.Option(
        None, "--steps", help="Integrated-gradients steps (default: 32; 8 at catalogue scale)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
    n_users: int = typer.Option(3, "--sample", help="Users to sample when no --user is given."),
) -> None:
    """Explain the agent's top recommendation for the given users (or a few sample users)."""
    from noetik.agents.core.runs import read_run
    from noetik.explain.attributions import METHODS
    from noetik.explain.explain_context import run_contexts
    from noetik.explain.explanation import explain_recommendation

    if k < 0:
        raise ConfigError(f"--k must be >= 0, got {k}")
    if steps is not None and steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {steps}")
    if method not in METHODS or method == "layer_integrated_gradients":
        raise ConfigError(
            f"--method must be integrated_gradients, saliency or input_x_gradient, got '{method}'"
        )
    if n_users < 1:
        raise ConfigError(f"--sample must be >= 1, got {n_users}")
    agent, contexts = run_contexts(run_dir, user or None, n_users)
    reward = read_run(run_dir)[1].reward.describe()
    m: Any = method
    explanations = [
        explain_recommendation(agent, c, k_runner_ups=k, method=m, n_steps=steps) for c in contexts
    ]
    if as_json:
        payload = [{**e.to_dict(), "task_reward": reward} for e in explanations]
        typer.echo(json.dumps(payload, indent=2))
        return
    _OUT.print(f"The agent was trained to maximise {reward} (the run's task).", markup=False)
    for e in explanations:
        _OUT.rule(f"user {e.user_id}: video {e.recommended.item.video_id}")
        _OUT.print(Text(e.text))
        _OUT.print(_table(e))
