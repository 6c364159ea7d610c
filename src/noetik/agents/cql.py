"""Discrete Conservative Q-Learning (Kumar et al. 2020, "Conservative Q-Learning for Offline RL",
NeurIPS; the discrete CQL(H) variant used for Atari, as in d3rlpy's ``DiscreteCQL``).

The (double) DQN loss of :mod:`noetik.agents.dqn` plus a penalty that pushes Q down on every
action (a soft maximum) and up on the logged action:

    L = L_DQN + alpha * sum_e mean_batch [ logsumexp_a Q_e(s, a) - Q_e(s, a_data) ]

so actions the log never shows in a state get low values and the greedy policy stays on the
data's support. ``logsumexp`` runs over all A actions (the (B, A) scores are computed once and
shared with the TD term). With one critic this is exactly d3rlpy's loss; with E > 1 critics
the penalty is applied to each critic and summed (d3rlpy applies it to their mean).
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from noetik.agents.base import register
from noetik.agents.batches import Batch
from noetik.agents.dqn import DQNAgent, DQNConfig
from noetik.errors import ConfigError

__all__ = ["CQLAgent", "CQLConfig", "conservative_penalty"]


def conservative_penalty(q_all: Tensor, action: Tensor) -> Tensor:
    """``sum_e mean_b [logsumexp_a q_all[e, b, a] - q_all[e, b, action[b]]]``, a 0-d tensor.

    ``q_all`` (E, B, A) float32 Q values of every action; ``action`` (B,) int64 logged actions.
    """
    soft_max = q_all.logsumexp(-1)  # (E, B)
    idx = action.view(1, -1, 1).expand(q_all.shape[0], -1, 1)
    data = q_all.gather(-1, idx).squeeze(-1)  # (E, B)
    return (soft_max - data).mean(1).sum()


class CQLAgent(DQNAgent):
    """Offline discrete CQL: :class:`DQNAgent` with the conservative penalty."""

    config: CQLConfig

    def loss(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """``L_DQN + alpha * penalty`` and its metrics (alpha = 0: DQN's loss, which scores
        only the logged actions)."""
        if self.config.alpha == 0:
            return super().loss(batch)
        q_all: Tensor = self.q(batch.obs, batch.history)  # (E, B, A): logsumexp needs all
        target = self.td_target(batch, self.online_next(batch))  # online Q(s'): no grad
        idx = batch.action.view(1, -1, 1).expand(q_all.shape[0], -1, 1)
        q_data = q_all.gather(-1, idx).squeeze(-1)  # (E, B)
        td = self.td_loss(q_data, target)
        penalty = conservative_penalty(q_all.float(), batch.action)
        loss = td + self.config.alpha * penalty
        return loss, {
            "td_loss": td.detach(),
            "cql_penalty": penalty.detach(),
            "q_data": q_data.detach().float().mean(),
            "target": target.float().mean(),
        }


@register("cql")
@dataclass(frozen=True)
class CQLConfig(DQNConfig):
    """Config of :class:`CQLAgent` (every :class:`DQNConfig` field, plus ``alpha``)."""

    agent_class = CQLAgent
    alpha: float = 1.0
    """Weight of the conservative penalty (0 gives DQN back)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.alpha < 0:
            raise ConfigError(f"alpha must be >= 0, got {self.alpha}")
