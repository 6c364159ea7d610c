"""The one translation of an environment's raw history window (``info``) into an agent's
:class:`~noetik.agents.networks.encoders.History`.

The KuaiRand env (``return_history=True``) puts the window of each user's last interactions in
``info``: ``history_items`` (B, W) int vocabulary indices (``V`` is padding), ``history_signals``
(B, W, S) float32, ``history_gap_s`` (B, W) float32 and ``history_mask`` (B, W) bool, the
newest last. An agent reads the last ``K`` positions with items as *its* action indices:

* :class:`HistoryView` — env vocabulary index -> agent action through an item table, masked and
  unknown items -> the padding id ``n_actions``, cut or left-padded to ``K``; used by on-policy
  rollouts (:mod:`~noetik.agents.onpolicy.rollout`) and by online evaluation's
  :class:`~noetik.evaluation.online.sessions.EnvPolicy`.
* :func:`pool_table` — the item table of an agent trained in the env (action ``i`` is the
  ``i``-th video of the candidate pool); :func:`history_map` — the table of an agent with video
  ids (trained offline); :func:`seen_map` — env action of each vocabulary index (to keep a
  policy off the window's videos).
* :func:`last_k` — the last ``K`` positions of a window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from noetik.agents.core.base import Agent
from noetik.agents.networks.encoders import History
from noetik.errors import ConfigError
from noetik.utils.arrays import IdIndex

__all__ = [
    "HISTORY_KEYS",
    "HistoryArrays",
    "HistoryView",
    "env_pool",
    "history_map",
    "last_k",
    "pool_table",
    "seen_map",
]

#: The ``info`` keys of the raw history window, in :class:`History` field order.
HISTORY_KEYS = ("history_items", "history_signals", "history_gap_s", "history_mask")
#: ``(items (B, K) int64, signals (B, K, S), gap_s (B, K), mask (B, K) bool)``.
HistoryArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def last_k(parts: HistoryArrays, k: int, padding: int) -> HistoryArrays:
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


def pool_table(pool: np.ndarray, n_actions: int) -> np.ndarray:
    """(max(pool) + 2,) int64 action ``i`` of vocabulary index ``pool[i]``, ``n_actions`` for
    every other index (the last entry catches every index past the pool).

    ``pool`` (A,) int64 is the sorted, unique vocabulary index of each env action."""
    pool = np.asarray(pool, dtype=np.int64)
    table = np.full(int(pool.max(initial=-1)) + 2, n_actions, dtype=np.int64)
    table[pool] = np.arange(len(pool), dtype=np.int64)
    return table


def env_pool(env: Any) -> np.ndarray | None:
    """(A,) sorted vocabulary index of each action of a KuaiRand env, else None."""
    sim = getattr(getattr(env, "unwrapped", env), "simulator", None)
    pool = getattr(getattr(sim, "item_model", None), "pool", None)
    return None if pool is None else np.asarray(pool, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class HistoryView:
    """How an agent reads the raw history window of ``info`` (see the module docs)."""

    n_actions: int
    """The agent's number of actions, also its history padding item id."""
    length: int | None = None
    """Positions K the agent reads (the last ones); None: the env's window width as is."""
    item_table: np.ndarray | None = None
    """(V + 1,) int64 agent action of each env vocabulary index (``n_actions`` if unknown;
    indices past the table read its last entry); None: the env's indices are the actions."""
    strict: bool = False
    """Raise :class:`~noetik.errors.ConfigError` when ``info`` has no window or a narrower one
    than ``length`` (on-policy training), instead of giving None or left-padding."""

    @classmethod
    def for_env(cls, env: Any, n_actions: int, length: int) -> HistoryView:
        """The strict view of an agent trained in ``env`` (its actions are the env's)."""
        pool = env_pool(env)
        table = None if pool is None else pool_table(pool, n_actions)
        return cls(n_actions, length, table, strict=True)

    @classmethod
    def for_agent(cls, agent: Agent, envs: Any) -> HistoryView:
        """The lenient view of ``agent`` (its video ids) in ``envs`` (their vocabulary ids);
        its encoder's ``history_len`` positions, or the env's whole window without one."""
        encoder = getattr(agent.config, "encoder", None)
        length = None if encoder is None else int(encoder.history_len)
        table = history_map(agent, getattr(envs, "vocab_video_ids", None))
        return cls(agent.spec.n_actions, length, table)

    def arrays(self, info: dict[str, Any]) -> HistoryArrays | None:
        """The agent's window ``(items (B, K) int64, signals, gap_s, mask)`` of ``info``, or
        None when ``info`` has none (a :attr:`strict` view raises)."""
        if not all(key in info for key in HISTORY_KEYS):
            if self.strict:
                raise ConfigError(
                    "the transformer encoder needs the env's history: "
                    "make it with return_history=True"
                )
            return None
        items, signals, gaps, mask = (np.asarray(info[key]) for key in HISTORY_KEYS)
        padding = self.n_actions
        k = items.shape[1] if self.length is None else self.length
        if self.strict and items.shape[1] < k:
            raise ConfigError(
                f"the env reports {items.shape[1]} past interactions, encoder history_len is {k}"
            )
        if self.item_table is not None:
            items = self.item_table[np.minimum(items, len(self.item_table) - 1)]
        items = np.where(mask & (items < padding), items, padding)
        return last_k((items, signals, gaps, mask), k, padding)

    def __call__(self, info: dict[str, Any], device: torch.device | str = "cpu") -> History | None:
        """:meth:`arrays` as device tensors (None when ``info`` has no window)."""
        parts = self.arrays(info)
        return None if parts is None else History.from_numpy(parts, device)
