"""Softmax and log-sum-exp over millions of items from a few sampled ones, log-Q corrected.

A policy head over A = 4.37M videos cannot compute ``log softmax`` over every item at every
update. Sampled softmax scores the logged item and S items drawn from a proposal ``Q`` shared
by the batch, and corrects each sampled score by the log of its expected count
(Bengio & Senécal 2008; Jean et al. 2015; Yi et al., RecSys 2019 "Sampling-bias-corrected
neural modeling"; Chen et al., WSDM 2019 "Top-K off-policy correction"):

    log Ẑ(s) = log( exp f(s, a) + Σ_{j ≤ S, x_j ≠ a} exp( f(s, x_j) - log(S Q(x_j)) ) )
    log π̂(a | s) = f(s, a) - log Ẑ(s)

``Ẑ`` is an unbiased estimate of ``Z = Σ_a' exp f(s, a')`` (each negative is an importance-
weighted draw of the items other than ``a``; draws equal to ``a``, "accidental hits", are
dropped), so ``log π̂`` and its gradient converge to the full softmax's as S grows. Without
the correction the sum counts item ``x`` about ``S Q(x)`` times instead of once: frequent
(popular) items are pushed down too hard and rare ones too little.

* :class:`ItemProposal` is ``Q``: the items' logged frequencies raised to ``power``, mixed with
  the uniform distribution (every item has ``Q > 0``), drawn by inverse CDF (O(S log A)).
* :func:`sampled_log_softmax` is ``log π̂`` (the policy and BC heads);
  :func:`sampled_logsumexp` is ``log Ẑ`` (CQL's soft maximum).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

__all__ = ["ItemProposal", "sampled_log_softmax", "sampled_logsumexp"]


class ItemProposal:
    """``Q(a) = (1 - eps) n_a^p / Σ n^p + eps / A`` over A items, with its log and sampler.

    ``counts`` (A,) are the items' logged frequencies (the training log's ``bincount``);
    ``power`` < 1 flattens the head (word2vec's 0.75); ``eps`` is the uniform share, so that
    every item, also those never logged, can be drawn and has a finite ``log Q``.
    """

    def __init__(self, counts: np.ndarray, power: float = 1.0, eps: float = 0.05) -> None:
        if not 0.0 < eps <= 1.0:
            raise ValueError(f"eps must be in (0, 1], got {eps}")
        weights = np.asarray(counts, dtype=np.float64) ** power
        total = weights.sum()
        n = len(weights)
        probs = (1.0 - eps) * weights / total + eps / n if total > 0 else np.full(n, 1.0 / n)
        self.n_items = n
        self.log_q = torch.from_numpy(np.log(probs).astype(np.float32))
        """(A,) float32 ``log Q(a)``."""
        cdf = np.cumsum(probs)
        self.cdf = torch.from_numpy(cdf / cdf[-1])
        """(A,) float64 cumulative distribution (last entry 1)."""
        self._device: dict[torch.device, tuple[Tensor, Tensor]] = {}

    def on(self, device: torch.device) -> tuple[Tensor, Tensor]:
        """``(cdf, log_q)`` on ``device`` (copied once per device)."""
        if device not in self._device:
            self._device[device] = (self.cdf.to(device), self.log_q.to(device))
        return self._device[device]

    def sample(self, n: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """``n`` i.i.d. draws: ``(items (n,) int64, log_q (n,) float32)``; uses torch's global
        RNG of ``device`` (seeded and checkpointed by the trainer)."""
        cdf, log_q = self.on(device)
        u = torch.rand(n, dtype=torch.float64, device=device)
        items = torch.searchsorted(cdf, u, right=True).clamp_(max=self.n_items - 1)
        return items, log_q[items]


def _corrected(negatives: Tensor, neg_log_q: Tensor, hits: Tensor | None, correct: bool) -> Tensor:
    """(B, S) negative scores minus ``log(S Q)`` (when ``correct``), ``-inf`` at hits."""
    s = negatives.shape[-1]
    out = negatives - (neg_log_q + math.log(s)) if correct else negatives
    return out.masked_fill(hits, float("-inf")) if hits is not None else out


def sampled_logsumexp(
    positive: Tensor,
    negatives: Tensor,
    neg_log_q: Tensor,
    hits: Tensor | None = None,
    *,
    correct: bool = True,
) -> Tensor:
    """(B,) ``log Ẑ``: the estimate of ``logsumexp`` over all items (module docs).

    ``positive`` (B,) scores of the logged items, ``negatives`` (B, S) scores of S sampled
    items, ``neg_log_q`` (S,) or (B, S) their ``log Q``, ``hits`` (B, S) bool where a sample
    is the row's logged item. ``correct=False`` is the uncorrected (biased) estimate.
    """
    terms = torch.cat([positive.unsqueeze(-1), _corrected(negatives, neg_log_q, hits, correct)], -1)
    return terms.logsumexp(-1)


def sampled_log_softmax(
    positive: Tensor,
    negatives: Tensor,
    neg_log_q: Tensor,
    hits: Tensor | None = None,
    *,
    correct: bool = True,
) -> Tensor:
    """(B,) ``log π̂(a | s) = f(s, a) - log Ẑ(s)`` (arguments as :func:`sampled_logsumexp`)."""
    return positive - sampled_logsumexp(positive, negatives, neg_log_q, hits, correct=correct)
