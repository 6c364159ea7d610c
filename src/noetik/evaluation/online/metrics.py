"""Metrics of simulated sessions computed from the items shown, and their bootstrap intervals.

Every function reads the shown items as one ``(T, N)`` int64 array: row ``t`` holds the catalogue
index shown to each of the ``N`` users at step ``t`` of their session, ``-1`` once the session
has ended. No Python loop runs over users.

* :func:`distinct_fraction` — per session, distinct items / steps (the fraction of steps that
  showed an item not shown before in the session): 1 when no item repeats, ``1 / L`` when one
  item is shown ``L`` times.
* :func:`intra_similarity` — per session, the mean cosine similarity of the item feature
  vectors over all pairs of steps (a repeated item pairs with itself at similarity 1). Items
  whose feature vector is zero (e.g. a video without tags) have no direction and take part in
  no pair; a session with fewer than two such steps has no value (NaN, left out of the mean).
* :func:`coverage` — distinct items shown across all sessions / catalogue size.
* :func:`bootstrap_table` — mean and percentile bootstrap interval of per-session metrics and
  of coverage, all from the same resamples of sessions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from gymnasium import spaces

from noetik.data.features import TAG_BUCKETS
from noetik.errors import ConfigError
from noetik.utils.bootstrap import (
    Estimate,
    check_bootstrap,
    mean_replicates,
    nan_means,
    percentile_interval,
    replicates,
)

__all__ = [
    "bootstrap_table",
    "catalogue",
    "coverage",
    "distinct_fraction",
    "intra_similarity",
    "session_lengths",
]


def session_lengths(items: np.ndarray) -> np.ndarray:
    """(N,) int64 steps of each session of ``items`` (T, N) int64 (``-1`` = ended)."""
    return np.asarray((np.asarray(items) >= 0).sum(axis=0), dtype=np.int64)


def distinct_fraction(items: np.ndarray) -> np.ndarray:
    """(N,) float64 distinct items / steps of each session of ``items`` (T, N) int64
    (``-1`` = ended); NaN for a session without steps."""
    items = np.asarray(items, dtype=np.int64)
    ordered = np.sort(items, axis=0)  # the -1 of ended steps come first
    first = np.ones_like(ordered, dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    distinct = (first & (ordered >= 0)).sum(axis=0)
    lengths = session_lengths(items)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(lengths > 0, distinct / np.maximum(lengths, 1), np.nan)


def intra_similarity(items: np.ndarray, features: np.ndarray) -> np.ndarray:
    """(N,) float64 mean pairwise cosine similarity of the items of each session.

    ``items`` (T, N) int64 catalogue indices (``-1`` = ended); ``features`` (P, F) float item
    feature vectors. With ``u`` the unit vectors of a session's ``m`` steps with a non-zero
    feature vector, the mean over the ``m (m - 1) / 2`` pairs of steps is
    ``(|sum u|^2 - m) / (m (m - 1))``; NaN where ``m < 2``.
    """
    items = np.asarray(items, dtype=np.int64)
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ConfigError(f"features must be a (P, F) matrix, got shape {features.shape}")
    norms = np.linalg.norm(features, axis=1)
    unit = features / np.where(norms > 0, norms, 1.0)[:, None]
    user, step = np.nonzero(items.T >= 0)  # user-major: each user's steps are contiguous
    shown = items[step, user]
    n_users = items.shape[1]
    valid = (norms > 0)[shown]
    m = np.bincount(user, weights=valid, minlength=n_users)
    total = np.zeros((n_users, features.shape[1]))
    if len(user):
        counts = np.bincount(user, minlength=n_users)
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        has = counts > 0
        total[has] = np.add.reduceat(unit[shown], starts[has], axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        sim = ((total**2).sum(axis=1) - m) / (m * (m - 1.0))
    return np.where(m >= 2, np.clip(sim, -1.0, 1.0), np.nan)


def coverage(items: np.ndarray, n_items: int) -> float:
    """Distinct items shown in ``items`` (T, N) int64 (``-1`` = ended) / ``n_items``."""
    if n_items < 1:
        raise ConfigError(f"n_items must be >= 1, got {n_items}")
    items = np.asarray(items)
    return float(len(np.unique(items[items >= 0])) / n_items)


def _covered(drawn: np.ndarray, pair_user: np.ndarray, item_starts: np.ndarray) -> np.ndarray:
    """(B,) distinct items shown to the drawn sessions: ``drawn`` (B, N) bool, the distinct
    (session, item) pairs sorted by item as ``pair_user`` (K,) and ``item_starts`` (I,)."""
    if not len(pair_user):
        return np.zeros(drawn.shape[0])
    seen = np.logical_or.reduceat(drawn[:, pair_user], item_starts, axis=1)
    return np.asarray(seen.sum(axis=1), dtype=np.float64)


def bootstrap_table(
    per_session: Mapping[str, np.ndarray],
    items: np.ndarray | None = None,
    n_items: int | None = None,
    *,
    level: float = 0.95,
    n_boot: int = 2_000,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """``{metric: {"mean", "low", "high"}}`` from ``n_boot`` resamples of the N sessions.

    ``per_session`` maps names to (N,) float64 values (NaN = no value: left out of the mean
    and of every resample's mean). With ``items`` (T, N) int64 and ``n_items``, ``coverage``
    is added: each resample's coverage is that of the sessions it drew. A resample holds only
    about 63 % distinct sessions, so its coverage is biased low; the coverage interval is the
    percentile interval of the resamples shifted by ``observed - mean of the resamples``,
    clipped to [0, 1].
    Every metric uses the same resamples, drawn from ``seed``.
    """
    check_bootstrap(n_boot, level)
    names = list(per_session)
    values = np.column_stack([np.asarray(per_session[k], dtype=np.float64) for k in names])
    n = values.shape[0]
    if n < 1:
        raise ConfigError("bootstrap_table: no sessions to summarise")
    means = mean_replicates(values)
    pairs = None
    if items is not None and n_items is not None:
        pairs = _session_item_pairs(np.asarray(items, dtype=np.int64))

    def statistic(counts: np.ndarray) -> np.ndarray:
        out = means(counts)
        return out if pairs is None else np.column_stack([out, _covered(counts > 0, *pairs)])

    boot = replicates(statistic, n, n_boot=n_boot, seed=seed)
    out = {
        name: Estimate(float(mean), *percentile_interval(boot[:, j], level)).as_dict()
        for j, (name, mean) in enumerate(zip(names, nan_means(values)[0], strict=True))
    }
    if pairs is not None and n_items is not None:
        observed = coverage(np.asarray(items), n_items)
        counts = boot[:, -1]
        low, high = percentile_interval(counts + (observed * n_items - counts.mean()), level)
        low, high = max(low / n_items, 0.0), min(high / n_items, 1.0)  # a share: within [0, 1]
        out["coverage"] = Estimate(observed, low, high).as_dict()
    return out


def _session_item_pairs(items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct (session, item) pairs of ``items`` (T, N), sorted by item: the sessions
    (K,) int64 and the start (I,) int64 of each distinct item's run of pairs."""
    step, user = np.nonzero(items >= 0)
    n_users = items.shape[1]
    keys = np.unique(items[step, user] * n_users + user)  # sorted by item, then session
    item, pair_user = np.divmod(keys, n_users)
    starts = np.flatnonzero(np.r_[True, item[1:] != item[:-1]]) if len(item) else item
    return pair_user.astype(np.int64), starts.astype(np.int64)


def catalogue(envs: Any) -> tuple[int | None, np.ndarray | None]:
    """``(catalogue size, (P, F) float64 item features or None)`` of an environment whose
    ``Discrete`` action indexes a fixed catalogue; ``(None, None)`` otherwise.

    KuaiRand-v0: the pool's 24 multi-hot tag buckets; RECEnv: the item feature vectors.
    """
    space = getattr(envs, "single_action_space", getattr(envs, "action_space", None))
    if not isinstance(space, spaces.Discrete):
        return None, None
    n = int(space.n)
    item_model = getattr(getattr(envs, "simulator", None), "item_model", None)
    items = getattr(item_model, "items", None)
    features = getattr(items, "features", None)
    if not isinstance(features, np.ndarray) or features.ndim != 2 or len(features) != n:
        return n, None
    from noetik.simulators.kuairand.parts import CandidatePool

    if isinstance(item_model, CandidatePool):
        features = features[:, :TAG_BUCKETS]
    return n, np.asarray(features, dtype=np.float64)
