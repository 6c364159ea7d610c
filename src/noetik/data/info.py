"""Summary of a dataset: release, files, sizes, date range and per-log feedback rates."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl

from noetik.data.dataset import LOG_KINDS, KuaiRandDataset
from noetik.data.schema import FileKind

RATE_SIGNALS: tuple[str, ...] = ("is_click", "long_view", "is_like")


@dataclass(frozen=True)
class LogSummary:
    """Figures of one interaction log (all its present files together)."""

    rows: int
    """Number of interactions."""
    users: int
    """Distinct users."""
    videos: int
    """Distinct videos."""
    first_date: int
    """Earliest ``date`` (YYYYMMDD)."""
    last_date: int
    """Latest ``date`` (YYYYMMDD)."""
    rates: dict[str, float]
    """Mean of each of ``is_click``, ``long_view``, ``is_like``."""
    duration_zero_share: float
    """Share of rows with ``duration_ms == 0``."""
    replay_share: float
    """Share of rows with ``play_time_ms > duration_ms > 0``."""


@dataclass(frozen=True)
class DatasetInfo:
    """What ``noetik data info`` reports."""

    root: str
    """The data directory."""
    release: str
    """Detected release."""
    present: list[str]
    """Official files found."""
    missing: list[str]
    """Official files of the release not found."""
    ignored: list[str]
    """Other CSV files in the directory."""
    rows: dict[str, int]
    """Data rows per present file."""
    logs: dict[str, LogSummary] = field(default_factory=dict)
    """Per-log figures, keyed ``log_standard`` / ``log_random``."""
    n_users: int | None = None
    """Users in the user features file, when present."""
    n_videos: int | None = None
    """Videos in the basic video features file, when present."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dictionary."""
        return asdict(self)


def summarize_log(log: pl.LazyFrame) -> LogSummary:
    """One pass of aggregations over ``log`` (a typed log scan)."""
    row = (
        log.select(
            pl.len().alias("rows"),
            pl.col("user_id").n_unique().alias("users"),
            pl.col("video_id").n_unique().alias("videos"),
            pl.col("date").min().alias("first_date"),
            pl.col("date").max().alias("last_date"),
            *[pl.col(s).cast(pl.Float64).mean().alias(s) for s in RATE_SIGNALS],
            (pl.col("duration_ms") == 0).mean().alias("duration_zero_share"),
            ((pl.col("play_time_ms") > pl.col("duration_ms")) & (pl.col("duration_ms") > 0))
            .mean()
            .alias("replay_share"),
        )
        .collect()
        .row(0, named=True)
    )
    return LogSummary(
        rows=int(row["rows"]),
        users=int(row["users"]),
        videos=int(row["videos"]),
        first_date=int(row["first_date"]),
        last_date=int(row["last_date"]),
        rates={s: float(row[s]) for s in RATE_SIGNALS},
        duration_zero_share=float(row["duration_zero_share"]),
        replay_share=float(row["replay_share"]),
    )


def dataset_info(ds: KuaiRandDataset) -> DatasetInfo:
    """Validate and cache ``ds`` (if not done yet) and summarize it."""
    rows = ds.prepare()
    logs = {kind.value: summarize_log(ds.scan(kind)) for kind in LOG_KINDS if ds.has(kind)}

    def count(kind: FileKind, key: str) -> int | None:
        if not ds.has(kind):
            return None
        return int(ds.scan(kind).select(pl.col(key).n_unique()).collect().item())

    return DatasetInfo(
        root=str(ds.root),
        release=ds.release.value,
        present=[spec.name for spec in ds.files.present],
        missing=[spec.name for spec in ds.files.missing],
        ignored=list(ds.files.ignored),
        rows=rows,
        logs=logs,
        n_users=count(FileKind.USER_FEATURES, "user_id"),
        n_videos=count(FileKind.VIDEO_BASIC, "video_id"),
    )
