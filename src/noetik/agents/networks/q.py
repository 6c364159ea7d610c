"""The Q network of the value-based agents (DQN, CQL, IQL): an encoder and an item scorer.

``Q(s, ·) = ItemScorer(encoder(s, history))``: the Q value of every one of the A items, of
given actions only, or of a shared set of sampled items (the last two without the (B, A)
matrix; at catalogue scale the head is a
:class:`~noetik.agents.networks.catalogue.CatalogueScorer`). Its state-dict
keys are ``encoder.*`` and ``head.*``.
"""

from __future__ import annotations

from torch import Tensor, nn

from noetik.agents.core.base import AgentConfig, ProblemSpec, item_scorer
from noetik.agents.networks.encoders import History, make_encoder

__all__ = ["QNetwork"]


class QNetwork(nn.Module):
    """``(obs (B, D) float32, history | None) -> (B, A)`` float32 Q of every action, or
    ``(B,)`` of given ``actions`` (B,) int64."""

    def __init__(self, config: AgentConfig, spec: ProblemSpec) -> None:
        super().__init__()
        self.encoder = make_encoder(config.encoder, spec, config.catalogue)
        self.head = item_scorer(self.encoder.out_dim, config, spec)

    def forward(
        self,
        obs: Tensor,
        history: History | None = None,
        actions: Tensor | None = None,
        items: Tensor | None = None,
    ) -> Tensor:
        """(B, A) Q of every action, (B,) Q of ``actions`` (B,) int64 only, or (B, S) Q of
        ``items`` (S,) int64 shared by every row (a sampled candidate set)."""
        h = self.encoder(obs, history)
        if items is not None:
            out: Tensor = self.head.score_items(h, items)
        elif actions is not None:
            out = self.head.score_actions(h, actions)
        else:
            out = self.head(h)
        return out
