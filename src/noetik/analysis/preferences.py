"""Preference structure and drift over the videos' tags (topics).

A video with several tags splits one unit of weight evenly over them; videos without tags are
left out. For each user with at least ``min_tagged`` tagged interactions:

* **Concentration**: the Shannon entropy (bits) of the user's tag distribution, against the
  entropy the same user would have if each of their interactions had gone to a video drawn from
  everyone's interactions (the tags permuted across all rows: same counts per user, same overall
  tag mix). ``concentration`` = shuffled - observed entropy; robust when its interval excludes 0.
  Small samples bias both entropies down by the same amount, so the difference is fair.
* **Drift**: the Jensen-Shannon divergence (bits, in [0, 1]) between the tag distributions of
  the first and second half of the user's interactions in time, against the same divergence when
  the user's interactions are put in a random order (a shuffled-time null with the same half
  sizes). ``drift_excess`` = observed - shuffled; robust when its interval excludes 0.

Every mean is over the eligible users, users resampled by the bootstrap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from noetik.analysis.frame import user_group_sums, user_sums
from noetik.analysis.stats import Finding, UserBootstrap, ratio


@dataclass(frozen=True)
class PreferenceResult:
    """What people watch, how concentrated it is and whether it changes over time."""

    tags: tuple[int, ...]
    """The most common tags, most common first."""
    tag_share: tuple[Finding, ...]
    """Overall share of each of ``tags`` among tagged interactions."""
    days: tuple[int, ...]
    """Dates (YYYYMMDD) of ``share_by_day``."""
    share_by_day: tuple[tuple[float, ...], ...]
    """Per date, the shares of ``tags`` followed by the share of all other tags."""
    population_entropy: float
    """Entropy (bits) of the overall tag distribution."""
    entropy: Finding
    """Mean entropy (bits) of an eligible user's tag distribution."""
    entropy_shuffled: Finding
    """The same with the tags permuted across all interactions."""
    concentration: Finding
    """Mean of shuffled - observed entropy (bits; null 0): > 0 means concentrated tastes."""
    top_tag_share: Finding
    """Mean share of an eligible user's most-watched tag."""
    drift_js: Finding
    """Mean JS divergence (bits) between a user's early and late tag distributions."""
    drift_js_shuffled: Finding
    """The same with each user's interactions in a random order."""
    drift_excess: Finding
    """Mean of observed - shuffled JS divergence (null 0): > 0 means real drift."""
    n_users: int
    """Users with at least ``min_tagged`` tagged interactions."""
    n_tags: int
    """Distinct tags in the log."""


def entropy_bits(weights: np.ndarray) -> np.ndarray:
    """(...,) Shannon entropy in bits of the distributions in the last axis of ``weights``
    (..., T) float64 (non-negative, normalised here; NaN for an all-zero row)."""
    p = ratio(weights, weights.sum(axis=-1, keepdims=True))
    logs = np.log2(p, out=np.zeros_like(p), where=p > 0)
    return np.where(np.isnan(p).any(axis=-1), np.nan, -(p * logs).sum(axis=-1))


