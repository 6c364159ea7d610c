"""Emotional response: how often people like, hate, comment, follow and forward, and what
precedes it.

* **Rates** pooled over interactions (users resampled), overall, by app tab and by video
  duration bucket (duration with the video-feature fallback; ``unknown`` when neither is known).
  A group's rate is robust when its interval excludes the overall rate. Groups with fewer than
  ``min_rows`` interactions are left out.
* **Precedence**: for each signal *t* and preceding signal *s*, P(t | the previous interaction
  of the same session had s) versus P(t | it had not), and their ratio (the lift; null 1).
  Users who like a lot produce like-after-like without any sequential effect, so each lift is
  shown next to two shuffled nulls (point values, seeded): ``user_shuffled_lift`` puts each
  user's interactions in a random order over the same session slots (the lift that users'
  own rates alone produce) and ``shuffled_lift`` shuffles the order only within each session
  (the lift that feedback clustering in sessions produces). A lift whose interval lies above
  both is a sequential effect of the previous video; above the user null only, clustering
  in sessions; not above the user null, a matter of who the users are.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass
from functools import partial

import numpy as np
import polars as pl

from noetik.analysis.frame import user_group_sums, user_sums
from noetik.analysis.stats import Finding, UserBootstrap, ratio

#: Signals whose rates are reported (the feedback of the interaction itself).
EMOTIONS: tuple[str, ...] = ("is_like", "is_hate", "is_comment", "is_follow", "is_forward")
#: Signals of the previous interaction that may precede them.
PRECEDERS: tuple[str, ...] = ("is_click", "long_view", *EMOTIONS)
N_TABS = 15


@dataclass(frozen=True)
class RateTable:
    """Signal rates per group (tab or duration bucket)."""

    groups: tuple[str, ...]
    """Group labels (only groups with enough interactions)."""
    n_rows: tuple[int, ...]
    """Interactions per group."""
    rates: dict[str, tuple[Finding, ...]]
    """Signal -> its rate in each group (null: the signal's overall rate)."""


@dataclass(frozen=True)
class Precedence:
    """How a signal depends on the previous interaction's signal."""

    signal: str
    """The signal of the interaction, e.g. ``is_like``."""
    previous: str
    """The signal of the previous interaction in the same session."""
    after: Finding
    """P(signal | the previous interaction had ``previous``)."""
    otherwise: Finding
    """P(signal | it had not)."""
    lift: Finding
    """``after / otherwise`` (null 1)."""
    shuffled_lift: float
    """The lift with the interactions of each session in a random order."""
    user_shuffled_lift: float
    """The lift with each user's interactions in a random order over their session slots."""
    n_after: int
    """Interactions whose previous interaction had ``previous``."""
    n_events: int
    """Of those, the interactions with ``signal``."""


@dataclass(frozen=True)
class EmotionResult:
    """Feedback rates and their antecedents."""

    overall: dict[str, Finding]
    """Signal -> overall rate (every signal of ``PRECEDERS``)."""
    by_tab: RateTable
    """Rates of ``EMOTIONS`` by app tab (``tab 0`` .. ``tab 14``)."""
    by_duration: RateTable
    """Rates of ``EMOTIONS`` by video duration bucket."""
    precedence: tuple[Precedence, ...]
    """Every (signal in ``EMOTIONS``, previous in ``PRECEDERS``) pair."""


def duration_labels(edges_s: tuple[float, ...]) -> tuple[str, ...]:
    """Labels of the duration buckets cut at ``edges_s`` (seconds), plus ``unknown``."""
    e = [f"{x:g}" for x in edges_s]
    middle = [f"{a}-{b} s" for a, b in itertools.pairwise(e)]
    return (f"<={e[0]} s", *middle, f">{e[-1]} s", "unknown")


def duration_bucket(edges_s: tuple[float, ...]) -> pl.Expr:
    """Int64 bucket of ``duration_eff_ms``: 0 up to ``edges_s[0]`` seconds, ..., len(edges_s)
    above the last edge, len(edges_s) + 1 when the duration is unknown (null)."""
    seconds = pl.col("duration_eff_ms") / 1000.0
    index = pl.sum_horizontal([(seconds > e).cast(pl.Int64) for e in edges_s])
    return pl.when(seconds.is_null()).then(len(edges_s) + 1).otherwise(index).cast(pl.Int64)


def _group_rates(s: np.ndarray, groups: int, column: int) -> np.ndarray:
    """(R, G) rates of signal ``column`` from (R, G*K) sums whose column 0 counts rows."""
    c = s.reshape(len(s), groups, -1)
    return ratio(c[:, :, column], c[:, :, 0])


def _rate_table(
    log: pl.DataFrame,
    group: str,
    labels: tuple[str, ...],
    overall: dict[str, Finding],
    boot: UserBootstrap,
    *,
    min_rows: int,
) -> RateTable:
    exprs = {"n": pl.len(), **{s: pl.col(s).sum() for s in EMOTIONS}}
    cells = user_group_sums(log, group, len(labels), exprs, boot.n_users)
    sizes = cells[:, :, 0].sum(axis=0)
    keep = np.flatnonzero(sizes >= min_rows)
    if not len(keep):
        return RateTable((), (), {signal: () for signal in EMOTIONS})
    summed = boot.summed(cells[:, keep])
    rates: dict[str, tuple[Finding, ...]] = {}
    for j, signal in enumerate(EMOTIONS, start=1):
        rates[signal] = tuple(
            boot.estimates(
                summed, partial(_group_rates, groups=len(keep), column=j), overall[signal].value
            )
        )
    groups = tuple(labels[i] for i in keep)
    return RateTable(groups, tuple(int(sizes[i]) for i in keep), rates)


def _pair_sums(log: pl.DataFrame, n: int) -> np.ndarray:
    """(U, E, P, 4) per-user counts: previous had s (n1), ... and t (k1), previous had not s
    (n0), ... and t (k0), over interactions with a previous one in the same session."""
    same = pl.col("episode_id") == pl.col("episode_id").shift(1)  # rows grouped by session
    prev = {s: pl.when(same).then(pl.col(s).shift(1)).cast(pl.Float64) for s in PRECEDERS}
    rows = log.with_columns(prev[s].alias(f"_prev_{s}") for s in PRECEDERS).filter(
        pl.col("_prev_is_click").is_not_null()
    )
    exprs: dict[str, pl.Expr] = {}
    for t in EMOTIONS:
        for s in PRECEDERS:
            p, y = pl.col(f"_prev_{s}"), pl.col(t).cast(pl.Float64)
            exprs[f"{t}|{s}|n1"] = p.sum()
            exprs[f"{t}|{s}|k1"] = (p * y).sum()
            exprs[f"{t}|{s}|n0"] = (1.0 - p).sum()
            exprs[f"{t}|{s}|k0"] = ((1.0 - p) * y).sum()
    return user_sums(rows, exprs, n).reshape(n, len(EMOTIONS), len(PRECEDERS), 4)


def _rate(s: np.ndarray, num: int, den: int) -> np.ndarray:
    """(R, E*P) ratios of count ``num`` to count ``den`` from (R, E*P*4) pair counts."""
    c = s.reshape(len(s), -1, 4)
    return ratio(c[:, :, num], c[:, :, den])


def _lift(s: np.ndarray) -> np.ndarray:
    """(R, E*P) lifts from (R, E*P*4) pair counts."""
    return ratio(_rate(s, 1, 0), _rate(s, 3, 2))


def _null_lifts(log: pl.DataFrame, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(E*P,) lifts with rows shuffled within sessions, and within users (session slots
    kept: a user's signals are permuted over their rows, ``episode_id`` stays in place)."""
    rng = np.random.default_rng([seed, 11])
    by_session = log.with_columns(pl.Series("_key", rng.random(log.height))).sort(
        "episode_id", "_key", maintain_order=True
    )
    by_user = (
        log.select("_u", *PRECEDERS)
        .with_columns(pl.Series("_key", rng.random(log.height)))
        .sort("_u", "_key", maintain_order=True)
        .select(*PRECEDERS)
        .hstack(log.select("_u", "episode_id"))
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        session = _lift(_pair_sums(by_session, n).sum(axis=0).reshape(1, -1))[0]
        user = _lift(_pair_sums(by_user, n).sum(axis=0).reshape(1, -1))[0]
    return session, user


def _precedence(log: pl.DataFrame, boot: UserBootstrap, min_events: int) -> tuple[Precedence, ...]:
    n = boot.n_users
    counts = _pair_sums(log, n)
    null_lift, user_lift = _null_lifts(log, n, boot.seed)
    summed = boot.summed(counts)
    after = boot.estimates(summed, lambda s: _rate(s, 1, 0))
    other = boot.estimates(summed, lambda s: _rate(s, 3, 2))
    lift = boot.estimates(summed, _lift, 1.0)
    total = counts.sum(axis=0).reshape(-1, 4)
    pairs = [(t, s) for t in EMOTIONS for s in PRECEDERS]
    return tuple(
        Precedence(
            signal=t,
            previous=s,
            after=after[i],
            otherwise=other[i],
            lift=_enough(lift[i], total[i], min_events),
            shuffled_lift=float(null_lift[i]),
            user_shuffled_lift=float(user_lift[i]),
            n_after=int(total[i, 0]),
            n_events=int(total[i, 1]),
        )
        for i, (t, s) in enumerate(pairs)
    )


def _enough(lift: Finding, counts: np.ndarray, min_events: int) -> Finding:
    """``lift`` marked not robust when either conditional rate rests on fewer than
    ``min_events`` events (``counts`` (4,): n1, k1, n0, k0)."""
    if min(counts[1], counts[3]) >= min_events:
        return lift
    return dataclasses.replace(lift, robust=False)


def analyse_emotion(
    log: pl.DataFrame,
    boot: UserBootstrap,
    duration_edges_s: tuple[float, ...] = (7.0, 18.0, 30.0, 60.0, 120.0, 300.0),
    min_rows: int = 200,
    min_events: int = 10,
) -> EmotionResult:
    """Feedback rates (overall, by tab, by duration bucket) and precedence lifts of a
    prepared log (:func:`noetik.analysis.frame.prepare_log`). A lift counts as robust only
    when both of its rates rest on at least ``min_events`` events."""
    sums = user_sums(log, {"n": pl.len(), **{s: pl.col(s).sum() for s in PRECEDERS}}, boot.n_users)
    rates = boot.estimates(sums, lambda s: ratio(s[:, 1:], s[:, [0]]))
    overall = dict(zip(PRECEDERS, rates, strict=True))
    tabs = tuple(f"tab {i}" for i in range(N_TABS))
    labels = duration_labels(duration_edges_s)
    with_bucket = log.with_columns(duration_bucket(duration_edges_s).alias("_dur"))
    return EmotionResult(
        overall=overall,
        by_tab=_rate_table(log, "tab", tabs, overall, boot, min_rows=min_rows),
        by_duration=_rate_table(with_bucket, "_dur", labels, overall, boot, min_rows=min_rows),
        precedence=_precedence(log, boot, min_events),
    )
