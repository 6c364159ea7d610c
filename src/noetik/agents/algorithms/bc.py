"""Behaviour cloning: a softmax policy over items fitted to the logged actions by maximum
likelihood (Pomerleau 1991, "Efficient Training of Artificial Neural Networks for Autonomous
Navigation"; the standard supervised baseline of offline RL).

    pi(a | s) = softmax_a f(s)[a],   f = ItemScorer(encoder(s, history))
    L = mean_batch [ -log pi(a_data | s) ]   (+ label smoothing, when configured)

Its minimiser is the logging policy's conditional action distribution, so ``act(...,
deterministic=False)`` samples like the logger and ``act(...)`` returns its most frequent
action. ``scores`` are the logits (``softmax(scores)`` are the probabilities).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from noetik.agents.core.base import (
    Agent,
    AgentConfig,
    Capabilities,
    ProblemSpec,
    item_scorer,
    register,
)
from noetik.agents.core.batches import Batch
from noetik.agents.networks.encoders import History, make_encoder
from noetik.agents.regularisers.terms import add_penalty, make_terms, recording
from noetik.errors import ConfigError

__all__ = ["BCAgent", "BCConfig"]


class BCAgent(Agent):
    """Softmax policy trained by cross-entropy on the logged actions."""

    config: BCConfig
    capabilities = Capabilities(policy_logits=True, offline=True, learned=True)

    def __init__(self, config: BCConfig, spec: ProblemSpec) -> None:
        super().__init__(config, spec)
        self.encoder = make_encoder(config.encoder, spec)
        self.head = item_scorer(self.encoder.out_dim, config, spec)
        opt = torch.optim.AdamW(self.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.add_optimizer("policy", opt)
        self.interp = make_terms(config.interpretability, self.encoder, config.seed)

    def scores(self, obs: Tensor, history: History | None = None) -> Tensor:
        """(B, A) float32 logits of pi(. | s)."""
        out: Tensor = self.head(self.encoder(obs, history))
        return out

    def log_probs(self, obs: Tensor, history: History | None = None) -> Tensor:
        """(B, A) float32 log pi(a | s)."""
        return torch.log_softmax(self.scores(obs, history), dim=-1)

    def update(self, batch: Batch) -> dict[str, Tensor]:
        with self.autocast(), recording(self.interp):
            logits = self.scores(batch.obs, batch.history).float()  # (B, A)
        loss = F.cross_entropy(logits, batch.action, label_smoothing=self.config.label_smoothing)
        total, interp = add_penalty(
            self.interp, loss, self.scores, batch.obs, batch.history, logits=logits
        )
        opt = self.optimizers["policy"]
        opt.zero_grad(set_to_none=True)
        total.backward()  # type: ignore[no-untyped-call]
        opt.step()
        with torch.no_grad():
            accuracy = (logits.argmax(-1) == batch.action).float().mean()
        return {"loss": loss.detach(), "accuracy": accuracy, **interp}


@register("bc")
@dataclass(frozen=True)
class BCConfig(AgentConfig):
    """Config of :class:`BCAgent`."""

    agent_class = BCAgent
    supports_interpretability = True
    weight_decay: float = 0.0
    """AdamW decoupled weight decay."""
    label_smoothing: float = 0.0
    """Cross-entropy label smoothing in [0, 1) (0: plain maximum likelihood)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.weight_decay < 0 or not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError("need weight_decay >= 0 and label_smoothing in [0, 1)")
