"""Figures of a :class:`BehaviourReport` (matplotlib, Agg; no pyplot state, no display).

>>> figs = behaviour_figures(report)          # {"attention": Figure, ...}
>>> png = figure_png(figs["emotion"])         # PNG bytes
>>> behaviour_section(report)                 # [(title, plain text, PNG bytes), ...]
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from noetik.analysis.attention import AttentionResult
from noetik.analysis.behaviour import BehaviourReport
from noetik.analysis.emotion import EMOTIONS, PRECEDERS, EmotionResult
from noetik.analysis.habits import HabitResult
from noetik.analysis.preferences import PreferenceResult
from noetik.analysis.stats import Finding
from noetik.analysis.text import findings_by_section, num

TITLES: dict[str, str] = {
    "attention": "Attention over time",
    "preferences": "Preferences and drift",
    "emotion": "Emotional response",
    "habits": "Habit formation",
}


def _new(rows: int, cols: int, size: tuple[float, float]) -> tuple[Figure, np.ndarray]:
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    return fig, axes


def _parts(estimates: Sequence[Finding]) -> tuple[np.ndarray, np.ndarray]:
    """(M,) values and (2, M) non-negative error-bar lengths (0 where undefined)."""
    v = np.array([e.value for e in estimates], dtype=np.float64)
    lo = np.array([e.low for e in estimates], dtype=np.float64)
    hi = np.array([e.high for e in estimates], dtype=np.float64)
    err = np.nan_to_num(np.clip(np.stack([v - lo, hi - v]), 0.0, None), posinf=0.0)
    return v, err


def _bars(ax: Axes, labels: Sequence[str], estimates: Sequence[Finding], color: str) -> None:
    v, err = _parts(estimates)
    ax.bar(range(len(v)), np.nan_to_num(v), yerr=err, color=color, capsize=2)
    ax.set_xticks(range(len(v)), labels, rotation=45, ha="right", fontsize=8)


def attention_figure(a: AttentionResult) -> Figure:
    """Share of interactions, click rate and watch ratio by hour; session lengths; breaks."""
    fig, (ax0, ax1, ax2, ax3) = _new(2, 2, (10.0, 7.0))
    v, err = _parts(a.hour_share)
    ax0.bar(range(24), v, yerr=err, color="tab:blue", capsize=1.5)
    ax0.axhline(1 / 24, color="grey", ls="--", lw=1, label="uniform 1/24")
    ax0.set(title="Share of interactions by hour", xlabel="hour of day", ylabel="share")
    ax0.legend(fontsize=8)
    for ests, name, color in (
        (a.hour_click, "click rate", "tab:orange"),
        (a.hour_watch, "watch ratio", "tab:green"),
    ):
        v = np.array([e.value for e in ests])
        ax1.plot(range(24), v, color=color, label=name)
        lows, highs = [e.low for e in ests], [e.high for e in ests]
        ax1.fill_between(range(24), lows, highs, color=color, alpha=0.25)
    ax1.set(title="Feedback by hour (95 % CI)", xlabel="hour of day", ylim=(0, None))
    ax1.legend(fontsize=8)
    labels, shares = zip(*a.length_hist, strict=True)
    ax2.bar(labels, shares, color="tab:purple")
    ax2.set(
        title=f"Session length ({a.n_sessions:,} sessions)",
        xlabel="interactions",
        ylabel="share of sessions",
    )
    labels, shares = zip(*a.return_hist, strict=True)
    ax3.bar(range(len(labels)), shares, color="tab:red")
    ax3.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    ax3.set(
        title=f"Break between sessions (median {a.return_median_h.value:.3g} h)",
        ylabel="share of breaks",
    )
    return fig


def preferences_figure(p: PreferenceResult) -> Figure:
    """Top-tag shares per day; entropy and drift against their shuffled nulls."""
    fig, (ax0, ax1, ax2) = _new(1, 3, (13.0, 4.0))
    shares = np.array(p.share_by_day, dtype=np.float64).T
    labels = [f"tag {t}" for t in p.tags] + ["other"]
    ax0.stackplot(range(len(p.days)), np.nan_to_num(shares), labels=labels)
    step = max(1, len(p.days) // 7)
    ticks = range(0, len(p.days), step)
    ax0.set_xticks(
        ticks, [f"{p.days[i] % 10000 // 100:02d}-{p.days[i] % 100:02d}" for i in ticks], fontsize=8
    )
    ax0.set(title="Tag shares by day", ylabel="share of tagged interactions", ylim=(0, 1))
    ax0.legend(fontsize=7, loc="upper left", ncols=3)
    _bars(ax1, ["observed", "tags shuffled"], [p.entropy, p.entropy_shuffled], "tab:blue")
    ax1.set(title=f"User tag entropy, bits ({p.n_users:,} users)")
    _bars(ax2, ["observed", "time shuffled"], [p.drift_js, p.drift_js_shuffled], "tab:green")
    ax2.set(title="Early vs late JS divergence, bits")
    return fig


def _lift_map(ax: Axes, e: EmotionResult) -> None:
    grid = np.full((len(EMOTIONS), len(PRECEDERS)), np.nan)
    robust = np.zeros_like(grid, dtype=bool)
    for pc in e.precedence:
        i, j = EMOTIONS.index(pc.signal), PRECEDERS.index(pc.previous)
        grid[i, j], robust[i, j] = pc.lift.value, pc.lift.robust
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log2(grid)
    shown = np.where(np.isfinite(logs), logs, np.nan)
    bound = max(float(np.nanmax(np.abs(shown))) if np.isfinite(shown).any() else 1.0, 1.0)
    ax.imshow(shown, cmap="RdBu_r", vmin=-bound, vmax=bound, aspect="auto")
    dark = np.abs(np.nan_to_num(shown)) > 0.6 * bound
    for (i, j), value in np.ndenumerate(grid):
        mark = "*" if robust[i, j] else ""
        color = "white" if dark[i, j] else "black"
        ax.text(j, i, f"{num(value)}{mark}", ha="center", va="center", fontsize=7, color=color)
    ax.set_xticks(range(len(PRECEDERS)), [s.removeprefix("is_") for s in PRECEDERS], fontsize=8)
    ax.set_yticks(range(len(EMOTIONS)), [s.removeprefix("is_") for s in EMOTIONS], fontsize=8)
    ax.set(title="Lift after the previous video's signal (* robust)", xlabel="previous video")


def emotion_figure(e: EmotionResult) -> Figure:
    """Overall feedback rates, like rate by duration and by tab, precedence lifts."""
    fig, (ax0, ax1, ax2, ax3) = _new(2, 2, (11.0, 8.0))
    _bars(
        ax0,
        [s.removeprefix("is_") for s in EMOTIONS],
        [e.overall[s] for s in EMOTIONS],
        "tab:orange",
    )
    ax0.set(title="Feedback rates (95 % CI)", ylabel="rate per interaction")
    if all(e.overall[s].value > 0 for s in EMOTIONS):
        ax0.set_yscale("log")
    _bars(ax1, e.by_duration.groups, e.by_duration.rates["is_like"], "tab:red")
    ax1.axhline(e.overall["is_like"].value, color="grey", ls="--", lw=1)
    ax1.set(title="Like rate by video duration", ylabel="like rate")
    _bars(ax2, e.by_tab.groups, e.by_tab.rates["is_like"], "tab:pink")
    ax2.axhline(e.overall["is_like"].value, color="grey", ls="--", lw=1)
    ax2.set(title="Like rate by app tab", ylabel="like rate")
    _lift_map(ax3, e)
    return fig


def habits_figure(h: HabitResult) -> Figure:
    """Outcome per reward bin (95 % CI), one panel per (reward, outcome) curve."""
    rewards = sorted({c.reward for c in h.curves}, reverse=True)
    outcomes = list(dict.fromkeys(c.outcome for c in h.curves))
    cols = max(len(outcomes), 1)
    fig, axes = _new(max(len(rewards), 1), cols, (4.0 * cols, 6.5))
    if not h.curves:
        axes[0].text(0.5, 0.5, "no sessions with a next session", ha="center", va="center")
    for c in h.curves:
        ax = axes[rewards.index(c.reward) * len(outcomes) + outcomes.index(c.outcome)]
        v, err = _parts(c.values)
        ax.errorbar(c.x, v, yerr=err, marker="o", capsize=3)
        mark = " *" if c.within_slope.robust else ""
        ax.set_title(
            f"{c.outcome}: slope {c.slope.value:.3g}, within {c.within_slope.value:.3g}{mark}",
            fontsize=9,
        )
        ax.set(xlabel=f"session {c.reward.replace('_', ' ')}", ylabel=c.outcome)
    return fig


def behaviour_figures(report: BehaviourReport) -> dict[str, Figure]:
    """One Figure per section (``attention``, ``preferences`` when tags exist, ``emotion``,
    ``habits``)."""
    figs = {"attention": attention_figure(report.attention)}
    if report.preferences is not None:
        figs["preferences"] = preferences_figure(report.preferences)
    figs["emotion"] = emotion_figure(report.emotion)
    figs["habits"] = habits_figure(report.habits)
    for fig in figs.values():
        fig.suptitle(report.source, fontsize=10)
    return figs


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    """``fig`` as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def save_figures(report: BehaviourReport, out_dir: Path | str, prefix: str = "") -> list[Path]:
    """Write ``<prefix><section>.png`` for every figure into ``out_dir``; returns the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in behaviour_figures(report).items():
        path = out / f"{prefix}{name}.png"
        path.write_bytes(figure_png(fig))
        paths.append(path)
    return paths


def behaviour_section(report: BehaviourReport, dpi: int = 100) -> list[tuple[str, str, bytes]]:
    """For the HTML report: per section, (title, plain-text findings — not escaped —, PNG
    bytes at ``dpi``)."""
    texts = findings_by_section(report)
    figs = behaviour_figures(report)
    return [
        (TITLES[name], " ".join(texts[name]), figure_png(figs[name], dpi))
        for name in TITLES
        if name in figs
    ]
