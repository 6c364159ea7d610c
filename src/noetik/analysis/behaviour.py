"""Behavioural analysis of a KuaiRand log: one call, four questions, intervals everywhere.

>>> report = analyse_behaviour(load_kuairand(None), BehaviourConfig(n_boot=500, seed=0))
>>> findings(report)            # plain-language sentences (noetik.analysis.text)
>>> behaviour_figures(report)   # matplotlib Figures (noetik.analysis.figures)

Answers, each with 95 % bootstrap intervals over users and a robust flag
(:class:`~noetik.analysis.stats.Finding`): attention over time
(:mod:`~noetik.analysis.attention`), preference structure and drift
(:mod:`~noetik.analysis.preferences`), emotional response (:mod:`~noetik.analysis.emotion`)
and habit formation (:mod:`~noetik.analysis.habits`). Works on any KuaiRand release, on the
built-in synthetic data and on any frame with the log columns (e.g. a log simulated under a
learned policy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from noetik.analysis.attention import AttentionResult, analyse_attention
from noetik.analysis.emotion import EmotionResult, analyse_emotion
from noetik.analysis.frame import n_users, prepare_log
from noetik.analysis.habits import HabitResult, analyse_habits
from noetik.analysis.preferences import PreferenceResult, analyse_preferences
from noetik.analysis.stats import UserBootstrap
from noetik.data.dataset import KuaiRandDataset
from noetik.data.schema import FileKind
from noetik.errors import ConfigError


@dataclass(frozen=True)
class BehaviourConfig:
    """What the behavioural analysis computes and how."""

    log: Literal["log_standard", "log_random"] = "log_standard"
    """Which log of a dataset to analyse (frames are analysed as given)."""
    n_boot: int = 500
    """Bootstrap replicates (users resampled with replacement); >= 2."""
    seed: int = 0
    """Seed of the bootstrap, the shuffled nulls and the user subsample."""
    alpha: float = 0.05
    """1 - coverage of the percentile intervals (0.05: 95 % intervals)."""
    precision: float = 0.25
    """A descriptive estimate (no null value) counts as robust when its interval is narrower
    than this fraction of its value."""
    session_gap_minutes: float = 30.0
    """A gap longer than this (minutes) between two interactions starts a new session."""
    min_tagged: int = 10
    """Tagged interactions a user needs to enter the concentration and drift statistics."""
    top_tags: int = 8
    """Most common tags whose shares are reported and plotted."""
    min_group_rows: int = 200
    """Interactions a tab or duration bucket needs to get its own rates."""
    min_events: int = 10
    """Events each rate of a precedence lift needs before the lift can count as robust."""
    duration_edges_s: tuple[float, ...] = (7.0, 18.0, 30.0, 60.0, 120.0, 300.0)
    """Increasing edges (seconds) of the video-duration buckets."""
    horizons_h: tuple[float, ...] = (24.0, 48.0)
    """Return horizons (hours) of the habit analysis."""
    n_bins: int = 5
    """Quantile bins of the previous session's reward in the habit curves."""
    max_users: int | None = None
    """Analyse a seeded random subset of this many users (None: every user)."""
    max_rows: int | None = None
    """Then keep, in a seeded random order, the users whose interactions fit in this many rows
    (at least one user; None: no limit). Bounds memory on large logs (KuaiRand-1K: 11.7M rows
    over 1,000 users)."""

    def __post_init__(self) -> None:
        if self.log not in ("log_standard", "log_random"):
            raise ConfigError(f"log must be 'log_standard' or 'log_random', got {self.log!r}")
        if self.n_boot < 2:
            raise ConfigError(f"n_boot must be >= 2, got {self.n_boot}")
        if not 0.0 < self.alpha < 1.0:
            raise ConfigError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.precision <= 0 or self.session_gap_minutes <= 0:
            raise ConfigError("precision and session_gap_minutes must be > 0")
        if self.min_tagged < 2 or min(self.top_tags, self.n_bins, self.min_group_rows) < 1:
            raise ConfigError("min_tagged must be >= 2; top_tags, n_bins, min_group_rows >= 1")
        if self.min_events < 0:
            raise ConfigError(f"min_events must be >= 0, got {self.min_events}")
        edges = np.asarray(self.duration_edges_s, dtype=np.float64)
        if not len(edges) or (np.diff(edges) <= 0).any():
            raise ConfigError(f"duration_edges_s must increase, got {self.duration_edges_s}")
        if not self.horizons_h or min(self.horizons_h) <= 0:
            raise ConfigError(f"horizons_h must be positive hours, got {self.horizons_h}")
        if self.max_users is not None and self.max_users < 1:
            raise ConfigError(f"max_users must be >= 1 or None, got {self.max_users}")
        if self.max_rows is not None and self.max_rows < 1:
            raise ConfigError(f"max_rows must be >= 1 or None, got {self.max_rows}")


