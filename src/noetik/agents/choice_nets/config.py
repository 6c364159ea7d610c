"""The settings of a neural model of choice: architecture, training and seed, in one frozen
dataclass that is saved beside the weights as JSON.

>>> from noetik.agents.choice_nets import NeuralChoiceConfig
>>> config = NeuralChoiceConfig(kind="transformer", updates=1_000, seed=3)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from noetik.errors import ConfigError

__all__ = ["NeuralChoiceConfig"]


@dataclass(frozen=True)
class NeuralChoiceConfig:
    """How a neural model of choice is built and trained (all subjects' trials together)."""

    kind: Literal["gru", "transformer"] = "gru"
    """``"gru"``: a gated recurrent network over the trials; ``"transformer"``: causal
    self-attention over the trials (each prediction sees only earlier trials)."""
    hidden: int = 32
    """Width of the recurrent state (GRU) or of the tokens (Transformer, ``d_model``)."""
    n_layers: int = 1
    """Stacked GRU layers or Transformer blocks."""
    n_heads: int = 4
    """Transformer: attention heads per block (must divide ``hidden``)."""
    ffn_mult: int = 2
    """Transformer: feed-forward width as a multiple of ``hidden``."""
    max_lag: int = 64
    """Transformer: lags (in trials) with their own learned attention bias per head; earlier
    trials share the bias of lag ``max_lag``."""
    dropout: float = 0.0
    """Dropout on attention weights and block outputs (Transformer) or between GRU layers."""
    updates: int = 2_000
    """Most gradient updates (AdamW), each on one batch of subjects' whole episodes."""
    val_fraction: float = 0.2
    """Share of the training subjects (rounded up, at least one when there are two or more
    subjects) held out to stop early: the weights kept are those of the best validation
    cross-entropy. 0: train on every subject for all ``updates``."""
    eval_every: int = 25
    """Updates between two validation checks."""
    patience: int = 4
    """Validation checks without improvement after which training stops."""
    batch_subjects: int = 32
    """Subjects per update (all of them when there are fewer)."""
    lr: float = 3e-3
    """Adam learning rate."""
    weight_decay: float = 1e-4
    """Adam (decoupled, AdamW) weight decay."""
    grad_clip: float = 1.0
    """Largest gradient norm of an update (0: no clipping)."""
    seed: int = 0
    """Seed of the initial weights, the batches and dropout: the same seed gives the same
    weights (on the same device)."""
    device: str = "auto"
    """``"auto"`` (CUDA when available, else CPU), ``"cpu"`` or ``"cuda"``."""

    def __post_init__(self) -> None:
        if self.kind not in ("gru", "transformer"):
            raise ConfigError(f"kind must be 'gru' or 'transformer', got {self.kind!r}")
        counts = ("hidden", "n_layers", "n_heads", "ffn_mult", "max_lag", "batch_subjects")
        for name in (*counts, "eval_every", "patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an integer >= 1, got {value!r}")
        if self.updates < 0:
            raise ConfigError(f"updates must be >= 0, got {self.updates}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction must lie in [0, 1), got {self.val_fraction}")
        if self.kind == "transformer" and self.hidden % self.n_heads:
            raise ConfigError(f"n_heads={self.n_heads} must divide hidden={self.hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must lie in [0, 1), got {self.dropout}")
        if not (self.lr > 0 and self.weight_decay >= 0 and self.grad_clip >= 0):
            raise ConfigError(
                "lr must be > 0, weight_decay and grad_clip >= 0, got "
                f"{self.lr}, {self.weight_decay}, {self.grad_clip}"
            )
