"""Serving any agent: exact top-k, log-partition and scores of chosen items, at any catalogue size.

Every caller that ranks items (``noetik act``, online evaluation, explanations, OPE) goes
through these functions instead of ``agent.scores(obs)``: for small action spaces they read
the (B, A) scores; at catalogue scale (:meth:`Agent.factorised_scores`) they score the items
chunk by chunk (:mod:`noetik.agents.networks.topk`) and never hold a (B, A) matrix.

* :func:`top_k` the k best actions per row, excluding given (seen) actions, over every action
  or over a candidate pool;
* :func:`candidate_scores` the (B, P) scores of a candidate pool;
* :func:`log_partition` ``logsumexp_a scores[b, a]`` (so ``log π(a | s) = score - log Z``);
* :func:`softmax_log_partition` the same of ``scores / temperature``, and
  :func:`softmax_moments` also the mean and variance of those scores under their softmax
  (the off-policy lens's tempered policies and the calibration of its behaviour model);
* :func:`seen_exclusions` the actions each user was already shown, as exclusions.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from noetik.agents.core.base import Agent
from noetik.agents.networks.encoders import History
from noetik.agents.networks.topk import (
    Chunk,
    Exclusions,
    chunked_logsumexp,
    chunked_softmax_moments,
    chunked_topk,
    dense_topk,
)

__all__ = [
    "best_actions",
    "candidate_scores",
    "log_partition",
    "seen_exclusions",
    "softmax_log_partition",
    "softmax_moments",
    "top_k",
]


def top_k(
    agent: Agent,
    obs: Tensor,
    history: History | None,
    k: int,
    *,
    exclude: Exclusions | None = None,
    candidates: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """``(scores (B, k) float32, actions (B, k) int64)``, best first, of the agent's scores.

    ``exclude`` lists positions never to return, per row: actions, or positions in
    ``candidates`` (P,) int64 when a pool is given (returned actions are then pool items).
    Fewer than k eligible items leave ``-inf`` / ``-1`` at the end.
    """
    with torch.no_grad():
        factorised = agent.factorised_scores(obs, history, candidates)
        if factorised is not None:
            query, chunks = factorised
            return chunked_topk(query, chunks, k, exclude)
        scores = agent.scores(obs, history)
        if candidates is not None:
            scores = scores.index_select(1, candidates.to(scores.device))
        values, pos = dense_topk(scores, k, exclude)
        if candidates is not None:
            pool = candidates.to(pos.device)
            pos = torch.where(pos >= 0, pool[pos.clamp_min(0)], pos)
        return values, pos


def best_actions(agent: Agent, obs: Tensor, history: History | None) -> Tensor:
    """(B,) int64 argmax of the agent's scores per row (chunked at catalogue scale)."""
    return top_k(agent, obs, history, 1)[1][:, 0]


def candidate_scores(
    agent: Agent, obs: Tensor, history: History | None, candidates: Tensor
) -> Tensor:
    """(B, P) float32 scores of ``candidates`` (P,) int64 actions only (a pool)."""
    with torch.no_grad():
        return agent.item_scores(obs, history, candidates)


def log_partition(agent: Agent, obs: Tensor, history: History | None) -> Tensor:
    """(B,) float32 ``logsumexp`` of the scores over every action."""
    with torch.no_grad():
        factorised = agent.factorised_scores(obs, history)
        if factorised is not None:
            query, chunks = factorised
            return chunked_logsumexp(query, chunks)
        return agent.scores(obs, history).float().logsumexp(-1)


def _tempered(
    agent: Agent, obs: Tensor, history: History | None, temperature: float
) -> tuple[Tensor, Iterator[Chunk]] | None:
    """The factorised ``scores / temperature`` (query and biases divided by it), or None."""
    factorised = agent.factorised_scores(obs, history)
    if factorised is None:
        return None
    query, chunks = factorised
    scale = 1.0 / temperature
    return query * scale, ((lo, ids, w, b * scale) for lo, ids, w, b in chunks)


def softmax_log_partition(
    agent: Agent, obs: Tensor, history: History | None, temperature: float = 1.0
) -> Tensor:
    """(B,) float32 ``logsumexp_a scores[b, a] / temperature``: the log-partition of the
    tempered policy ``softmax(scores / temperature)``, whose ``log π(a | s)`` is
    ``score / temperature`` minus it (:func:`log_partition` at temperature 1)."""
    with torch.no_grad():
        tempered = _tempered(agent, obs, history, temperature)
        if tempered is not None:
            return chunked_logsumexp(*tempered)
        return (agent.scores(obs, history).float() / temperature).logsumexp(-1)


def softmax_moments(
    agent: Agent, obs: Tensor, history: History | None, temperature: float = 1.0
) -> tuple[Tensor, Tensor, Tensor]:
    """``(lse, mean, var)``, each (B,) float64, of ``s = scores / temperature``:
    ``logsumexp_a s_a`` and the mean and variance of ``s`` under ``softmax(s)``, in one pass
    over the items (:func:`~noetik.agents.networks.topk.chunked_softmax_moments`)."""
    with torch.no_grad():
        tempered = _tempered(agent, obs, history, temperature)
        if tempered is not None:
            return chunked_softmax_moments(*tempered)
        s = agent.scores(obs, history).double() / temperature
        lse = s.logsumexp(-1)
        p = torch.exp(s - lse[:, None])
        mean = (p * s).sum(-1)
        return lse, mean, (p * (s - mean[:, None]) ** 2).sum(-1)


def seen_exclusions(
    user_ids: np.ndarray, log_users: np.ndarray, log_actions: np.ndarray
) -> Exclusions:
    """The actions each of ``user_ids`` (R,) was shown in a log (``log_users`` (N,),
    ``log_actions`` (N,) int64), as :class:`Exclusions` rows in the order of ``user_ids``,
    each row's actions in increasing order (so serving sorts nothing)."""
    order = np.lexsort((log_actions, log_users))
    users, actions = log_users[order], log_actions[order]
    lo = np.searchsorted(users, user_ids, side="left")
    hi = np.searchsorted(users, user_ids, side="right")
    indptr = np.concatenate([[0], np.cumsum(hi - lo)]).astype(np.int64)
    picks = [actions[a:b] for a, b in zip(lo, hi, strict=True)]
    indices = np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)
    return Exclusions(indptr, indices.astype(np.int64))
