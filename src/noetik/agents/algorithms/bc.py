"""Behaviour cloning: a softmax policy over items fitted to the logged actions by maximum
likelihood (Pomerleau 1991, "Efficient Training of Artificial Neural Networks for Autonomous
Navigation"; the standard supervised baseline of offline RL).

    pi(a | s) = softmax_a f(s)[a],   f = ItemScorer(encoder(s, history))
    L = mean_batch [ -log pi(a_data | s) ]   (+ label smoothing, when configured)

At catalogue scale (``catalogue.min_actions``) ``log pi`` is the sampled softmax with the
log-Q correction (:mod:`noetik.agents.networks.sampled`); label smoothing is then refused.

Its minimiser is the logging policy's conditional action distribution, so ``act(...,
deterministic=False)`` samples like the logger and ``act(...)`` returns its most frequent
action. ``scores`` are the logits (``softmax(scores)`` are the probabilities).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from noetik.agents.core.base import (
    Agent,
    AgentConfig,
    Capabilities,
    ProblemSpec,
    item_scorer,
    register,
)
from noetik.agents.core.batches import Batch
from noetik.agents.networks.catalogue import CatalogueScorer
from noetik.agents.networks.encoders import History, make_encoder
from noetik.agents.networks.sampled import sampled_log_softmax
from noetik.agents.regularisers.terms import add_penalty, make_terms, recording
from noetik.errors import ConfigError

__all__ = ["BCAgent", "BCConfig"]


class BCAgent(Agent):
    """Softmax policy trained by cross-entropy on the logged actions."""

    config: BCConfig
    capabilities = Capabilities(policy_logits=True, offline=True, learned=True)

    def __init__(self, config: BCConfig, spec: ProblemSpec) -> None:
        super().__init__(config, spec)
        self.encoder = make_encoder(config.encoder, spec, config.catalogue)
        self.head = item_scorer(self.encoder.out_dim, config, spec)
        if isinstance(self.head, CatalogueScorer) and config.label_smoothing > 0:
            raise ConfigError("label_smoothing needs the full softmax; use 0 at catalogue scale")
        opt = torch.optim.AdamW(self.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.add_optimizer("policy", opt)
        self.interp = make_terms(config.interpretability, self.encoder, config.seed)

    def scores(self, obs: Tensor, history: History | None = None) -> Tensor:
        """(B, A) float32 logits of pi(. | s)."""
        out: Tensor = self.head(self.encoder(obs, history))
        return out

    def catalogue_scorers(self) -> list[tuple[nn.Module, CatalogueScorer]]:
        """The policy's encoder and scorer at catalogue scale (else none)."""
        head = self.head
        return [(self.encoder, head)] if isinstance(head, CatalogueScorer) else []

    def log_probs(self, obs: Tensor, history: History | None = None) -> Tensor:
        """(B, A) float32 log pi(a | s)."""
        return torch.log_softmax(self.scores(obs, history), dim=-1)

    def update(self, batch: Batch) -> dict[str, Tensor]:
        if isinstance(self.head, CatalogueScorer):
            return self._sampled_update(batch, self.head)
        with self.autocast(), recording(self.interp):
            logits = self.scores(batch.obs, batch.history).float()  # (B, A)
        loss = F.cross_entropy(logits, batch.action, label_smoothing=self.config.label_smoothing)
        total, interp = add_penalty(
            self.interp, loss, self.scores, batch.obs, batch.history, logits=logits
        )
        self._step(total)
        with torch.no_grad():
            accuracy = (logits.argmax(-1) == batch.action).float().mean()
        return {"loss": loss.detach(), "accuracy": accuracy, **interp}

    def _sampled_update(self, batch: Batch, head: CatalogueScorer) -> dict[str, Tensor]:
        """At catalogue scale: ``-mean log π̂(a | s)``, the sampled softmax with the log-Q
        correction; ``accuracy`` is the share of rows whose logged item outscores every
        sampled one."""
        with self.autocast():
            h = self.encoder(batch.obs, batch.history)
            positive, negatives, log_q, hits = head.sampled(h, batch.action)
        positive, negatives = positive.float(), negatives.float()
        loss = -sampled_log_softmax(positive, negatives, log_q, hits).mean()
        self._step(loss)
        with torch.no_grad():
            best_other = negatives.masked_fill(hits, float("-inf")).amax(-1)
            accuracy = (positive > best_other).float().mean()
        return {"loss": loss.detach(), "accuracy": accuracy}

    def _step(self, loss: Tensor) -> None:
        opt = self.optimizers["policy"]
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        opt.step()


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
