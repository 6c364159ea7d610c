"""The interaction log as the analysis reads it, and per-user sums built with polars.

:func:`prepare_log` takes a KuaiRand log (a frame with the published log columns, e.g.
``KuaiRandDataset.interactions(...)`` or a hand-made frame) and returns it sorted by user and
time with the columns every analysis uses:

``_u`` (Int64)            dense user index 0..U-1 (the bootstrap's resampling unit)
``episode_id``, ``step``  sessions cut at inactivity gaps (:func:`noetik.data.episodes`)
``weekday`` (Int8)        0 = Monday .. 6 = Sunday, from ``date`` (YYYYMMDD)
``hour`` (Int8)           ``hourmin // 100``
``watch_ratio``           clipped play / duration, null where the duration is unknown
``tags`` (List[Int32])    the video's tags (only when video features or a ``tags`` column exist)

Real-data quirks: ``duration_ms == 0`` rows keep a null watch ratio (they are left out of
watch-ratio means, never counted as 0), and videos without tags (or missing from the video
table) are left out of the tag analysis. Nulls in a frame given directly: rows without
``user_id`` or ``time_ms`` are dropped, a null feedback flag counts as 0, a null ``tab``,
``hourmin`` or ``date`` leaves the row out of the tab, hour or weekday statistics only.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import polars as pl

from noetik.data.episodes import EpisodeConfig, assign_episodes
from noetik.data.quirks import add_watch_ratio
from noetik.data.schema import BINARY_SIGNALS, LOG_SCHEMA
from noetik.errors import DataError

#: Binary feedback flags the analysis reads (every published one but ``is_profile_enter``).
FEEDBACK_FLAGS: tuple[str, ...] = tuple(s for s in BINARY_SIGNALS if s != "is_profile_enter")

#: Log columns the analysis needs (the other published columns are optional).
REQUIRED_COLUMNS: tuple[str, ...] = (
    "user_id",
    "video_id",
    "date",
    "hourmin",
    "time_ms",
    *FEEDBACK_FLAGS,
    "play_time_ms",
    "duration_ms",
    "tab",
)

#: Binary feedback columns: a null (only in hand-made frames; the loader rejects them) is 0.
_DERIVED = ("duration_eff_ms", "duration_known", "watch_ratio_raw", "watch_ratio", "hour")


def prepare_log(
    frame: pl.DataFrame | pl.LazyFrame,
    videos: pl.LazyFrame | None = None,
    session_gap_minutes: float = 30.0,
    name: str = "interactions",
) -> pl.DataFrame:
    """``frame`` ready for analysis (columns in the module docstring), sorted by user, time.

    ``videos``: cleaned basic video features (``video_id``, ``tags``, ``video_duration``) used
    for tags and the duration fallback. A missing required column or an empty log raises
    :class:`~noetik.errors.DataError` naming ``name`` and the column.
    """
    lazy = frame.lazy()
    columns = lazy.collect_schema().names()
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise DataError(name, f"missing column(s) {', '.join(map(repr, missing))} in the log")
    casts = {c: LOG_SCHEMA[c] for c in REQUIRED_COLUMNS}
    lazy = lazy.with_columns(pl.col(c).cast(t) for c, t in casts.items())
    lazy = lazy.drop_nulls(["user_id", "time_ms"]).with_columns(
        pl.col(list(FEEDBACK_FLAGS)).fill_null(0), pl.col("tab").fill_null(-1)
    )
    lazy = lazy.sort(["user_id", "time_ms"], maintain_order=True)
    if not all(c in columns for c in _DERIVED):
        lazy = add_watch_ratio(lazy.drop(_DERIVED, strict=False), videos)
    if "tags" not in columns and videos is not None:
        tags = videos.select(pl.col("video_id").cast(pl.Int32), pl.col("tags"))
        lazy = lazy.join(tags, on="video_id", how="left", maintain_order="left")
    day = pl.col("date").cast(pl.String).str.to_date("%Y%m%d", strict=False)
    lazy = lazy.with_columns(
        (pl.col("user_id").rank("dense").cast(pl.Int64) - 1).alias("_u"),
        (day.dt.weekday() - 1).cast(pl.Int8).alias("weekday"),
    )
    log = assign_episodes(lazy, EpisodeConfig(session_gap_minutes=session_gap_minutes)).collect()
    if log.height == 0:
        raise DataError(name, "the log has no rows")
    return log


def n_users(log: pl.DataFrame) -> int:
    """U, the number of distinct users of a prepared log."""
    return int(log["_u"].max()) + 1  # type: ignore[arg-type]


def user_sums(log: pl.DataFrame, exprs: Mapping[str, pl.Expr], n: int) -> np.ndarray:
    """(n, K) float64 per-user aggregates: row ``u`` holds ``exprs`` (K aggregations, e.g.
    ``pl.col("is_like").sum()``) over the rows with ``_u == u`` (0 for users without rows)."""
    names = list(exprs)
    out = np.zeros((n, len(names)))
    if log.height:
        agg = log.group_by("_u").agg(e.cast(pl.Float64).alias(k) for k, e in exprs.items())
        filled = agg.select(pl.col(names).fill_null(0.0).fill_nan(0.0)).to_numpy()
        out[agg["_u"].to_numpy()] = filled
    return out


def user_group_sums(
    log: pl.DataFrame, group: str, n_groups: int, exprs: Mapping[str, pl.Expr], n: int
) -> np.ndarray:
    """(n, G, K) float64 per-user, per-group aggregates; ``group`` is an integer column with
    values 0..G-1 (rows outside that range are ignored)."""
    names = list(exprs)
    out = np.zeros((n, n_groups, len(names)))
    valid = log.filter(pl.col(group).is_between(0, n_groups - 1))
    if valid.height:
        agg = valid.group_by("_u", group).agg(e.cast(pl.Float64).alias(k) for k, e in exprs.items())
        filled = agg.select(pl.col(names).fill_null(0.0).fill_nan(0.0)).to_numpy()
        out[agg["_u"].to_numpy(), agg[group].cast(pl.Int64).to_numpy()] = filled
    return out


def sessions(log: pl.DataFrame) -> pl.DataFrame:
    """One row per session, in user/time order: ``_u``, ``episode_id``, ``length`` (rows),
    ``start_ms``, ``end_ms``, ``click_rate`` (mean is_click), ``watch_ratio`` (mean over rows
    with a known ratio; null when none), ``next_start_ms`` and ``next_length`` (the same
    user's next session; null for the last)."""
    per = log.group_by("episode_id", maintain_order=True).agg(
        pl.col("_u").first(),
        pl.len().cast(pl.Int64).alias("length"),
        pl.col("time_ms").min().alias("start_ms"),
        pl.col("time_ms").max().alias("end_ms"),
        pl.col("is_click").cast(pl.Float64).mean().alias("click_rate"),
        pl.col("watch_ratio").cast(pl.Float64).mean().alias("watch_ratio"),
    )
    same = pl.col("_u") == pl.col("_u").shift(-1)  # sessions grouped by user
    return per.with_columns(
        pl.when(same).then(pl.col("start_ms").shift(-1)).alias("next_start_ms"),
        pl.when(same).then(pl.col("length").shift(-1)).alias("next_length"),
    )
