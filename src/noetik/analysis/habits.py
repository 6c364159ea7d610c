"""Habit formation: do rewarding sessions bring people back sooner, for longer?

For every session (see :func:`noetik.analysis.frame.sessions`) the **reward** is its click
rate or its mean watch ratio and the **outcomes** are:

* ``return_<h>h``: the same user starts another session within ``h`` hours of this session's
  end. Sessions ending less than ``h`` hours before the end of the log are censored (whether
  the user came back cannot be seen) and left out.
* ``next_length``: the number of interactions of the user's next session (sessions without a
  next one are left out).

Each (reward, outcome) curve bins the sessions at quantiles of the reward
(:func:`reward_bins`) and reports the outcome's mean per bin, the least-squares slope of the
outcome on the reward over all sessions, the same slope **within users** (each user's mean
reward and outcome removed, so differences between heavy and light users cannot produce it), and
the Spearman correlation of the bin means with the bin order: the monotonic-trend test. Slopes and
Spearman are robust when their intervals exclude 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from noetik.analysis.frame import sessions, user_group_sums, user_sums
from noetik.analysis.stats import Finding, UserBootstrap, ratio, spearman_rows

REWARDS: tuple[str, ...] = ("click_rate", "watch_ratio")


@dataclass(frozen=True)
class HabitCurve:
    """One outcome as a function of one session reward."""

    reward: str
    """``click_rate`` or ``watch_ratio`` of the session."""
    outcome: str
    """``return_24h`` (and the other horizons) or ``next_length``."""
    bins: tuple[tuple[float, float], ...]
    """(lowest, highest) reward of the sessions in each bin, bins in increasing order."""
    x: tuple[float, ...]
    """Mean reward in each bin."""
    values: tuple[Finding, ...]
    """Mean outcome in each bin."""
    slope: Finding
    """Least-squares slope of the outcome on the reward, all sessions (null 0)."""
    within_slope: Finding
    """The slope after removing each user's mean reward and outcome (null 0)."""
    spearman: Finding
    """Spearman correlation of the bin means with the bin order (null 0)."""
    n_sessions: int
    """Sessions on the curve."""


@dataclass(frozen=True)
class HabitResult:
    """Return probabilities, next-session lengths and how they follow recent rewards."""

    returns: dict[str, Finding]
    """``return_<h>h`` -> share of (uncensored) sessions followed by another within h hours."""
    next_length: Finding
    """Mean length of the next session (interactions)."""
    curves: tuple[HabitCurve, ...]
    """Every (reward, outcome) curve, rewards outer."""


def _outcomes(log: pl.DataFrame, horizons_h: tuple[float, ...]) -> pl.DataFrame:
    """Sessions with one Float64 column per outcome (null where censored / undefined)."""
    end = log["time_ms"].max()
    per = sessions(log)
    gap = pl.col("next_start_ms") - pl.col("end_ms")
    cols = []
    for h in horizons_h:
        ms = h * 3_600_000.0
        returned = (gap.is_not_null() & (gap <= ms)).cast(pl.Float64)
        cols.append(
            pl.when(pl.col("end_ms") + ms <= end).then(returned).otherwise(None).alias(_name(h))
        )
    return per.with_columns(*cols, pl.col("next_length").cast(pl.Float64))


def _name(hours: float) -> str:
    return f"return_{hours:g}h"


def _slope(s: np.ndarray) -> np.ndarray:
    """(R, 1) slopes from (R, 5) sums of 1, x, y, xy, xx."""
    n, sx, sy, sxy, sxx = (s[:, [i]] for i in range(5))
    return ratio(sxy - ratio(sx * sy, n), sxx - ratio(sx * sx, n))


