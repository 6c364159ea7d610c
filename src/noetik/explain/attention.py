"""Attention of the History Transformer over a decision's history, and its rank agreement with
gradient attributions (attention alone is not an explanation: Jain & Wallace 2019).

* :func:`attention_weights`: the exact softmax weights of every layer and head,
  ``(B, L, H, T, T)`` with ``T = K + 1`` tokens: K history tokens (oldest first), then the
  query token built from the state, which is the token the decision is read from.
* :func:`attention_maps`: row ``T - 1`` of those weights (what the query attends to) over the K
  history positions, ``(B, L, H, K)``; by default renormalised over the valid positions (the
  query also attends to itself, i.e. to the state: :func:`state_share` is that weight).
* :func:`attention_rollout` (Abnar & Zuidema 2020, "Quantifying Attention Flow in
  Transformers"): per layer ``Â_l = (mean_heads(A_l) + I) / 2`` (rows of softmax weights sum
  to 1; the identity accounts for the residual connection), ``R = Â_L ··· Â_1``
  (:func:`noetik.agents.regularisers.terms.attention_rollout`); the decision's rollout is the
  query's row of ``R``, ``R[T - 1, :K]``, i.e. how much of each history token flows into the
  query token through all layers; renormalised over the valid positions by default.
* :func:`attention_agreement`: Spearman rank correlation between attention and |attribution|
  over each decision's valid positions.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from noetik.agents.core.base import Agent
from noetik.agents.networks.encoders import History
from noetik.agents.regularisers.terms import attention_rollout as rollout_of_query
from noetik.errors import ConfigError

__all__ = [
    "attention_agreement",
    "attention_maps",
    "attention_rollout",
    "attention_weights",
    "rank_average",
    "state_share",
]


def attention_weights(agent: Agent, obs: Tensor, history: History | None) -> np.ndarray | None:
    """(B, L, H, K + 1, K + 1) float32 attention of ``agent``'s encoder (eval mode; the last
    row/column is the query token); None for agents without attention or without history.

    ``obs`` (B, D) float, ``history`` with K positions."""
    if history is None:
        return None
    param = next(agent.parameters(), None)
    device = param.device if param is not None else obs.device
    dtype = param.dtype if param is not None else torch.float32
    h = History(
        history.items.to(device),
        history.signals.to(device, dtype),
        history.gap_s.to(device, dtype),
        history.mask.to(device),
    )
    was = agent.training
    agent.train(False)
    try:
        with torch.inference_mode():
            weights = agent.attention(obs.to(device, dtype), h)
    finally:
        agent.train(was)
    if weights is None:
        return None
    return weights.permute(1, 0, 2, 3, 4).float().cpu().numpy()


def _normalise(rows: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """``rows`` (..., K) divided by their sum over valid positions (0 where none is valid)."""
    if mask is not None:
        rows = np.where(mask, rows, 0.0)
    total = rows.sum(axis=-1, keepdims=True)
    out: np.ndarray = np.divide(rows, total, out=np.zeros_like(rows), where=total > 0)
    return out.astype(np.float32)


def attention_maps(
    agent: Agent, obs: Tensor, history: History | None, *, normalize: bool = True
) -> np.ndarray | None:
    """(B, L, H, K) float32 attention of the query token over the K history positions, per
    layer and head; 0 at padding. ``normalize``: rows sum to 1 over the valid positions
    (else they sum to ``1 - state_share``). None for agents without attention."""
    weights = attention_weights(agent, obs, history)
    if weights is None or history is None:
        return None
    rows = weights[:, :, :, -1, :-1]
    mask = history.mask.cpu().numpy()[:, None, None, :]
    return _normalise(rows, mask) if normalize else np.where(mask, rows, 0.0).astype(np.float32)


def state_share(agent: Agent, obs: Tensor, history: History | None) -> np.ndarray | None:
    """(B, L, H) float32 weight the query token puts on itself (the state), per layer/head."""
    weights = attention_weights(agent, obs, history)
    if weights is None:
        return None
    share: np.ndarray = weights[:, :, :, -1, -1]
    return share


def attention_rollout(
    weights: np.ndarray, mask: np.ndarray | None = None, *, normalize: bool = True
) -> np.ndarray:
    """(B, K) float32 attention rollout of the query token over the history positions.

    ``weights`` (B, L, H, T, T) full attention (:func:`attention_weights`; T = K + 1, the
    query last); ``mask`` (B, K) bool valid positions. See the module docs for the formula;
    ``normalize`` renormalises the query row over the valid history positions (otherwise the
    part that flows from the query token itself, i.e. the state, is left out of the sum).
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 5 or w.shape[-1] != w.shape[-2]:
        raise ConfigError(
            "attention_rollout needs the full weights (B, L, H, K+1, K+1) of "
            f"attention_weights(), got shape {w.shape}"
        )
    # the agents' rollout (the one the attention regulariser trains), in float64
    rows = rollout_of_query(torch.tensor(w).transpose(0, 1)).numpy()
    if normalize:
        return _normalise(rows, mask)
    return (rows if mask is None else np.where(mask, rows, 0.0)).astype(np.float32)


def rank_average(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(B, K) float64 ranks 1..n_b of ``values`` among each row's valid positions (ties get
    their average rank; NaN at invalid positions). ``values`` (B, K), ``mask`` (B, K) bool."""
    v = np.asarray(values, dtype=np.float64)
    m = np.asarray(mask, dtype=bool)
    other = m[:, None, :]
    less = ((v[:, None, :] < v[:, :, None]) & other).sum(-1)
    equal = ((v[:, None, :] == v[:, :, None]) & other).sum(-1)
    return np.where(m, less + (equal + 1) / 2.0, np.nan)


def attention_agreement(
    attn: np.ndarray, attr: np.ndarray, mask: np.ndarray, *, absolute: bool = True
) -> np.ndarray:
    """(B,) float64 Spearman rank correlation of ``attn`` (B, K) and ``attr`` (B, K) over the
    valid positions ``mask`` (B, K) bool of each row; NaN with fewer than 2 valid positions or
    when one side is constant. ``absolute`` ranks ``|attr|`` (attention has no sign)."""
    attn, attr, m = np.asarray(attn), np.asarray(attr), np.asarray(mask, dtype=bool)
    if not attn.shape == attr.shape == m.shape or attn.ndim != 2:
        raise ConfigError(
            f"attn, attr and mask must be (B, K) alike, got {attn.shape}, {attr.shape}, {m.shape}"
        )
    ra = rank_average(attn, m)
    rb = rank_average(np.abs(attr) if absolute else attr, m)
    n = m.sum(axis=1)
    count = np.maximum(n, 1)[:, None]
    da = np.where(m, ra - np.where(m, ra, 0.0).sum(1, keepdims=True) / count, 0.0)
    db = np.where(m, rb - np.where(m, rb, 0.0).sum(1, keepdims=True) / count, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = (da * db).sum(1) / np.sqrt((da**2).sum(1) * (db**2).sum(1))
    return np.where(n >= 2, rho, np.nan)
