"""A history Transformer over a subject's trials, with causal attention.

It is built like :class:`~noetik.agents.networks.encoders.HistoryTransformerEncoder` (its
pre-norm :class:`~noetik.agents.networks.encoders.AttentionBlock` s with explicit, inspectable
multi-head attention, a final LayerNorm), with two changes
for sequences of trials: every row is a query (the prediction of each trial is made in the
same pass), attending only to itself and earlier rows (row ``t`` has seen trials before ``t``
only), and positions enter as a learned bias per head and lag (``0 .. max_lag`` trials back,
longer lags sharing the last), so that recency can be learned and episodes of any length read.

::

    rows (B, T+1, F) -> linear -> tokens ─ L x [LN→causal MHA(+lag bias)→+, LN→FFN→+] -> LN
                                                                     -> features (B, T+1, d)

:meth:`ChoiceTransformer.attention` returns the softmax weights of every layer and head,
``(L, B, heads, T + 1, T + 1)``: ``weights[l, b, h, t, j]`` is what the prediction of trial
``t`` gave row ``j`` (trial ``j - 1``; 0 for ``j > t``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from noetik.agents.choice_nets.base import ChoiceNet
from noetik.agents.choice_nets.config import NeuralChoiceConfig
from noetik.agents.choice_nets.inputs import n_features
from noetik.agents.networks.encoders import AttentionBlock
from noetik.data.choices import TaskDesign

__all__ = ["ChoiceTransformer"]


class ChoiceTransformer(ChoiceNet):
    """Causal Transformer features + per-level heads."""

    def __init__(self, design: TaskDesign, config: NeuralChoiceConfig) -> None:
        super().__init__(design, config.hidden)
        d = config.hidden
        self.max_lag = config.max_lag
        self.inp = nn.Linear(n_features(design), d)
        self.lag_bias = nn.Parameter(torch.zeros(config.n_layers, config.n_heads, self.max_lag + 1))
        """(L, heads, max_lag + 1) learned attention bias of each lag (0 = the row itself)."""
        self.blocks = nn.ModuleList(
            AttentionBlock(d, config.n_heads, config.ffn_mult * d, config.dropout)
            for _ in range(config.n_layers)
        )
        self.norm = nn.LayerNorm(d)

    def _lags(self, t: int, device: torch.device) -> Tensor:
        """(T, T) int64 lag ``row - column`` of each query row and key row."""
        pos = torch.arange(t, device=device)
        return pos[:, None] - pos[None, :]

    def encode(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        """``(features (B, T + 1, d), weights (L, B, heads, T + 1, T + 1))`` in one pass:
        each row attends to itself and earlier rows (lag >= 0), with the learned bias of the
        lag (:attr:`lag_bias`)."""
        x = self.inp(rows)
        lag = self._lags(rows.shape[1], rows.device)
        allowed = (lag >= 0)[None, None]  # (1, 1, T, T)
        bias = self.lag_bias[:, :, lag.clamp(0, self.max_lag)]  # (L, heads, T, T)
        weights = []
        for layer, block in enumerate(self.blocks):
            x, w = block(x, allowed, bias[layer])
            weights.append(w)
        return self.norm(x), torch.stack(weights)

    def features(self, rows: Tensor) -> Tensor:
        return self.encode(rows)[0]

    def attention(self, rows: Tensor) -> Tensor:
        """(L, B, heads, T + 1, T + 1) float32 attention weights (module docstring)."""
        return self.encode(rows)[1]
