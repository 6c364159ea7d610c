"""The content of every action's video: what an agent can know about an item it has rarely seen.

KuaiRand-1K has 4.37 million videos and most are shown once or twice, so an id embedding per
video cannot be learnt. :class:`ItemContent` holds, for every action of an
:class:`~noetik.data.transitions.ItemVocab`, the video's content from
``video_features_basic``:

* ``codes`` (A, C) int64 categorical codes, ``-1`` when missing: ``author_id``, ``music_id``,
  the first ``tag``, and the small vocabularies ``video_type``, ``upload_type``,
  ``music_type`` and ``visible_status`` (strings are numbered by their sorted values, so a
  code never depends on a hash seed);
* ``numeric`` (A, N) float32 standardised numbers: log duration, a flag for picture posts
  (no duration), log aspect ratio and log upload age from the basic features, then the
  engagement statistics of ``video_features_statistic`` (:mod:`noetik.data.item_stats`:
  show count, play / complete-play rates, like / share / follow rates ...), what tells a
  rarely logged video's appeal best.

Agents combine them with id embeddings kept for frequent videos only
(:mod:`noetik.agents.networks.catalogue`). Without the basic features file every code is
missing and every number 0 (likewise the statistics without their file): the agent then
falls back to ids alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from noetik.data.dataset import KuaiRandDataset
from noetik.data.item_stats import STAT_FEATURES, item_statistics
from noetik.data.schema import FileKind
from noetik.utils.arrays import IdIndex, standardise_columns

__all__ = ["BASIC_NUMERIC", "CODE_FIELDS", "NUMERIC_FIELDS", "ItemContent"]

#: Categorical content fields, in the column order of :attr:`ItemContent.codes`.
CODE_FIELDS: tuple[str, ...] = (
    "author_id",
    "music_id",
    "tag",
    "video_type",
    "upload_type",
    "music_type",
    "visible_status",
)
#: Numeric fields of the basic features.
BASIC_NUMERIC: tuple[str, ...] = ("log_duration", "no_duration", "log_aspect", "log_age_days")
#: Numeric content fields, in the column order of :attr:`ItemContent.numeric`.
NUMERIC_FIELDS: tuple[str, ...] = (*BASIC_NUMERIC, *STAT_FEATURES)


@dataclass(frozen=True, eq=False)
class ItemContent:
    """Content features of the A actions of a vocabulary (row ``a`` is action ``a``)."""

    codes: np.ndarray
    """(A, C) int64 categorical codes of :data:`CODE_FIELDS`; ``-1`` where missing."""
    numeric: np.ndarray
    """(A, N) float32 standardised :data:`NUMERIC_FIELDS` (0 where missing)."""

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    @classmethod
    def empty(cls, n_actions: int) -> ItemContent:
        """A catalogue that knows nothing about its ``n_actions`` items."""
        return cls(
            np.full((n_actions, len(CODE_FIELDS)), -1, dtype=np.int64),
            np.zeros((n_actions, len(NUMERIC_FIELDS)), dtype=np.float32),
        )

    @classmethod
    def from_dataset(cls, ds: KuaiRandDataset, video_ids: np.ndarray) -> ItemContent:
        """The content of ``video_ids`` (A,) int64 (an ItemVocab's ids) from the basic and
        statistic video features; videos a file does not list get missing codes and zero
        numbers."""
        out = cls.empty(len(video_ids))
        basic = len(BASIC_NUMERIC)
        if ds.has(FileKind.VIDEO_STATISTIC):
            out.numeric[:, basic:] = standardise_columns(item_statistics(ds, video_ids))
        if not ds.has(FileKind.VIDEO_BASIC):
            return out
        frame = (
            ds.videos()
            .select(
                pl.col("video_id").cast(pl.Int64),
                pl.col("author_id").cast(pl.Int64),
                pl.col("music_id").cast(pl.Int64),
                pl.col("tags").list.first().cast(pl.Int64).alias("tag"),
                *(_rank(c) for c in ("video_type", "upload_type")),
                pl.col("music_type").cast(pl.Int64),
                pl.col("visible_status").cast(pl.Int64),
                pl.col("video_duration").log().alias("log_duration"),
                pl.col("video_duration").is_null().cast(pl.Float32).alias("no_duration"),
                (pl.col("server_width") / pl.col("server_height")).log().alias("log_aspect"),
                (pl.col("upload_date").max() - pl.col("upload_date"))
                .dt.total_days()
                .cast(pl.Float64)
                .log1p()
                .alias("log_age_days"),
            )
            .unique("video_id", keep="first")
            .collect()
        )
        pos, found = IdIndex(np.asarray(video_ids, dtype=np.int64)).lookup(
            frame["video_id"].to_numpy()
        )
        rows = pos[found]
        codes = frame.select(CODE_FIELDS).fill_null(-1).to_numpy().astype(np.int64)
        out.codes[rows] = np.maximum(codes[found], -1)
        numeric = frame.select(BASIC_NUMERIC).to_numpy().astype(np.float64)[found]
        out.numeric[rows, :basic] = standardise_columns(numeric)
        return out


def _rank(column: str) -> pl.Expr:
    """Code of a string column: the rank of its value among the sorted distinct values."""
    return pl.col(column).rank("dense").cast(pl.Int64).alias(column)
