"""The leaderboard: one row per run, each metric as ``{"mean", "low", "high"}``.

Written as JSON (one entry per run, keyed by lens: ``online`` now; ``ope`` and ``random_log``
join it with the evaluation issue) and as CSV (one row per run and metric).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from noetik.agents.base import Agent
from noetik.agents.runs import read_run
from noetik.evaluation.online import evaluate_online
from noetik.utils.io import write_json, write_text

Lens = dict[str, dict[str, float]]


def evaluate_run(
    run_dir: Path, env_id: str, n_users: int, env_kwargs: dict[str, Any], seed: int = 0
) -> dict[str, Any]:
    """The leaderboard entry of one run folder."""
    meta, _ = read_run(run_dir)
    agent = Agent.load(run_dir)
    agent.eval()
    online = evaluate_online(agent, env_id, n_users, env_kwargs, seed)
    return {"run": str(run_dir), "algo": meta["algo"], "online": online}


def write_leaderboard(entries: list[dict[str, Any]], out_dir: Path) -> tuple[Path, Path]:
    """``leaderboard.json`` and ``leaderboard.csv`` in ``out_dir`` (atomic writes)."""
    json_path, csv_path = out_dir / "leaderboard.json", out_dir / "leaderboard.csv"
    write_json(json_path, entries)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["run", "algo", "lens", "metric", "mean", "low", "high"])
    for entry in entries:
        for lens in ("online", "ope", "random_log"):
            for metric, value in (entry.get(lens) or {}).items():
                writer.writerow([entry["run"], entry["algo"], lens, metric,
                                 value["mean"], value["low"], value["high"]])  # fmt: skip
    write_text(csv_path, buffer.getvalue())
    return json_path, csv_path
