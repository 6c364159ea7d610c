"""Report sections beyond the run: the engagement-versus-interpretability trade-off (from the
folder of ``noetik sweep`` or ``scripts/tradeoff_sweep.py``) and the behavioural analysis of
the run's dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from noetik.analysis.sweeps.pareto import pareto_front
from noetik.reports import html as h
from noetik.reports.context import RunData, Unavailable, read_json

__all__ = ["behaviour_section", "pareto_front", "tradeoff_section"]

#: How to produce the trade-off folder, shown when none is given.
TRADEOFF_HOWTO = (
    "run noetik sweep CONFIG --out results/tradeoff, or OMP_NUM_THREADS=1 python "
    "scripts/tradeoff_sweep.py --out results/tradeoff (IQL trained once per weight of an "
    "interpretability term, then measured), and pass --tradeoff results/tradeoff to noetik report"
)
#: Users analysed at most by the behavioural section (a seeded subsample beyond).
BEHAVIOUR_MAX_USERS = 2_000
#: ... and at most this many of their interactions (KuaiRand-1K: about 170 of its 1,000 users).
BEHAVIOUR_MAX_ROWS = 2_000_000
#: Bootstrap replicates of the behavioural section's intervals.
BEHAVIOUR_BOOT = 200
#: Rows shown at most from a CSV of the trade-off folder.
MAX_CSV_ROWS = 50
_SKIPPED = ("trial", "run", "term", "steps", "train_s", "eval_s")


def _cell(value: Any) -> Any:
    if isinstance(value, dict) and "mean" in value:
        return h.interval(value)
    return value


def _results_table(path: Path) -> str:
    """A ``results.json`` or ``results_TERM.json`` (list of row dicts) as a table, with the
    Pareto front of return against attention entropy when both are there."""
    rows = read_json(path)
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        return h.unavailable(f"{path} holds no result rows")
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys and k not in _SKIPPED]
    body = [[_cell(r.get(k)) for k in keys] for r in rows]
    header = list(keys)
    try:
        ret = np.array([float(r["return"]["mean"]) for r in rows])
        cost = np.array([float(r["attention_entropy"]) for r in rows])
    except (KeyError, TypeError, ValueError):
        pass
    else:
        header.append("Pareto (return vs entropy)")
        for row, on in zip(body, pareto_front(ret, cost), strict=True):
            row.append("yes" if on else "")
    term = str(rows[0].get("term", path.stem.removeprefix("results_")))
    return f"<h3>{h.esc(f'Weight of {term}')}</h3>\n" + h.table(header, body, caption=path.name)


def _csv_table(path: Path) -> str:
    try:
        frame = pl.read_csv(path, infer_schema_length=None)
    except (OSError, pl.exceptions.PolarsError) as exc:
        return h.unavailable(f"cannot read {path} ({exc})")
    rows = [list(r) for r in frame.head(MAX_CSV_ROWS).iter_rows()]
    return h.table(frame.columns, rows, caption=f"{path.name} ({frame.height} rows)")


def _plot(path: Path) -> str:
    try:
        return h.img(path.read_bytes(), f"trade-off plot {path.name}")
    except (OSError, ValueError) as exc:
        return h.unavailable(f"cannot embed {path} ({exc})")


def tradeoff_section(data: RunData) -> str:
    """Tables (``results.json``, ``results_*.json``, ``*.csv``) and plots (``*.png``) of the
    trade-off folder (a sweep's ``results.csv`` is its ``results.json``: shown once)."""
    folder = data.inputs.tradeoff_dir
    if folder is None:
        raise Unavailable(f"no trade-off folder given; {TRADEOFF_HOWTO}")
    if not folder.is_dir():
        raise Unavailable(f"no folder {folder}; {TRADEOFF_HOWTO}")
    results = sorted([*folder.glob("results.json"), *folder.glob("results_*.json")])
    csvs = [p for p in sorted(folder.glob("*.csv")) if p.with_suffix(".json") not in results]
    plots = sorted(folder.glob("*.png"))
    if not (results or csvs or plots):
        raise Unavailable(f"no results*.json, *.csv or *.png in {folder}; {TRADEOFF_HOWTO}")
    parts = [
        h.para(
            f"From {folder}: engagement (return per simulated session, 95 % interval) "
            "against interpretability measures, one agent per weight."
        )
    ]
    parts += [_results_table(p) for p in results]
    parts += [_csv_table(p) for p in csvs]
    parts += [_plot(p) for p in plots]
    return "\n".join(parts)


def behaviour_section(data: RunData) -> str:
    """Figures and findings of :func:`noetik.analysis.analyse_behaviour` on the run's data."""
    try:
        from noetik.analysis import BehaviourConfig, analyse_behaviour
        from noetik.analysis import behaviour_section as figures_and_text
    except ImportError as exc:
        raise Unavailable(f"the analysis module cannot be imported ({exc})") from None
    config = BehaviourConfig(
        seed=data.inputs.seed,
        n_boot=BEHAVIOUR_BOOT,
        max_users=BEHAVIOUR_MAX_USERS,
        max_rows=BEHAVIOUR_MAX_ROWS,
    )
    report = analyse_behaviour(data.dataset(), config)
    parts = [
        h.para(
            f"{report.source}: {report.n_rows:,} interactions of {report.n_users:,} "
            f"users from {report.first_date} to {report.last_date} (at most "
            f"{BEHAVIOUR_MAX_USERS:,} users, seed {config.seed}); 95 % intervals from "
            f"{config.n_boot} bootstrap resamples of users."
        )
    ]
    for title, text, png in figures_and_text(report):
        parts += [f"<h3>{h.esc(title)}</h3>", h.para(text), h.img(png, title)]
    return "\n".join(parts)
