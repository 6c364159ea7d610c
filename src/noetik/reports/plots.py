"""Figures of the report (matplotlib Figure + Agg canvas: no pyplot state, no display).

Every function returns PNG bytes, ready for :func:`noetik.reports.html.img`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "attention_heatmap",
    "attribution_bars",
    "faithfulness_plot",
    "figure_png",
    "line_panels",
]

#: Resolution of every embedded figure (dots per inch).
DPI = 90


def figure_png(fig: Figure, dpi: int = DPI) -> bytes:
    """``fig`` rendered as PNG bytes."""
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def line_panels(
    x: np.ndarray, series: Mapping[str, np.ndarray], *, xlabel: str, cols: int = 3
) -> bytes:
    """Small multiples: one panel per entry of ``series`` (name -> (N,) float64 values at
    ``x`` (N,) float64), NaNs left as gaps."""
    n = max(len(series), 1)
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    fig = _figure(3.6 * cols, 2.3 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, (name, y) in zip(axes, series.items(), strict=False):
        ax.plot(x, y, lw=1.2, color="tab:blue", marker="." if len(x) < 30 else None)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes[len(series) :]:
        ax.set_visible(False)
    return figure_png(fig)


def attribution_bars(labels: Sequence[str], values: np.ndarray, title: str) -> bytes:
    """Horizontal bars of signed attributions ``values`` (M,) float64, largest |value| on
    top (positive: pushed towards the recommendation, blue; negative: against it, red)."""
    v = np.asarray(values, dtype=np.float64)
    order = np.argsort(-np.abs(v), kind="stable")[::-1]
    fig = _figure(6.4, 0.32 * len(v) + 1.1)
    ax = fig.subplots()
    colors = ["tab:blue" if x >= 0 else "tab:red" for x in v[order]]
    ax.barh(np.arange(len(v)), v[order], color=colors)
    ax.set_yticks(np.arange(len(v)), [labels[i] for i in order], fontsize=8)
    ax.axvline(0.0, color="black", lw=0.8)
    ax.set_xlabel("attribution (integrated gradients)", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="x", labelsize=7)
    return figure_png(fig)


def attention_heatmap(maps: np.ndarray, rollout: np.ndarray | None, title: str) -> bytes:
    """Heatmap of the query's attention ``maps`` (L, H, K) float over the K history positions
    (oldest left), one row per layer and head, plus the rollout (K,) float row when given."""
    n_layers, n_heads, k = maps.shape
    rows = maps.reshape(n_layers * n_heads, k).astype(np.float64)
    names = [f"layer {layer + 1} head {h + 1}" for layer in range(n_layers) for h in range(n_heads)]
    if rollout is not None:
        rows = np.vstack([rows, np.asarray(rollout, dtype=np.float64)[None]])
        names.append("rollout")
    fig = _figure(6.4, 0.3 * len(names) + 1.4)
    ax = fig.subplots()
    image = ax.imshow(rows, aspect="auto", cmap="viridis", vmin=0.0)
    ax.set_yticks(np.arange(len(names)), names, fontsize=7)
    ax.set_xticks(np.arange(k), [f"-{k - p}" for p in range(k)], fontsize=7)
    ax.set_xlabel("history position (turns before the decision)", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.8)
    return figure_png(fig)


def faithfulness_plot(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], unit: str) -> bytes:
    """Deletion and insertion curves side by side: ``curves`` maps a method to its mean
    (deletion, insertion) target over decisions, each (U + 1,) float64 (j = 0..U units)."""
    fig = _figure(10.0, 3.4)
    axes = fig.subplots(1, 2)
    for ax, which, label in ((axes[0], 0, "deletion"), (axes[1], 1, "insertion")):
        for method, pair in curves.items():
            y = pair[which]
            style = "--" if method == "random" else "-"
            ax.plot(np.arange(len(y)), y, style, marker=".", lw=1.4, label=method)
        ax.set_xlabel(
            f"{unit} units {'removed' if which == 0 else 'kept'} (most attributed first)",
            fontsize=8,
        )
        ax.set_ylabel("target (mean over decisions)", fontsize=8)
        ax.set_title(f"{label} curve", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return figure_png(fig)
