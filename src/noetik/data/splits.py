"""Temporal train/test splits of the standard log, and the random log as an unbiased test set.

Two ways to cut the standard (exposure-biased) log by time, chosen by :class:`SplitConfig`:

* ``by="global"``: one time cutoff, the ``train_fraction`` quantile of ``time_ms`` (an actual
  time of the log). Rows at or before it train, rows after it test, so every train time is
  strictly before every test time; rows sharing the cutoff time all go to train.
* ``by="user"``: each user's first ``round(train_fraction * n_user)`` interactions by time
  train (halves round up, so a user with one interaction trains on it), the rest test.

The random-exposure log (``is_rand = 1``) is never trained on: :func:`make_splits` returns it
apart as the unbiased evaluation set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeVar

import polars as pl

from noetik.data.dataset import KuaiRandDataset
from noetik.data.schema import FileKind
from noetik.errors import ConfigError

FrameT = TypeVar("FrameT", pl.DataFrame, pl.LazyFrame)

SplitBy = Literal["global", "user"]
SplitName = Literal["train", "test"]


@dataclass(frozen=True)
class SplitConfig:
    """How to cut an interaction log into train and test by time."""

    train_fraction: float = 0.8
    """Fraction of interactions (globally, or per user) that go to train; in (0, 1)."""
    by: SplitBy = "global"
    """``"global"``: one time cutoff for everyone; ``"user"``: each user's first fraction."""

    def __post_init__(self) -> None:
        if not 0.0 < float(self.train_fraction) < 1.0:
            raise ConfigError(
                f"split.train_fraction must be in (0, 1), got {self.train_fraction!r}"
            )
        if self.by not in ("global", "user"):
            raise ConfigError(f"split.by must be 'global' or 'user', got {self.by!r}")


def train_mask_expr(config: SplitConfig | None = None, cutoff_ms: int | None = None) -> pl.Expr:
    """Boolean expression, true for rows that belong to train (aliased ``is_train``).

    Needs columns ``time_ms`` (and ``user_id`` for ``by="user"``); evaluated over the whole
    frame it is applied to, in any row order. ``cutoff_ms`` gives the global cutoff computed
    elsewhere (over every shard of a log, :func:`noetik.data.ondisk.cutoff.global_cutoff`), so
    that a frame holding part of the log is cut where the whole log is.
    """
    config = config or SplitConfig()
    time = pl.col("time_ms")
    if config.by == "global":
        cutoff = (
            time.quantile(config.train_fraction, interpolation="lower")
            if cutoff_ms is None
            else pl.lit(cutoff_ms, dtype=pl.Int64)
        )
        return (time <= cutoff).alias("is_train")
    rank = time.rank("ordinal").over("user_id")
    n_train = (pl.len().over("user_id") * config.train_fraction + 0.5).floor()
    return (rank <= n_train).alias("is_train")


def temporal_split(frame: FrameT, config: SplitConfig | None = None) -> tuple[FrameT, FrameT]:
    """``(train, test)`` parts of an interactions frame (same type as ``frame``, order kept)."""
    marked = frame.with_columns(train_mask_expr(config))
    train = marked.filter(pl.col("is_train")).drop("is_train")
    test = marked.filter(~pl.col("is_train")).drop("is_train")
    return train, test


@dataclass(frozen=True)
class Splits:
    """Lazy interaction frames of one dataset, split for training and evaluation."""

    train: pl.LazyFrame
    """Standard-log interactions before the temporal cut (train on these)."""
    test: pl.LazyFrame
    """Standard-log interactions after the temporal cut (biased, in-distribution test)."""
    random: pl.LazyFrame | None
    """The whole random-exposure log (unbiased test set), None when the file is absent."""
    config: SplitConfig
    """The split that produced ``train`` and ``test``."""


def make_splits(ds: KuaiRandDataset, config: SplitConfig | None = None) -> Splits:
    """Temporal split of the standard log plus the random log kept apart, all lazy."""
    config = config or SplitConfig()
    train, test = temporal_split(ds.interactions(FileKind.LOG_STANDARD), config)
    random = ds.interactions(FileKind.LOG_RANDOM) if ds.has(FileKind.LOG_RANDOM) else None
    return Splits(train=train, test=test, random=random, config=config)
