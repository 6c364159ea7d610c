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
from typing import Any

import torch
from torch import Tensor

from noetik.agents.base import register
from noetik.agents.batches import Batch
from noetik.agents.dqn import DQNAgent, DQNConfig
from noetik.errors import ConfigError

__all__ = ["CQLAgent", "CQLConfig", "conservative_penalty", "logsumexp_and_pick"]


class _LogSumExpAndPick(torch.autograd.Function):
    """``(q (N, A), action (N,)) -> (logsumexp_a q (N,), q[n, action[n]] (N,))`` with one
    backward pass: ``dq = softmax(q) * g_lse[:, None] + onehot(action) * g_pick[:, None]``.

    Autograd would build the gradients of the two outputs separately (two zero-filled (N, A)
    buffers, a scatter, a sum and the softmax); this writes the same sum in one pass over q.
    """

    @staticmethod
    def forward(ctx: Any, q: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
        log_p = torch.log_softmax(q, -1)  # (N, A): q - logsumexp(q)
        picked = q.gather(1, action[:, None]).squeeze(1)  # (N,)
        lse = picked - log_p.gather(1, action[:, None]).squeeze(1)  # (N,) logsumexp(q)
        ctx.save_for_backward(q, action)
        return lse, picked

    @staticmethod
    def backward(ctx: Any, g_lse: Tensor, g_pick: Tensor) -> tuple[Tensor, None]:
        q, action = ctx.saved_tensors
        grad = torch.softmax(q, -1).mul_(g_lse[:, None])  # (N, A) softmax(q) * g_lse
        grad.scatter_add_(1, action[:, None], g_pick[:, None])
        return grad, None


def logsumexp_and_pick(q_all: Tensor, action: Tensor) -> tuple[Tensor, Tensor]:
    """``(logsumexp_a q_all[e, b, a], q_all[e, b, action[b]])``, each (E, B) float32.

    ``q_all`` (E, B, A) Q values of every action (float32/64; lower precisions are upcast);
    ``action`` (B,) int64.
    Differentiable, with one fused backward pass (see :class:`_LogSumExpAndPick`).
    """
    n_members, batch, n_actions = q_all.shape
    if q_all.dtype not in (torch.float32, torch.float64):  # bf16 autocast: softmax in fp32
        q_all = q_all.float()
    flat = q_all.reshape(-1, n_actions)  # (E * B, A)
    lse, picked = _LogSumExpAndPick.apply(flat, action.repeat(n_members))  # type: ignore[no-untyped-call]
    return lse.view(n_members, batch), picked.view(n_members, batch)


def conservative_penalty(q_all: Tensor, action: Tensor) -> Tensor:
    """``sum_e mean_b [logsumexp_a q_all[e, b, a] - q_all[e, b, action[b]]]``, a 0-d tensor.

    ``q_all`` (E, B, A) float32 Q values of every action; ``action`` (B,) int64 logged actions.
    """
    lse, picked = logsumexp_and_pick(q_all, action)
    return (lse - picked).mean(1).sum()


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
        lse, q_data = logsumexp_and_pick(q_all, batch.action)  # (E, B) each
        td = self.td_loss(q_data, target)
        penalty = (lse - q_data).mean(1).sum()
        loss = td + self.config.alpha * penalty
        return loss, {
            "td_loss": td.detach(),
            "cql_penalty": penalty.detach(),
            "q_data": q_data.detach().mean(),
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
