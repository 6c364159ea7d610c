"""Engagement statistics of videos, from ``video_features_statistic``: what the logs say about
a video as a whole (how often it was shown, played to the end, liked, shared ...).

At 4.37M videos most are logged once or twice in the interactions a model trains on, but the
statistic file aggregates every video's engagement; these per-show rates are the item features
that generalise best to rarely seen videos. The KuaiRand simulator's item table and the agents'
item content (:mod:`noetik.data.item_content`) both read them from here.

Columns (:data:`STAT_FEATURES`), all float32:

* ``log1p_show_cnt``;
* ``rate.<count>`` ``count / show_cnt`` clipped to [0, 2] for play, valid play, long play and
  complete play counts;
* ``play_progress`` clipped to [0, 2];
* ``log1p_permille.<count>`` ``log1p(1000 · count / show_cnt)`` for the rare signals (likes,
  comments, follows, shares, "reduce similar", collects);
* ``stat_missing`` 1 when the video has no statistic row (its other columns are 0).

Only these 13 of the file's 52 columns are read: at 4.37M videos the rest is gigabytes.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from noetik.data.dataset import KuaiRandDataset
from noetik.data.schema import FileKind

__all__ = ["STAT_FEATURES", "item_statistics"]

#: Statistic counts used as per-show rates (``count / show_cnt``).
RATE_COLUMNS = ("play_cnt", "valid_play_cnt", "long_time_play_cnt", "complete_play_cnt")
#: Rare engagement counts used as ``log1p(1000 * count / show_cnt)``.
RARE_COLUMNS = (
    "like_cnt",
    "comment_cnt",
    "follow_cnt",
    "share_cnt",
    "reduce_similar_cnt",
    "collect_cnt",
)
#: The columns of :func:`item_statistics`, in order.
STAT_FEATURES: tuple[str, ...] = (
    "log1p_show_cnt",
    *(f"rate.{c}" for c in RATE_COLUMNS),
    "play_progress",
    *(f"log1p_permille.{c}" for c in RARE_COLUMNS),
    "stat_missing",
)


def item_statistics(ds: KuaiRandDataset, ids: np.ndarray) -> np.ndarray:
    """(A, 13) float32 :data:`STAT_FEATURES` of the videos ``ids`` (A,) int64 (unscaled);
    every row is "missing" when the dataset has no statistic file."""
    if not ds.has(FileKind.VIDEO_STATISTIC):
        out = np.zeros((len(ids), len(STAT_FEATURES)), dtype=np.float32)
        out[:, -1] = 1.0
        return out
    wanted = ["video_id", "show_cnt", "play_progress", *RATE_COLUMNS, *RARE_COLUMNS]
    stats = (
        ds.scan(FileKind.VIDEO_STATISTIC).select(wanted).unique("video_id", keep="first").collect()
    )
    frame = pl.DataFrame({"video_id": ids}).join(
        stats.with_columns(pl.col("video_id").cast(pl.Int64)), on="video_id", how="left"
    )
    show = frame["show_cnt"].fill_null(0.0).to_numpy().clip(0.0)
    per_show = np.maximum(show, 1.0)
    cols = [np.log1p(show)]
    cols += [np.clip(frame[c].fill_null(0.0).to_numpy() / per_show, 0, 2) for c in RATE_COLUMNS]
    cols.append(np.clip(frame["play_progress"].fill_null(0.0).to_numpy(), 0.0, 2.0))
    cols += [np.log1p(1e3 * frame[c].fill_null(0.0).to_numpy() / per_show) for c in RARE_COLUMNS]
    cols.append(frame["show_cnt"].is_null().to_numpy().astype(np.float64))
    table: np.ndarray = np.nan_to_num(np.column_stack([c.astype(np.float32) for c in cols]))
    return table
