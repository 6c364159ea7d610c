"""Real-data quirks of KuaiRand, handled explicitly (see docs/data.md, "Quirks").

* ``duration_ms == 0`` (1.6 % of standard and 3 % of random rows in the real Pure sample): the
  watch ratio falls back to the video's ``video_duration`` from the basic features; when that
  is missing or zero too, the ratio is *unknown* (null), never infinite or NaN.
* ``play_time_ms > duration_ms`` (replays, 15 % of real standard rows): ``watch_ratio_raw``
  keeps the raw ratio (can exceed 1), ``watch_ratio`` is clipped to [0, 1].
* Range strings in user features (``"(0,10]"``, ``"500+"``, ``"[1k,5k)"``, ``"[1w,10w)"``,
  ``"181-365"``, ``"0"``, ``UNKNOWN``) become numeric lower/upper bounds (``k`` = 1e3, ``w`` =
  1e4; an open upper end is +inf; ``UNKNOWN`` is null).
* ``user_active_degree == "UNKNOWN"`` and ``is_live_streamer == -124`` (a missing-value code,
  77 % of real Pure users) become null.
* Video features: ``tag`` ("39" or "1,17", null for 1 % of videos) becomes a list of ints
  (empty when null); nulls in ``video_duration`` and ``music_type`` stay null; ``upload_dt``
  becomes a date.
"""

from __future__ import annotations

import polars as pl

#: Values of ``user_active_degree`` in the real files, ordered from most to least active.
ACTIVE_DEGREES: tuple[str, ...] = (
    "full_active",
    "high_active",
    "middle_active",
    "low_active",
    "single_low_active",
    "30day_retention",
    "2_14_day_new",
    "day_new",
)

#: Code that KuaiRand uses for a missing ``is_live_streamer``.
MISSING_CODE = -124

RANGE_COLUMNS: tuple[str, ...] = (
    "follow_user_num_range",
    "fans_user_num_range",
    "friend_user_num_range",
    "register_days_range",
)

_BOUND = r"(\d+(?:\.\d+)?)([kKwW]?)"


def _bound(text: pl.Expr, pattern: str) -> pl.Expr:
    """Numeric value of the ``(number, unit)`` captured by ``pattern`` in ``text``."""
    number = text.str.extract(pattern, 1).cast(pl.Float64)
    unit = text.str.extract(pattern, 2).str.to_lowercase()
    scale = pl.when(unit == "k").then(1e3).when(unit == "w").then(1e4).otherwise(1.0)
    return number * scale


def parse_range(column: str) -> list[pl.Expr]:
    """Expressions for ``<column>_lo`` and ``<column>_hi`` parsed from a range string column."""
    text = pl.col(column).str.strip_chars()
    unknown = text.is_null() | (text.str.to_uppercase() == "UNKNOWN")
    lo_pattern = rf"^[\[(]?{_BOUND}"
    hi_pattern = rf"[,\-]\s*{_BOUND}[\])]?$"
    lo = _bound(text, lo_pattern)
    hi = (
        pl.when(text.str.ends_with("+"))
        .then(float("inf"))
        .when(text.str.contains(r"[,\-]"))
        .then(_bound(text, hi_pattern))
        .otherwise(lo)
    )
    return [
        pl.when(unknown).then(None).otherwise(lo).alias(f"{column}_lo"),
        pl.when(unknown).then(None).otherwise(hi).alias(f"{column}_hi"),
    ]


def clean_users(users: pl.LazyFrame) -> pl.LazyFrame:
    """User features with missing-value codes as nulls and range strings as numeric bounds."""
    degree = pl.col("user_active_degree")
    return users.with_columns(
        pl.when(degree.str.to_uppercase() == "UNKNOWN")
        .then(None)
        .otherwise(degree)
        .alias("user_active_degree"),
        pl.when(pl.col("is_live_streamer") == MISSING_CODE)
        .then(None)
        .otherwise(pl.col("is_live_streamer"))
        .alias("is_live_streamer"),
        *[expr for column in RANGE_COLUMNS for expr in parse_range(column)],
    )


def clean_videos(videos: pl.LazyFrame) -> pl.LazyFrame:
    """Basic video features with ``tags`` as a list of ints and ``upload_dt`` as a date."""
    return videos.with_columns(
        pl.col("tag")
        .fill_null("")
        .str.split(",")
        .list.eval(pl.element().str.strip_chars().filter(pl.element() != "").cast(pl.Int32))
        .alias("tags"),
        pl.col("upload_dt").str.to_date("%Y-%m-%d", strict=False).alias("upload_date"),
        pl.when(pl.col("video_duration") > 0)
        .then(pl.col("video_duration"))
        .otherwise(None)
        .alias("video_duration"),
    )


def add_watch_ratio(log: pl.LazyFrame, videos: pl.LazyFrame | None) -> pl.LazyFrame:
    """Add the derived columns of an interaction log (types in parentheses).

    ``duration_eff_ms`` (Float64): ``duration_ms`` when positive, else the video's
    ``video_duration`` when positive, else null. ``duration_known`` (Boolean).
    ``watch_ratio_raw`` (Float32): ``play_time_ms / duration_eff_ms``, may exceed 1 (replays),
    null when the duration is unknown. ``watch_ratio`` (Float32): the raw ratio clipped to
    [0, 1], null when unknown. ``hour`` (Int8): ``hourmin // 100``.
    """
    duration: pl.Expr = pl.when(pl.col("duration_ms") > 0).then(
        pl.col("duration_ms").cast(pl.Float64)
    )
    if videos is not None:
        fallback = videos.select(
            pl.col("video_id"), pl.col("video_duration").alias("_video_duration")
        ).filter(pl.col("_video_duration") > 0)
        log = log.join(fallback, on="video_id", how="left", maintain_order="left")
        duration = (
            pl.when(pl.col("duration_ms") > 0)
            .then(pl.col("duration_ms").cast(pl.Float64))
            .otherwise(pl.col("_video_duration"))
        )
    ratio = (pl.col("play_time_ms") / pl.col("duration_eff_ms")).cast(pl.Float32)
    log = log.with_columns(duration.alias("duration_eff_ms")).with_columns(
        pl.col("duration_eff_ms").is_not_null().alias("duration_known"),
        ratio.alias("watch_ratio_raw"),
        ratio.clip(0.0, 1.0).alias("watch_ratio"),
        (pl.col("hourmin") // 100).cast(pl.Int8).alias("hour"),
    )
    return log.drop("_video_duration", strict=False)
