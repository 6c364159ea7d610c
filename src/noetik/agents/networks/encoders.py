"""State encoders shared by every agent: an MLP over the 128-d state, or a History Transformer.

Both map a batch of decisions to one feature vector per decision, ``(B, out_dim)`` float32:

* :class:`MLPEncoder` reads only the state ``obs`` (B, 128).
* :class:`HistoryTransformerEncoder` reads the user's last K interactions (:class:`History`)
  as K tokens plus one query token built from the state, and returns the query token after
  ``n_layers`` pre-norm Transformer blocks. Attention is computed explicitly, so
  :meth:`HistoryTransformerEncoder.attention` returns the exact softmax weights of every layer
  and head, ``(L, B, heads, K + 1, K + 1)`` (the query token is the last row/column).

::

    history item ids (B,K) -> item embedding ┐
    item side features  (B,K,F) -> linear ───┤
    signals (B,K,12) -> symlog -> linear ────┼─ + position ─> K tokens ─┐
    gap_s (B,K) -> log1p -> linear ──────────┘                          ├─ L x [LN→MHA→+, LN→FFN→+]
    obs (B,128) -> linear + query embedding ──────────────> query token ┘  -> LN(query) (B, d)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from torch import Tensor, nn

from noetik.agents.fast.linear import linear
from noetik.agents.networks.catalogue import CatalogueConfig, ItemTower
from noetik.data.state_layout import N_USER_DIMS, STATE_SLICES
from noetik.errors import ConfigError

if TYPE_CHECKING:
    from noetik.agents.core.base import ProblemSpec

__all__ = [
    "Encoder",
    "EncoderConfig",
    "History",
    "HistoryTransformerEncoder",
    "MLPEncoder",
    "make_encoder",
    "user_context_dims",
]


@dataclass(frozen=True)
class EncoderConfig:
    """Which encoder reads the state, and its size."""

    kind: Literal["mlp", "transformer"] = "mlp"
    """``"mlp"``: MLP over the 128-d state; ``"transformer"``: History Transformer."""
    hidden: tuple[int, ...] = (256, 256)
    """MLP hidden sizes; the output size of the MLP encoder is ``hidden[-1]``."""
    layer_norm: bool = False
    """MLP: LayerNorm after every hidden linear layer (before the ReLU)."""
    d_model: int = 64
    """Transformer width; also the output size of the Transformer encoder."""
    n_layers: int = 2
    """Number of Transformer blocks."""
    n_heads: int = 4
    """Attention heads per block (must divide ``d_model``)."""
    history_len: int = 10
    """K, the number of past interactions read by the Transformer (0 for the MLP)."""
    dropout: float = 0.0
    """Dropout on attention weights and block outputs (training mode only)."""
    causal: bool = False
    """Transformer: history token i attends only to history tokens <= i (the query sees all)."""
    state_input: Literal["all", "user_context"] = "all"
    """Transformer: the query token reads the whole state, or only its ``user.*``/``ctx.*``
    dimensions (then the history reaches the output only through attention)."""
    ffn_mult: int = 2
    """Transformer feed-forward width as a multiple of ``d_model``."""

    def __post_init__(self) -> None:
        if self.kind not in ("mlp", "transformer"):
            raise ConfigError(f"encoder.kind must be 'mlp' or 'transformer', got {self.kind!r}")
        if self.kind == "mlp" and (not self.hidden or min(self.hidden) < 1):
            raise ConfigError(f"encoder.hidden must be positive sizes, got {self.hidden}")
        if self.kind == "transformer":
            if self.d_model % self.n_heads:
                raise ConfigError(f"encoder.n_heads={self.n_heads} must divide d_model")
            if self.history_len < 1 or self.n_layers < 1:
                raise ConfigError("encoder.history_len and n_layers must be >= 1")
        if self.state_input not in ("all", "user_context"):
            raise ConfigError(f"encoder.state_input is invalid: {self.state_input!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"encoder.dropout must be in [0, 1), got {self.dropout}")

    @property
    def uses_history(self) -> bool:
        """Whether batches must carry a :class:`History`."""
        return self.kind == "transformer"


@dataclass(frozen=True)
class History:
    """The last K interactions before each decision, as tensors (oldest first, K-1 = newest)."""

    items: Tensor
    """(B, K) int64 action indices; padding is ``n_actions``."""
    signals: Tensor
    """(B, K, 12) float32 raw feedback signals (0 at padding)."""
    gap_s: Tensor
    """(B, K) float32 seconds from each past interaction to the decision (0 at padding)."""
    mask: Tensor
    """(B, K) bool, true where a past interaction exists."""

    @classmethod
    def from_numpy(
        cls,
        arrays: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
        device: torch.device | str = "cpu",
    ) -> History:
        """From the tuple of :meth:`Transitions.history` or :meth:`OnlineStates.history`."""
        items, signals, gap, mask = arrays
        return cls(
            items=torch.as_tensor(items, dtype=torch.int64, device=device),
            signals=torch.as_tensor(signals, dtype=torch.float32, device=device),
            gap_s=torch.as_tensor(gap, dtype=torch.float32, device=device),
            mask=torch.as_tensor(mask, dtype=torch.bool, device=device),
        )

    def to(self, device: torch.device | str) -> History:
        """The same history on ``device``."""
        return History(*(t.to(device) for t in (self.items, self.signals, self.gap_s, self.mask)))


def user_context_dims() -> np.ndarray:
    """(D,) int64 indices of the ``user.*`` and ``ctx.*`` dimensions of the 128-d state."""
    ctx = [np.arange(s.start, s.stop) for n, s in STATE_SLICES.items() if n.startswith("ctx.")]
    return np.concatenate([np.arange(N_USER_DIMS), *ctx]).astype(np.int64)


class Encoder(nn.Module):
    """Base class: ``forward(obs (B, D) float32, history | None) -> (B, out_dim) float32``."""

    out_dim: int
    uses_history: bool = False

    def forward(self, obs: Tensor, history: History | None = None) -> Tensor:
        raise NotImplementedError

    def attention(self, obs: Tensor, history: History) -> Tensor | None:
        """Per-layer, per-head attention weights; None for encoders without attention."""
        return None


class MLPEncoder(Encoder):
    """``obs (B, obs_dim) -> (B, hidden[-1])``: Linear [+ LayerNorm] + ReLU per hidden size."""

    _linears: tuple[nn.Linear, ...] | None

    def __init__(self, obs_dim: int, hidden: tuple[int, ...], layer_norm: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = obs_dim
        for size in hidden:
            layers.append(nn.Linear(width, size))
            if layer_norm:
                layers.append(nn.LayerNorm(size))
            layers.append(nn.ReLU())
            width = size
        self.net = nn.Sequential(*layers)
        self.out_dim = width
        # Without LayerNorm, forward runs the Linear layers through :func:`linear` directly: the
        # same arithmetic without nn.Module dispatch per layer (which dominates at small
        # batches), with large CPU products on oneDNN.
        fast = None if layer_norm else tuple(m for m in layers if isinstance(m, nn.Linear))
        object.__setattr__(self, "_linears", fast)  # references only: not registered twice

    def forward(self, obs: Tensor, history: History | None = None) -> Tensor:
        if self._linears is None:
            out: Tensor = self.net(obs)
            return out
        x = obs
        for layer in self._linears:
            x = torch.relu(linear(x, layer.weight, layer.bias))
        return x


class AttentionBlock(nn.Module):
    """Pre-norm Transformer block with explicit (inspectable) multi-head attention."""

    def __init__(self, d: int, heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.ffn = nn.Sequential(nn.Linear(d, ffn), nn.GELU(), nn.Linear(ffn, d))
        self.drop = nn.Dropout(dropout)

    def forward(
        self, x: Tensor, allowed: Tensor, bias: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """``x`` (B, T, d), ``allowed`` (B or 1, 1, T, T) bool, ``bias`` None or a finite
        additive attention bias broadcastable to (B, heads, T, T) float32 (e.g. one per head
        and lag) -> (new x, weights (B, heads, T, T))."""
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, d // self.heads).unbind(2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))  # (B, heads, T, dh)
        logits = (q @ k.transpose(-1, -2)) / math.sqrt(d // self.heads)
        if bias is not None:
            logits = logits + bias
        weights = torch.softmax(logits.masked_fill(~allowed, float("-inf")), dim=-1)
        mixed = (self.drop(weights) @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.drop(self.out(mixed))
        x = x + self.drop(self.ffn(self.norm2(x)))
        return x, weights


class HistoryTransformerEncoder(Encoder):
    """History tokens + a state query token -> Transformer -> the query token (B, d_model).

    Token ``K`` (the last) is the query; it attends to itself and every existing past
    interaction. History token ``i`` attends to itself and existing tokens (``j <= i`` when
    ``causal``, plus the query unless ``causal``). Padding tokens are never attended to by
    other tokens, so their content cannot change the output.
    """

    uses_history = True
    state_dims: Tensor
    """(D,) int64 state dimensions read by the query token."""
    item_features: Tensor
    """(A + 1, F) float32 item side features, a zero row for padding (when given)."""

    def __init__(
        self, config: EncoderConfig, spec: ProblemSpec, catalogue: CatalogueConfig | None = None
    ) -> None:
        super().__init__()
        d, k = config.d_model, config.history_len
        self.config, self.history_len, self.n_actions, self.out_dim = config, k, spec.n_actions, d
        dims = np.arange(spec.obs_dim) if config.state_input == "all" else user_context_dims()
        self.register_buffer("state_dims", torch.as_tensor(dims, dtype=torch.int64))
        self.state_in = nn.Linear(len(dims), d)
        self.query = nn.Parameter(torch.zeros(d))
        self.item_emb: nn.Module = (
            ItemTower(spec, catalogue, d)
            if catalogue is not None and catalogue.applies(spec.n_actions)
            else nn.Embedding(spec.n_actions + 1, d, padding_idx=spec.n_actions)
        )
        """Item index (B, K) -> (B, K, d): one embedding per item, or at catalogue scale the
        content + hashed-id :class:`~noetik.agents.networks.catalogue.ItemTower`."""
        self.item_feat: nn.Linear | None = None
        if spec.item_features is not None:
            feats = torch.as_tensor(spec.item_features, dtype=torch.float32)
            feats = torch.cat([feats, feats.new_zeros(1, feats.shape[1])])  # padding row
            self.register_buffer("item_features", feats)
            self.item_feat = nn.Linear(feats.shape[1], d, bias=False)
        self.signal_in = nn.Linear(12, d)
        self.gap_in = nn.Linear(1, d)
        self.position = nn.Parameter(torch.randn(k, d) * 0.02)
        ffn = config.ffn_mult * d
        self.blocks = nn.ModuleList(
            AttentionBlock(d, config.n_heads, ffn, config.dropout) for _ in range(config.n_layers)
        )
        self.norm = nn.LayerNorm(d)

    def _tokens(self, obs: Tensor, h: History) -> Tensor:
        """(B, K + 1, d) input tokens: K history tokens then the query token."""
        if h.items.shape[1] != self.history_len:
            raise ConfigError(
                f"history has K={h.items.shape[1]}, encoder expects history_len={self.history_len}"
            )
        items = h.items.clamp(0, self.n_actions)
        tok = (
            self.item_emb(items)
            + self.signal_in(torch.sign(h.signals) * torch.log1p(h.signals.abs()))
            + self.gap_in(torch.log1p(h.gap_s.clamp_min(0.0)).unsqueeze(-1))
        )
        if self.item_feat is not None:
            tok = tok + self.item_feat(self.item_features[items])
        tok = (tok + self.position) * h.mask.unsqueeze(-1)  # zero padding tokens entirely
        query = self.state_in(obs.index_select(1, self.state_dims)) + self.query
        return torch.cat([tok, query.unsqueeze(1)], dim=1)

    def _allowed(self, mask: Tensor) -> Tensor:
        """(B, 1, K + 1, K + 1) bool: which key (last dim) each query token may attend to."""
        b, k = mask.shape
        exists = torch.cat([mask, mask.new_ones(b, 1)], dim=1)  # the query token always exists
        allowed = exists[:, None, :].expand(b, k + 1, k + 1)
        eye = torch.eye(k + 1, dtype=torch.bool, device=mask.device)
        if self.config.causal:
            order = torch.ones(k + 1, k + 1, dtype=torch.bool, device=mask.device).tril()
            allowed = allowed & order
        return (allowed | eye).unsqueeze(1)

    def encode(self, obs: Tensor, history: History) -> tuple[Tensor, Tensor]:
        """``(out (B, d_model), weights (L, B, heads, K + 1, K + 1))`` in one pass."""
        x = self._tokens(obs, history)
        allowed = self._allowed(history.mask)
        weights = []
        for block in self.blocks:
            x, w = block(x, allowed)
            weights.append(w)
        return self.norm(x[:, -1]), torch.stack(weights)

    def forward(self, obs: Tensor, history: History | None = None) -> Tensor:
        if history is None:
            raise ConfigError("the transformer encoder needs the interaction history")
        return self.encode(obs, history)[0]

    def attention(self, obs: Tensor, history: History) -> Tensor:
        """(L, B, heads, K + 1, K + 1) float32 softmax weights; row/column K is the query.

        ``weights[l, b, h, K]`` is what the decision (query token) attended to in layer ``l``,
        head ``h``: one weight per past interaction (0 at padding) and one for the state.
        """
        return self.encode(obs, history)[1]


def make_encoder(
    config: EncoderConfig, spec: ProblemSpec, catalogue: CatalogueConfig | None = None
) -> Encoder:
    """The encoder chosen by ``config.kind`` for problem ``spec`` (history items through the
    catalogue representation when ``catalogue`` applies to its number of actions)."""
    if config.kind == "mlp":
        return MLPEncoder(spec.obs_dim, config.hidden, config.layer_norm)
    return HistoryTransformerEncoder(config, spec, catalogue)
