"""The sweep's plot: engagement against interpretability, one point per trial, the Pareto
front marked."""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from noetik.analysis.sweeps.pareto import pareto_front

__all__ = ["PANELS", "pareto_png"]

#: (metric, axis label, sign making it a cost to minimise) of each panel.
PANELS = (
    ("attention_entropy", "attention entropy (nats, lower = sparser)", 1.0),
    ("ig_top3_share", "IG mass on top-3 history positions (higher = sparser)", -1.0),
)


def pareto_png(rows: list[dict[str, Any]], labels: list[str], title: str) -> bytes:
    """The PNG of return (95 % interval) against each panel's metric that every row has,
    one point per row (annotated with ``labels``), the Pareto front in red."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [p for p in PANELS if all(r.get(p[0]) is not None for r in rows)]
    ret = np.array([r["return"]["mean"] for r in rows], dtype=np.float64)
    err = np.array(
        [
            [r["return"]["mean"] - r["return"]["low"], r["return"]["high"] - r["return"]["mean"]]
            for r in rows
        ]
    ).T
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(5.5 * max(1, len(panels)), 4.2))
    axes = np.atleast_1d(axes)
    if not panels:
        axes[0].text(0.5, 0.5, "no attention metrics (the agents read no history)", ha="center")
    for ax, (key, label, sign) in zip(axes, panels, strict=False):
        x = np.array([r[key] for r in rows], dtype=np.float64)
        front = pareto_front(ret, sign * x)
        ax.errorbar(x, ret, yerr=err, fmt="o", color="tab:blue", capsize=3, label="trials")
        order = np.argsort(x[front])
        line = (x[front][order], ret[front][order], "-")
        ax.plot(*line, color="tab:red", lw=1.5, label="Pareto front")
        ax.scatter(x[front], ret[front], s=120, facecolors="none", edgecolors="tab:red")
        for xi, yi, text in zip(x, ret, labels, strict=True):
            ax.annotate(text, (xi, yi), textcoords="offset points", xytext=(5, 5), fontsize=8)
        ax.set_xlabel(label)
        ax.set_ylabel("return per session (KuaiRand-v0, 95% CI)")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return buffer.getvalue()
