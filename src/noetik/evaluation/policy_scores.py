"""Stochastic policies from an agent's scores, comparable across agents.

Agents score videos on scales of their own: IQL's actor gives logits, the greedy-by-simulator
oracle an expected reward in [0, 1], most-popular log counts. A softmax of raw scores is
therefore nearly uniform for one agent and nearly greedy for another. When several agents are
compared through their stochastic policies (``noetik sim trust``: the same π in the simulator
and on the random-exposure log), each state's scores are first *standardised* over the
candidate videos — ``z = (s - mean) / std`` over the finite scores of the row — so that one
temperature means the same greediness for every agent: ``π = softmax(z / temperature)``.
"""

from __future__ import annotations

import torch
from torch import Tensor


def standardise_scores(scores: Tensor) -> Tensor:
    """(B, A) float64 ``scores`` (B, A) z-scored per row over its finite entries (mean 0,
    population std 1); ``-inf`` (a video the policy may not show) stays ``-inf``, and a row
    whose finite scores are all equal becomes 0 there (the uniform policy)."""
    s = scores.double()
    finite = torch.isfinite(s)
    n = finite.sum(dim=1, keepdim=True).clamp_min(1)
    values = torch.where(finite, s, torch.zeros_like(s))
    mean = values.sum(dim=1, keepdim=True) / n
    centred = torch.where(finite, s - mean, torch.zeros_like(s))
    std = (centred.square().sum(dim=1, keepdim=True) / n).sqrt()
    z = centred / torch.where(std > 0, std, torch.ones_like(std))
    return torch.where(finite, z, torch.full_like(s, float("-inf")))