def js_divergence(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(...,) Jensen-Shannon divergence in bits between the distributions in the last axis of
    ``a`` and ``b`` (..., T) float64 (each normalised here), in [0, 1]."""
    mix = (a / a.sum(axis=-1, keepdims=True) + b / b.sum(axis=-1, keepdims=True)) / 2.0
    js: np.ndarray = entropy_bits(mix) - (entropy_bits(a) + entropy_bits(b)) / 2.0
    return js


def _tagged(log: pl.DataFrame, rng: np.random.Generator) -> tuple[pl.DataFrame, np.ndarray]:
    """Tagged interactions with ``_i`` (position among the user's tagged rows), ``_n`` (their
    number), ``_r`` (position in a random order) and the tag vocabulary (sorted ids)."""
    rows = log.filter(pl.col("tags").list.len() > 0).select("_u", "date", "tags")
    rows = rows.with_columns(
        pl.int_range(pl.len()).over("_u").alias("_i"),
        pl.len().over("_u").alias("_n"),
        pl.Series("_key", rng.random(rows.height)),
    ).with_columns((pl.col("_key").rank("ordinal").over("_u") - 1).alias("_r"))
    vocab = np.sort(rows["tags"].explode().unique().drop_nulls().to_numpy())
    return rows, vocab


def _explode(rows: pl.DataFrame, vocab: np.ndarray) -> pl.DataFrame:
    """One row per (interaction, tag) with ``_t`` (tag index in ``vocab``) and weight ``_w``."""
    index = pl.DataFrame({"tags": vocab.astype(np.int32), "_t": np.arange(len(vocab))})
    exploded = rows.with_columns((1.0 / pl.col("tags").list.len()).alias("_w")).explode("tags")
    return exploded.join(index, on="tags", how="left")


def _matrix(rows: pl.DataFrame, half: pl.Expr | None, n_tags: int, n: int) -> np.ndarray:
    """(U, T) tag weights per user, or (U, 2, T) split by ``half`` (0 early, 1 late)."""
    if half is None:
        return user_group_sums(rows, "_t", n_tags, {"w": pl.col("_w").sum()}, n)[:, :, 0]
    cells = rows.with_columns((half.cast(pl.Int64) * n_tags + pl.col("_t")).alias("_g"))
    sums = user_group_sums(cells, "_g", 2 * n_tags, {"w": pl.col("_w").sum()}, n)
    return sums[:, :, 0].reshape(n, 2, n_tags)


def _by_day(rows: pl.DataFrame, top: np.ndarray) -> tuple[tuple[int, ...], np.ndarray]:
    """Dates and (D, len(top) + 1) shares of the top tag indices and of the rest per date."""
    slot = pl.DataFrame({"_t": top, "_slot": np.arange(len(top))})
    daily = (
        rows.join(slot, on="_t", how="left")
        .with_columns(pl.col("_slot").fill_null(len(top)))
        .group_by("date", "_slot")
        .agg(pl.col("_w").sum())
        .with_columns(pl.col("date").rank("dense").cast(pl.Int64).alias("_d") - 1)
    )
    days = np.sort(daily["date"].unique().to_numpy())
    grid = np.zeros((len(days), len(top) + 1))
    grid[daily["_d"].to_numpy(), daily["_slot"].to_numpy()] = daily["_w"].to_numpy()
    return tuple(int(d) for d in days), ratio(grid, grid.sum(axis=1, keepdims=True))


def analyse_preferences(
    log: pl.DataFrame, boot: UserBootstrap, min_tagged: int = 10, top_k: int = 8
) -> PreferenceResult | None:
    """Tag concentration and drift of a prepared log with a ``tags`` column (None without
    tags or without tagged interactions). The shuffles use ``boot.seed``."""
    if "tags" not in log.columns:
        return None
    rng = np.random.default_rng([boot.seed, 7])
    rows, vocab = _tagged(log, rng)
    if not rows.height:
        return None
    n, t = boot.n_users, len(vocab)
    exploded = _explode(rows, vocab)
    weights = _matrix(exploded, None, t, n)
    shuffled_rows = rows.with_columns(rows["tags"].gather(rng.permutation(rows.height)))
    shuffled = _matrix(_explode(shuffled_rows, vocab), None, t, n)
    early_late = _matrix(exploded, pl.col("_i") >= pl.col("_n") // 2, t, n)
    null_halves = _matrix(exploded, pl.col("_r") >= pl.col("_n") // 2, t, n)
    counts = user_sums(rows, {"n": pl.len()}, n)[:, 0]
    eligible = (weights.sum(axis=1) > 0) & (counts >= max(min_tagged, 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        h, h0 = entropy_bits(weights), entropy_bits(shuffled)
        top_share = weights.max(axis=1) / weights.sum(axis=1)
        js = js_divergence(early_late[:, 0], early_late[:, 1])
        js0 = js_divergence(null_halves[:, 0], null_halves[:, 1])
    values = np.stack([h, h0, h0 - h, top_share, js, js0, js - js0], axis=1)
    per_user = np.column_stack([eligible, np.where(eligible[:, None], values, 0.0)])
    nulls = np.array([np.nan, np.nan, 0.0, np.nan, np.nan, np.nan, 0.0])
    means = boot.estimates(per_user, lambda s: ratio(s[:, 1:], s[:, [0]]), nulls)
    total = weights.sum(axis=0)
    top = np.argsort(-total, kind="stable")[:top_k]
    shares = boot.estimates(weights, lambda s: ratio(s[:, top], s.sum(axis=1, keepdims=True)))
    days, by_day = _by_day(exploded, top)
    return PreferenceResult(
        tags=tuple(int(vocab[i]) for i in top),
        tag_share=tuple(shares),
        days=days,
        share_by_day=tuple(tuple(float(x) for x in row) for row in by_day),
        population_entropy=float(entropy_bits(total)) + 0.0,
        entropy=means[0],
        entropy_shuffled=means[1],
        concentration=means[2],
        top_tag_share=means[3],
        drift_js=means[4],
        drift_js_shuffled=means[5],
        drift_excess=means[6],
        n_users=int(eligible.sum()),
        n_tags=t,
    )
