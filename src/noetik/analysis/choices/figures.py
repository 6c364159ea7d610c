"""Figures of a behavioural analysis of choices, drawn from its JSON form (matplotlib Figure
with an Agg canvas: no pyplot state, no display).

>>> from noetik.analysis.choices import behaviour_figure
>>> fig = behaviour_figure(behaviour.as_dict())
>>> fig.savefig("behaviour.png")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from noetik.analysis.choices.sensitivity import CASES
from noetik.analysis.choices.two_step import TWO_STEP_CELLS

__all__ = ["behaviour_figure"]


def _parts(entries: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """(M,) means and (2, M) non-negative error-bar lengths (0 where undefined)."""
    v = np.array([e["mean"] for e in entries], dtype=np.float64)
    lo = np.array([e["low"] for e in entries], dtype=np.float64)
    hi = np.array([e["high"] for e in entries], dtype=np.float64)
    err = np.nan_to_num(np.clip(np.stack([v - lo, hi - v]), 0.0, None))
    return v, err


def _bars(ax: Axes, labels: Sequence[str], entries: Sequence[Mapping[str, Any]]) -> None:
    v, err = _parts(entries)
    ax.bar(range(len(v)), np.nan_to_num(v), yerr=err, color="tab:blue", capsize=3)
    ax.set_xticks(range(len(v)), labels, rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0.0, 1.0)
    ax.grid(axis="y", alpha=0.3)


def _band(ax: Axes, x: np.ndarray, entries: Sequence[Mapping[str, Any]], label: str) -> None:
    v = np.array([e["mean"] for e in entries], dtype=np.float64)
    lo = np.array([e["low"] for e in entries], dtype=np.float64)
    hi = np.array([e["high"] for e in entries], dtype=np.float64)
    (line,) = ax.plot(x, v, marker="o", ms=3, label=label)
    ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2)


def behaviour_figure(report: Mapping[str, Any]) -> Figure:
    """Win-stay/lose-shift, learning curves, perseveration by lag and stay after gains and
    losses (and the two-step cells when present), 95 % intervals over subjects."""
    two = report.get("two_step")
    panels = 5 if two else 4
    fig = Figure(figsize=(4.0 * min(panels, 3), 3.2 * (1 + (panels > 3))), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(1 + (panels > 3), 3, squeeze=False)).ravel()
    ws = report["win_stay"]
    ax = axes[0]
    _bars(ax, ["win-stay", "lose-shift", "stay"], [ws["win_stay"], ws["lose_shift"], ws["stay"]])
    ax.set_title("Win-stay / lose-shift", fontsize=9)
    curve = report["learning_curve"]
    edges = np.asarray(curve["edges"], dtype=np.float64)
    mid = (edges[:-1] + edges[1:]) / 2.0 + 0.5
    ax = axes[1]
    _band(ax, mid, curve["best"], "P(best option)")
    _band(ax, mid, curve["wins"], "P(win)")
    ax.axhline(curve["chance"], color="grey", ls="--", lw=1, label="chance (best)")
    ax.set_xlabel("trial", fontsize=8)
    ax.set_ylim(0.0, 1.0)
    ax.legend(fontsize=7)
    ax.set_title("Learning curves", fontsize=9)
    ax.grid(alpha=0.3)
    per = report["perseveration"]
    ax = axes[2]
    lags = np.arange(1, len(per["lag_profile"]) + 1)
    _band(ax, lags, per["lag_profile"], "P(c_t = c_t-k) - expected")
    ax.axhline(0.0, color="grey", lw=1)
    ax.set_xlabel("lag k", fontsize=8)
    ax.set_title("Repeats beyond choice frequencies", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    stay = report["sensitivity"]["stay"]
    ax = axes[3]
    shown = [c for c in CASES if np.isfinite(float(stay[c]["mean"]))]
    _bars(ax, [c.replace("_", " ") for c in shown], [stay[c] for c in shown])
    ax.set_title("P(stay) after the previous trial brought", fontsize=9)
    if two:
        ax = axes[4]
        cells = list(TWO_STEP_CELLS)
        _bars(ax, [c.replace("_", "\n") for c in cells], [two["stay"][c] for c in cells])
        ax.set_title("Two-step: first-stage P(stay)", fontsize=9)
    for ax in axes[panels:]:
        ax.set_visible(False)
    fig.suptitle(f"{report['task']}: {report['n_subjects']} subjects", fontsize=10)
    return fig
