"""Cut each user's interaction sequence into episodes (sessions or fixed windows).

An episode is a run of consecutive interactions of one user:

* ``mode="session"``: a new episode starts at a user's first interaction and whenever more than
  ``session_gap_minutes`` passed since the user's previous interaction (inactivity gap).
* ``mode="window"``: every ``window`` consecutive interactions of a user form an episode; the
  last window of a user may be shorter.

:func:`assign_episodes` adds ``episode_id`` (Int64, 0, 1, 2, ... in row order, unique over the
frame) and ``step`` (Int32, 0-based position in the episode). The frame must be sorted by
``user_id, time_ms`` (as :meth:`KuaiRandDataset.interactions` returns it); a DataFrame that is
not raises ValueError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeVar

import polars as pl

from noetik.errors import ConfigError

FrameT = TypeVar("FrameT", pl.DataFrame, pl.LazyFrame)

EpisodeMode = Literal["session", "window"]


@dataclass(frozen=True)
class EpisodeConfig:
    """How interactions are grouped into episodes."""

    mode: EpisodeMode = "session"
    """``"session"`` (cut at inactivity gaps) or ``"window"`` (fixed-length chunks)."""
    session_gap_minutes: float = 30.0
    """Session mode: a gap strictly longer than this (minutes) starts a new episode; > 0."""
    window: int = 10
    """Window mode: number of consecutive interactions per episode; >= 1."""

    def __post_init__(self) -> None:
        if self.mode not in ("session", "window"):
            raise ConfigError(f"episodes.mode must be 'session' or 'window', got {self.mode!r}")
        if not float(self.session_gap_minutes) > 0.0:
            raise ConfigError(
                f"episodes.session_gap_minutes must be > 0, got {self.session_gap_minutes!r}"
            )
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
            raise ConfigError(f"episodes.window must be an integer >= 1, got {self.window!r}")


def episode_start_expr(config: EpisodeConfig | None = None) -> pl.Expr:
    """Boolean expression: true where a row starts a new episode (frame sorted by user, time)."""
    config = config or EpisodeConfig()
    user = pl.col("user_id")
    new_user = (user != user.shift(1)).fill_null(True)
    if config.mode == "session":
        gap_ms = config.session_gap_minutes * 60_000.0
        gap = (pl.col("time_ms") - pl.col("time_ms").shift(1)).fill_null(0)
        return new_user | (gap > gap_ms)
    index = pl.int_range(pl.len(), dtype=pl.Int64)
    user_start = pl.when(new_user).then(index).forward_fill()
    return (index - user_start) % config.window == 0


def assign_episodes(frame: FrameT, config: EpisodeConfig | None = None) -> FrameT:
    """``frame`` with ``episode_id`` (Int64) and ``step`` (Int32) added, rows in the same order."""
    if isinstance(frame, pl.DataFrame):
        _check_sorted(frame)
    index = pl.int_range(pl.len(), dtype=pl.Int64)
    start = episode_start_expr(config)
    marked = frame.with_columns(start.alias("_episode_start"))
    return marked.with_columns(
        (pl.col("_episode_start").cast(pl.Int64).cum_sum() - 1).alias("episode_id"),
        (index - pl.when(pl.col("_episode_start")).then(index).forward_fill())
        .cast(pl.Int32)
        .alias("step"),
    ).drop("_episode_start")


def _check_sorted(frame: pl.DataFrame) -> None:
    if frame.height < 2:
        return
    user_diff = pl.col("user_id").diff()
    time_diff = pl.col("time_ms").diff()
    bad = frame.select(((user_diff < 0) | ((user_diff == 0) & (time_diff < 0))).any()).item()
    if bad:
        raise ValueError("interactions must be sorted by user_id, time_ms to assign episodes")
