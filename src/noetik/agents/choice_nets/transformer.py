"""A history Transformer over a subject's trials, with causal attention.

It mirrors :class:`~noetik.agents.networks.encoders.HistoryTransformerEncoder` (pre-norm
blocks with explicit, inspectable multi-head attention, a final LayerNorm), with two changes
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

import math

import torch
from torch import Tensor, nn

from noetik.agents.choice_nets.base import ChoiceNet
from noetik.agents.choice_nets.config import NeuralChoiceConfig
from noetik.agents.choice_nets.inputs import n_features
from noetik.data.choices import TaskDesign

__all__ = ["ChoiceTransformer"]


class _CausalBlock(nn.Module):
    """Pre-norm Transformer block (as the encoders' ``_Block``) taking an additive bias."""

    def __init__(self, d: int, heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.ffn = nn.Sequential(nn.Linear(d, ffn), nn.GELU(), nn.Linear(ffn, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
        """``x`` (B, T, d), ``bias`` (heads, T, T) float32 (-inf where not allowed) ->
        (new x, weights (B, heads, T, T))."""
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, d // self.heads).unbind(2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))  # (B, heads, T, dh)
        logits = (q @ k.transpose(-1, -2)) / math.sqrt(d // self.heads) + bias
        weights = torch.softmax(logits, dim=-1)
        mixed = (self.drop(weights) @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.drop(self.out(mixed))
        x = x + self.drop(self.ffn(self.norm2(x)))
        return x, weights


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
            _CausalBlock(d, config.n_heads, config.ffn_mult * d, config.dropout)
            for _ in range(config.n_layers)
        )
        self.norm = nn.LayerNorm(d)

    def _bias(self, t: int, device: torch.device) -> Tensor:
        """(L, heads, T, T) additive attention bias: the lag's learned bias at or below the
        diagonal, -inf above it (later rows)."""
        pos = torch.arange(t, device=device)
        lag = pos[:, None] - pos[None, :]
        bias = self.lag_bias[:, :, lag.clamp(0, self.max_lag)]
        return bias.masked_fill(lag < 0, float("-inf"))

    def encode(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        """``(features (B, T + 1, d), weights (L, B, heads, T + 1, T + 1))`` in one pass."""
        x = self.inp(rows)
        bias = self._bias(rows.shape[1], rows.device)
        weights = []
        for layer, block in enumerate(self.blocks):
            x, w = block(x, bias[layer])
            weights.append(w)
        return self.norm(x), torch.stack(weights)

    def features(self, rows: Tensor) -> Tensor:
        return self.encode(rows)[0]

    def attention(self, rows: Tensor) -> Tensor:
        """(L, B, heads, T + 1, T + 1) float32 attention weights (module docstring)."""
        return self.encode(rows)[1]
