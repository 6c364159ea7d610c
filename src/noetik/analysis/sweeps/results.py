"""The sweep's results: one row per trial, written as ``results.json``, ``results.csv``,
``table.md`` and ``pareto.png``.

Every file is rendered before any is written, and each is written atomically, so a failure
leaves the previous results (or none), never a half-written file.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from noetik.analysis.sweeps.pareto import pareto_front
from noetik.analysis.sweeps.plot import pareto_png
from noetik.analysis.sweeps.trial import TRIALS, TrialSpec
from noetik.utils.io import atomic_path, write_text

__all__ = ["RESULT_FILES", "markdown_table", "result_rows", "write_results"]

#: The files :func:`write_results` writes into the sweep folder.
RESULT_FILES = ("results.json", "results.csv", "table.md", "pareto.png")


def result_rows(trials: list[TrialSpec], outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per trial (in ``trials`` order): what it was (trial, term, weight, grid
    values, seed, steps, run folder relative to the sweep folder), every metric, the seconds
    of training and measuring."""
    rows = []
    for spec, outcome in zip(trials, outcomes, strict=True):
        rows.append(
            {
                "trial": spec.name,
                "term": spec.term,
                "weight": spec.weight,
                **spec.params,
                "seed": spec.seed,
                "steps": spec.steps,
                "run": f"{TRIALS}/{spec.name}",
                **outcome["metrics"],
                "train_s": outcome["train_s"],
                "eval_s": outcome["eval_s"],
            }
        )
    return rows


def entropy_front(rows: list[dict[str, Any]]) -> np.ndarray | None:
    """The Pareto front of return against attention entropy (None when a row lacks it)."""
    if not rows or any(r.get("attention_entropy") is None for r in rows):
        return None
    ret = np.array([r["return"]["mean"] for r in rows])
    return pareto_front(ret, np.array([r["attention_entropy"] for r in rows]))


def varying(rows: list[dict[str, Any]], params: list[str]) -> list[str]:
    """The grid keys ``params`` and ``"seed"`` whose value differs between the rows."""
    return [k for k in (*params, "seed") if len({json.dumps(r[k]) for r in rows}) > 1]


def markdown_table(rows: list[dict[str, Any]], params: list[str]) -> str:
    """The Markdown table of the rows: the weight and the settings that vary (grid keys
    ``params``, seed), return with its interval, the interpretability measures and whether
    the trial is on the Pareto front of return against attention entropy."""

    def ci(v: dict[str, float]) -> str:
        return f"{v['mean']:.3f} [{v['low']:.3f}, {v['high']:.3f}]"

    def num(v: float | None) -> str:
        return "–" if v is None else f"{v:.3f}"

    term = rows[0]["term"] if rows else "term"
    front = entropy_front(rows)
    shown = varying(rows, params)
    lines = [
        f"| {term} weight | "
        + "".join(f"{p} | " for p in shown)
        + "return | attention entropy | IG top-3 share | attention-IG Spearman | "
        "IG deletion AUC (random) | IG insertion AUC (random) | Pareto |",
        "|---" * (8 + len(shown)) + "|",
    ]
    for i, r in enumerate(rows):
        dele = f"{num(r['deletion_auc'])} ({num(r['random_deletion_auc'])})"
        ins = f"{num(r['insertion_auc'])} ({num(r['random_insertion_auc'])})"
        on = front is not None and bool(front[i])
        lines.append(
            f"| {r['weight']:g} | "
            + "".join(f"{r[p]} | " for p in shown)
            + f"{ci(r['return'])} | {num(r['attention_entropy'])} | "
            f"{num(r['ig_top3_share'])} | {num(r['agreement_spearman'])} | {dele} | "
            f"{ins} | {'yes' if on else ''} |"
        )
    return "\n".join(lines)


def _csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV, an interval ``{"mean", "low", "high"}`` as three columns."""
    flat = []
    for r in rows:
        row: dict[str, Any] = {}
        for key, value in r.items():
            if isinstance(value, dict):
                row.update({f"{key}_{part}": v for part, v in value.items()})
            else:
                row[key] = value
        flat.append(row)
    columns: list[str] = []
    for row in flat:
        columns += [k for k in row if k not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    return buffer.getvalue()


def _labels(rows: list[dict[str, Any]], params: list[str]) -> list[str]:
    """Plot labels: the weight, and the grid values and seed where the sweep varies them."""
    shown = varying(rows, params)
    return [
        " ".join([f"λ={r['weight']:g}", *(f"{k.rsplit('.', 1)[-1]}={r[k]}" for k in shown)])
        for r in rows
    ]


def write_results(
    sweep: Path, trials: list[TrialSpec], outcomes: list[dict[str, Any]], title: str
) -> list[Path]:
    """Write :data:`RESULT_FILES` of ``outcomes`` (one per trial) into ``sweep``; returns the
    paths. ``title`` heads the plot."""
    rows = result_rows(trials, outcomes)
    params = list(trials[0].params) if trials else []
    texts = {
        "results.json": json.dumps(rows, indent=2) + "\n",
        "results.csv": _csv(rows),
        "table.md": markdown_table(rows, params) + "\n",
    }
    png = pareto_png(rows, _labels(rows, params), title)
    paths = []
    for name, text in texts.items():
        write_text(sweep / name, text)
        paths.append(sweep / name)
    with atomic_path(sweep / "pareto.png") as tmp:
        tmp.write_bytes(png)
    return [*paths, sweep / "pareto.png"]