def reward_bins(x: np.ndarray, n_bins: int) -> np.ndarray:
    """(N,) int64 bin index 0..G-1 (G <= ``n_bins``) of each reward in ``x`` (N,) float64:
    quantile bins that never split tied values. A value's mid-rank percentile (the middle of
    its tie group, in [0, 1)) picks one of ``n_bins`` equal slices; empty slices are dropped.
    Continuous rewards get ordinary quantile bins; a reward with a few heavily tied values
    (e.g. the click rate of short sessions: mostly 0 or 1) gets one bin per tie group."""
    x = np.asarray(x, dtype=np.float64)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    middle = (np.cumsum(counts) - counts / 2.0) / len(x)
    slot = np.minimum((middle * n_bins).astype(np.int64), n_bins - 1)
    dense = np.unique(slot, return_inverse=True)[1]
    return np.asarray(dense[inverse], dtype=np.int64)


def _curve(
    per: pl.DataFrame, reward: str, outcome: str, boot: UserBootstrap, n_bins: int
) -> HabitCurve | None:
    rows = per.filter(pl.col(reward).is_not_null() & pl.col(outcome).is_not_null())
    if rows.height < 2:
        return None
    index = reward_bins(rows[reward].to_numpy(), n_bins)
    x, y = pl.col(reward), pl.col(outcome)
    rows = rows.with_columns(
        pl.Series("_bin", index),
        (x - x.mean().over("_u")).alias("_xw"),
        (y - y.mean().over("_u")).alias("_yw"),
    )
    n = boot.n_users
    g = int(index.max()) + 1
    ranges = rows.group_by("_bin").agg(x.min().alias("lo"), x.max().alias("hi")).sort("_bin")
    cells = user_group_sums(rows, "_bin", g, {"n": pl.len(), "x": x.sum(), "y": y.sum()}, n)

    def moments(a: pl.Expr, b: pl.Expr) -> np.ndarray:
        exprs = {
            "n": pl.len(),
            "x": a.sum(),
            "y": b.sum(),
            "xy": (a * b).sum(),
            "xx": (a * a).sum(),
        }
        return user_sums(rows, exprs, n)

    def means(s: np.ndarray) -> np.ndarray:
        c = s.reshape(len(s), g, 3)
        return ratio(c[:, :, 2], c[:, :, 0])

    totals = cells.sum(axis=0)
    return HabitCurve(
        reward=reward,
        outcome=outcome,
        bins=tuple(zip(ranges["lo"].to_list(), ranges["hi"].to_list(), strict=True)),
        x=tuple(float(v) for v in ratio(totals[:, 1], totals[:, 0])),
        values=tuple(boot.estimates(cells, means)),
        slope=boot.estimates(moments(x, y), _slope, 0.0)[0],
        within_slope=boot.estimates(moments(pl.col("_xw"), pl.col("_yw")), _slope, 0.0)[0],
        spearman=boot.estimates(cells, lambda s: spearman_rows(means(s))[:, None], 0.0)[0],
        n_sessions=rows.height,
    )


def analyse_habits(
    log: pl.DataFrame,
    boot: UserBootstrap,
    horizons_h: tuple[float, ...] = (24.0, 48.0),
    n_bins: int = 5,
) -> HabitResult:
    """Return probabilities and next-session lengths of a prepared log, overall and as curves
    over the previous session's rewards."""
    per = _outcomes(log, horizons_h)
    outcomes = [*(_name(h) for h in horizons_h), "next_length"]
    sums = user_sums(
        per,
        {k: v for o in outcomes for k, v in _mean_exprs(o).items()},
        boot.n_users,
    )
    means = boot.estimates(sums, lambda s: ratio(s[:, 1::2], s[:, 0::2]))
    curves = [_curve(per, r, o, boot, n_bins) for r in REWARDS for o in outcomes]
    return HabitResult(
        returns=dict(zip(outcomes[:-1], means[:-1], strict=True)),
        next_length=means[-1],
        curves=tuple(c for c in curves if c is not None),
    )


def _mean_exprs(outcome: str) -> dict[str, pl.Expr]:
    """Per-user count of defined values and their sum for ``outcome``."""
    return {
        f"{outcome}:n": pl.col(outcome).is_not_null().sum(),
        f"{outcome}:y": pl.col(outcome).sum(),
    }
