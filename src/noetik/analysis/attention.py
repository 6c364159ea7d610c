"""Attention over time: when people watch, how long their sessions last, when they come back.

* **Hour of day / weekday**: share of interactions, click rate and mean watch ratio per hour
  (pooled over interactions, users resampled). An hour's share is robust when its interval
  excludes the uniform share 1/24; a rate when it excludes the all-hours rate. The peak-to-
  trough ratio compares the busiest and quietest hour (chosen on the point estimate).
* **Sessions**: a session ends at a gap longer than the inactivity gap (30 min by default);
  its length is the number of interactions, its duration last minus first timestamp.
* **Return intervals**: hours from the end of a session to the start of the same user's next
  session (only users seen again inside the log window have one).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import polars as pl

from noetik.analysis.frame import sessions, user_group_sums, user_sums
from noetik.analysis.stats import Finding, UserBootstrap, ratio

#: Upper ends of the session-length histogram buckets (interactions); the last is open.
LENGTH_EDGES: tuple[int, ...] = (1, 2, 3, 5, 10, 20, 50)
#: Edges of the return-interval histogram (hours); the last bucket is open.
RETURN_EDGES_H: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 24.0, 48.0, 96.0)
WEEKDAYS: tuple[str, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass(frozen=True)
class AttentionResult:
    """When and how long people watch."""

    hour_share: tuple[Finding, ...]
    """24 shares of interactions at hours 0..23 (null 1/24)."""
    hour_click: tuple[Finding, ...]
    """24 click rates by hour (null: the overall click rate)."""
    hour_watch: tuple[Finding, ...]
    """24 mean watch ratios by hour over rows with a known ratio (null: the overall mean)."""
    weekday_share: tuple[Finding, ...]
    """7 shares of interactions, Monday..Sunday (null: the share of calendar days in the log
    that fall on that weekday)."""
    peak_hour: int
    """Hour with the largest share."""
    trough_hour: int
    """Hour with the smallest share."""
    peak_to_trough: Finding
    """Share of the peak hour / share of the trough hour (null 1)."""
    click_range: Finding
    """Click rate of the best minus the worst hour (hours chosen on the point; null 0)."""
    length_hist: tuple[tuple[str, float], ...]
    """(bucket label, fraction of sessions) of the session-length histogram."""
    length_mean: Finding
    """Mean session length in interactions."""
    length_median: Finding
    """Lower median session length in interactions."""
    minutes_median: Finding
    """Lower median session duration (last minus first interaction) in minutes."""
    return_hist: tuple[tuple[str, float], ...]
    """(bucket label, fraction of return intervals) of the return-interval histogram."""
    return_median_h: Finding
    """Lower median hours between the end of a session and the start of the next."""
    return_within_24h: Finding
    """Share of return intervals of at most 24 h."""
    n_sessions: int
    """Sessions in the log."""
    n_returns: int
    """Return intervals (sessions followed by another of the same user)."""


def _hours(log: pl.DataFrame, boot: UserBootstrap) -> dict[str, object]:
    known = pl.col("watch_ratio").is_not_null()
    cells = user_group_sums(
        log,
        "hour",
        24,
        {
            "n": pl.len(),
            "click": pl.col("is_click").sum(),
            "watch": pl.col("watch_ratio").fill_null(0.0).sum(),
            "known": known.sum(),
        },
        boot.n_users,
    )
    total = cells.sum(axis=(0, 1))
    summed = boot.summed(cells)
    click_all, watch_all = total[1] / total[0], ratio(total[2], total[3])

    def stat(s: np.ndarray, col: int, den: int | None) -> np.ndarray:
        s = s.reshape(-1, 24, 4)
        return ratio(
            s[:, :, col], s[:, :, 0].sum(axis=1, keepdims=True) if den is None else s[:, :, den]
        )

    share = boot.estimates(summed, lambda s: stat(s, 0, None), 1.0 / 24.0)
    point = np.array([e.value for e in share])
    peak, trough = int(np.nanargmax(point)), int(np.nanargmin(point))
    clicks = boot.estimates(summed, lambda s: stat(s, 1, 0), float(click_all))
    rates = np.array([e.value for e in clicks])
    best, worst = int(np.nanargmax(rates)), int(np.nanargmin(rates))
    return {
        "hour_share": tuple(share),
        "hour_click": tuple(clicks),
        "hour_watch": tuple(boot.estimates(summed, lambda s: stat(s, 2, 3), float(watch_all))),
        "peak_hour": peak,
        "trough_hour": trough,
        "peak_to_trough": boot.estimates(
            summed, lambda s: stat(s, 0, None)[:, [peak]] / stat(s, 0, None)[:, [trough]], 1.0
        )[0],
        "click_range": boot.estimates(
            summed, lambda s: stat(s, 1, 0)[:, [best]] - stat(s, 1, 0)[:, [worst]], 0.0
        )[0],
    }


def _weekdays(log: pl.DataFrame, boot: UserBootstrap) -> tuple[Finding, ...]:
    cells = user_group_sums(log, "weekday", 7, {"n": pl.len()}, boot.n_users)[:, :, 0]
    days = log.select("date", "weekday").unique("date")
    calendar = np.bincount(days["weekday"].drop_nulls().to_numpy(), minlength=7)[:7]
    null = calendar / max(calendar.sum(), 1)
    return tuple(boot.estimates(cells, lambda s: ratio(s, s.sum(axis=1, keepdims=True)), null))


def _histogram(
    values: np.ndarray, edges: tuple[float, ...], labels: list[str]
) -> tuple[tuple[str, float], ...]:
    """(label, fraction) per bucket of ``values`` (N,) float64; bucket i holds values in
    (edges[i-1], edges[i]], the last bucket values above ``edges[-1]``."""
    index = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="left")
    counts = np.bincount(index, minlength=len(edges) + 1)
    fractions = counts / max(len(values), 1)
    return tuple((label, float(f)) for label, f in zip(labels, fractions, strict=True))


def _length_labels() -> list[str]:
    labels, lo = [], 1
    for hi in LENGTH_EDGES:
        labels.append(str(hi) if hi == lo else f"{lo}-{hi}")
        lo = hi + 1
    return [*labels, f">{LENGTH_EDGES[-1]}"]


def _return_labels() -> list[str]:
    edges = [f"{e:g}" for e in RETURN_EDGES_H]
    middle = [f"{a}-{b} h" for a, b in itertools.pairwise(edges)]
    return [f"<={edges[0]} h", *middle, f">{edges[-1]} h"]


def _sessions_part(log: pl.DataFrame, boot: UserBootstrap) -> dict[str, object]:
    per = sessions(log)
    users = per["_u"].to_numpy()
    length = per["length"].to_numpy().astype(np.float64)
    minutes = (per["end_ms"] - per["start_ms"]).to_numpy() / 60_000.0
    gap_h = (per["next_start_ms"] - per["end_ms"]).cast(pl.Float64) / 3_600_000.0
    has_next = gap_h.is_not_null().to_numpy()
    returns = gap_h.drop_nulls().to_numpy()
    sums = user_sums(
        per.with_columns(gap_h.alias("gap_h")),
        {
            "sessions": pl.len(),
            "length": pl.col("length").sum(),
            "returns": pl.col("gap_h").is_not_null().sum(),
            "within": (pl.col("gap_h") <= 24.0).sum(),
        },
        boot.n_users,
    )
    length_med = boot.quantile(length, users, 0.5)
    minutes_med = boot.quantile(minutes, users, 0.5)
    return_med = boot.quantile(returns, users[has_next], 0.5)
    return {
        "length_hist": _histogram(length, tuple(map(float, LENGTH_EDGES)), _length_labels()),
        "length_mean": boot.estimates(sums, lambda s: ratio(s[:, [1]], s[:, [0]]))[0],
        "length_median": boot.estimate(*length_med),
        "minutes_median": boot.estimate(*minutes_med),
        "return_hist": _histogram(returns, RETURN_EDGES_H, _return_labels()),
        "return_median_h": boot.estimate(*return_med),
        "return_within_24h": boot.estimates(sums, lambda s: ratio(s[:, [3]], s[:, [2]]))[0],
        "n_sessions": per.height,
        "n_returns": len(returns),
    }


def analyse_attention(log: pl.DataFrame, boot: UserBootstrap) -> AttentionResult:
    """Hour-of-day, weekday, session-length and return-interval statistics of a prepared log
    (:func:`noetik.analysis.frame.prepare_log`)."""
    parts = {**_hours(log, boot), **_sessions_part(log, boot)}
    return AttentionResult(weekday_share=_weekdays(log, boot), **parts)  # type: ignore[arg-type]
