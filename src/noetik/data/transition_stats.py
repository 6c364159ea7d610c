"""What training needs to know about a whole log without reading its rows again.

Reward scaling (``1 / std(r)``, or the range of episode returns) and the logged count of each
action describe every row of a log. For transitions in memory they are one pass over the arrays;
for transitions on disk (:mod:`noetik.data.ondisk`) each shard's statistics are computed as the
shard is written and pooled here exactly, so a training process never scans the log.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["TransitionStats"]


@dataclass(frozen=True, eq=False)
class TransitionStats:
    """Row count, reward moments, episode-return range and action counts of a log."""

    rows: int
    """Number of transitions N."""
    reward_mean: float
    """Mean reward over the N rows (0 when N = 0)."""
    reward_m2: float
    """Sum of squared deviations of the rewards from their mean (population variance times N)."""
    return_min: float
    """Smallest undiscounted episode return (0 when N = 0)."""
    return_max: float
    """Largest undiscounted episode return (0 when N = 0)."""
    action_counts: np.ndarray
    """(A,) int64 rows per action."""

    @property
    def reward_std(self) -> float:
        """Population standard deviation of the rewards (0 when N = 0)."""
        return float(np.sqrt(self.reward_m2 / self.rows)) if self.rows else 0.0

    @classmethod
    def of_arrays(
        cls, reward: np.ndarray, episode_id: np.ndarray, action: np.ndarray, n_actions: int
    ) -> TransitionStats:
        """Statistics of N rows: ``reward`` (N,) float, ``episode_id`` (N,) int (contiguous
        episodes), ``action`` (N,) int64 in ``[0, n_actions)``."""
        r = np.asarray(reward, dtype=np.float64)
        counts = np.bincount(np.asarray(action, dtype=np.int64), minlength=n_actions)
        if len(r) == 0:
            return cls(0, 0.0, 0.0, 0.0, 0.0, counts.astype(np.int64))
        ids = np.asarray(episode_id)
        starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
        returns = np.add.reduceat(r, starts)
        mean = float(r.mean())
        return cls(
            len(r),
            mean,
            float(r.var() * len(r)),
            float(returns.min()),
            float(returns.max()),
            counts.astype(np.int64),
        )

    @classmethod
    def pooled(cls, parts: Iterable[TransitionStats]) -> TransitionStats:
        """The statistics of the concatenation of logs that share no episode (Chan et al.'s
        pairwise update for the moments). ``parts`` is consumed one at a time, so it can be a
        generator reading each part from disk."""
        rows, mean, m2 = 0, 0.0, 0.0
        low, high = np.inf, -np.inf
        counts: np.ndarray | None = None
        for p in parts:
            counts = p.action_counts.copy() if counts is None else counts + p.action_counts
            if p.rows == 0:
                continue
            total = rows + p.rows
            delta = p.reward_mean - mean
            mean += delta * p.rows / total
            m2 += p.reward_m2 + delta * delta * rows * p.rows / total
            rows = total
            low, high = min(low, p.return_min), max(high, p.return_max)
        if counts is None:
            raise ValueError("no statistics to pool")
        if rows == 0:
            low = high = 0.0
        return cls(rows, mean, m2, float(low), float(high), counts.astype(np.int64))

    @classmethod
    def from_json(cls, meta: dict[str, Any], action_counts: np.ndarray) -> TransitionStats:
        """Invert :meth:`to_json`, given the ``action_counts`` stored apart."""
        return cls(
            int(meta["rows"]),
            float(meta["reward_mean"]),
            float(meta["reward_m2"]),
            float(meta["return_min"]),
            float(meta["return_max"]),
            action_counts,
        )

    def to_json(self) -> dict[str, float | int]:
        """The scalar fields (``action_counts`` is stored apart, as an array)."""
        return {
            "rows": self.rows,
            "reward_mean": self.reward_mean,
            "reward_m2": self.reward_m2,
            "return_min": self.return_min,
            "return_max": self.return_max,
        }