@dataclass(frozen=True)
class BehaviourReport:
    """Everything :func:`analyse_behaviour` measured on one log."""

    source: str
    """What was analysed (data folder and log, or the frame's name)."""
    config: BehaviourConfig
    """The settings used."""
    n_rows: int
    """Interactions analysed."""
    n_users: int
    """Users analysed (the bootstrap's resampling unit)."""
    first_date: int
    """First date (YYYYMMDD) in the log."""
    last_date: int
    """Last date (YYYYMMDD) in the log."""
    attention: AttentionResult
    """When and how long people watch."""
    preferences: PreferenceResult | None
    """Tag concentration and drift (None when the log has no tags)."""
    emotion: EmotionResult
    """Like, hate, comment, follow and forward rates and their antecedents."""
    habits: HabitResult
    """Return probability and next-session length against recent rewards."""


def _subsample(frame: pl.LazyFrame, max_users: int | None, seed: int) -> pl.LazyFrame:
    if max_users is None:
        return frame
    users = frame.select(pl.col("user_id").unique().sort()).collect()["user_id"].to_numpy()
    if len(users) <= max_users:
        return frame
    keep = np.random.default_rng([seed, 3]).choice(users, size=max_users, replace=False)
    return frame.filter(pl.col("user_id").is_in(keep.tolist()))


def _row_budget(frame: pl.LazyFrame, max_rows: int | None, seed: int) -> pl.LazyFrame:
    """The users, in a seeded random order, whose rows fit in ``max_rows`` (at least one)."""
    if max_rows is None:
        return frame
    counts = frame.group_by("user_id").len().sort("user_id").collect()
    if int(counts["len"].sum()) <= max_rows:
        return frame
    order = np.random.default_rng([seed, 4]).permutation(counts.height)
    rows = counts["len"].to_numpy()[order]
    n_keep = max(1, int(np.searchsorted(np.cumsum(rows), max_rows, side="right")))
    keep = counts["user_id"].to_numpy()[order[:n_keep]]
    return frame.filter(pl.col("user_id").is_in(keep.tolist()))


def analyse_behaviour(
    dataset: KuaiRandDataset | pl.DataFrame | pl.LazyFrame,
    config: BehaviourConfig | None = None,
    *,
    videos: pl.LazyFrame | pl.DataFrame | None = None,
    name: str | None = None,
) -> BehaviourReport:
    """Analyse the log of ``dataset`` (its ``config.log``) or a frame with the log columns
    (:data:`noetik.analysis.frame.REQUIRED_COLUMNS`; a ``tags`` list column or ``videos``
    with ``video_id``/``tags`` enables the tag analysis). ``name`` labels the report."""
    config = config or BehaviourConfig()
    if isinstance(dataset, KuaiRandDataset):
        frame = dataset.interactions(FileKind(config.log))
        if videos is None and dataset.has(FileKind.VIDEO_BASIC):
            videos = dataset.videos()
        source = name or f"{dataset.root.name} ({config.log})"
    else:
        frame, source = dataset.lazy(), name or "interactions"
    frame = _row_budget(
        _subsample(frame, config.max_users, config.seed), config.max_rows, config.seed
    )
    log = prepare_log(
        frame, None if videos is None else videos.lazy(), config.session_gap_minutes, source
    )
    boot = UserBootstrap(n_users(log), config.n_boot, config.seed, config.alpha, config.precision)
    attention = analyse_attention(log, boot)
    return BehaviourReport(
        source=source,
        config=config,
        n_rows=log.height,
        n_users=boot.n_users,
        first_date=int(log["date"].min()),  # type: ignore[arg-type]
        last_date=int(log["date"].max()),  # type: ignore[arg-type]
        attention=attention,
        preferences=analyse_preferences(log, boot, config.min_tagged, config.top_tags),
        emotion=analyse_emotion(
            log, boot, config.duration_edges_s, config.min_group_rows, config.min_events
        ),
        habits=analyse_habits(log, boot, config.horizons_h, config.n_bins),
    )
