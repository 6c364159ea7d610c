"""The environment's raw history window seen from an agent: which agent actions its videos are,
which env actions it blocks, and the last ``k`` positions an encoder reads."""

from __future__ import annotations

from typing import Any

import numpy as np

from noetik.agents.core.base import Agent
from noetik.utils.arrays import IdIndex

__all__ = ["history_map", "last_k", "seen_map"]


def last_k(
    parts: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], k: int, padding: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The last ``k`` positions of a (B, K, ...) history window (the newest is last): cut when
    the environment keeps more than the agent reads, left-padded (masked) when fewer."""
    items, signals, gaps, mask = parts
    width = items.shape[1]
    if width >= k:
        return (
            items[:, width - k :],
            signals[:, width - k :],
            gaps[:, width - k :],
            mask[:, width - k :],
        )
    pad = k - width
    return (
        np.pad(items, ((0, 0), (pad, 0)), constant_values=padding),
        np.pad(signals, ((0, 0), (pad, 0), (0, 0))),
        np.pad(gaps, ((0, 0), (pad, 0))),
        np.pad(mask, ((0, 0), (pad, 0)), constant_values=False),
    )


def seen_map(envs: Any) -> np.ndarray | None:
    """(V + 1,) int64 env action of each env vocabulary index (``-1`` outside the candidate
    pool; the last entry is the history padding index), or None without video ids."""
    pool = getattr(envs, "candidate_video_ids", None)
    vocab = getattr(envs, "vocab_video_ids", None)
    if pool is None or vocab is None:
        return None
    order = np.argsort(pool)
    pos, found = IdIndex(np.asarray(pool)[order]).lookup(np.asarray(vocab))
    return np.append(np.where(found, order[pos], -1), -1).astype(np.int64)


def history_map(agent: Agent, vocab_video_ids: np.ndarray | None) -> np.ndarray | None:
    """(A_vocab + 1,) agent action of each env vocabulary index (``n_actions`` if unknown);
    the last entry maps the env's history padding index (A_vocab) to the agent's."""
    own = agent.spec.video_ids
    if vocab_video_ids is None or own is None:
        return None
    order = np.argsort(own)
    pos, found = IdIndex(own[order]).lookup(np.asarray(vocab_video_ids))
    mapped = np.where(found, order[pos], agent.spec.n_actions).astype(np.int64)
    return np.append(mapped, agent.spec.n_actions)
