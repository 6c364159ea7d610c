"""Discrete Conservative Q-Learning (Kumar et al. 2020, "Conservative Q-Learning for Offline RL",
NeurIPS; the discrete CQL(H) variant used for Atari, as in d3rlpy's ``DiscreteCQL``).

The (double) DQN loss of :mod:`noetik.agents.algorithms.dqn` plus a penalty that pushes Q down
on every action (a soft maximum) and up on the logged action:

    L = L_DQN + alpha * sum_e mean_batch [ logsumexp_a Q_e(s, a) - Q_e(s, a_data) ]

so actions the log never shows in a state get low values and the greedy policy stays on the
data's support. ``logsumexp`` runs over all A actions (the (B, A) scores are computed once and
shared with the TD term); at catalogue scale it is the sampled, log-Q-corrected estimate
(:func:`~noetik.agents.networks.sampled.sampled_logsumexp`) over the DQN candidates.
With one critic this is exactly d3rlpy's loss; with E > 1 critics
the penalty is applied to each critic and summed (d3rlpy applies it to their mean).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from noetik.agents.algorithms.dqn import DQNAgent, DQNConfig
from noetik.agents.core.base import register
from noetik.agents.core.batches import Batch
from noetik.agents.networks.sampled import sampled_logsumexp
from noetik.errors import ConfigError

__all__ = ["CQLAgent", "CQLConfig", "conservative_penalty", "cql_objective"]


def conservative_penalty(q_all: Tensor, action: Tensor) -> Tensor:
    """``sum_e mean_b [logsumexp_a q_all[e, b, a] - q_all[e, b, action[b]]]``, a 0-d tensor.

    ``q_all`` (E, B, A) float32 Q values of every action; ``action`` (B,) int64 logged actions.
    The readable definition (the agent trains with the fused :func:`cql_objective`).
    """
    idx = action.view(1, -1, 1).expand(q_all.shape[0], -1, 1)
    data = q_all.gather(-1, idx).squeeze(-1)  # (E, B)
    return (q_all.logsumexp(-1) - data).mean(1).sum()


class _CQLObjective(torch.autograd.Function):
    """``(q (N, A), action (N,), target (N,)) -> (loss, td, penalty, mean q_data)`` for N = E B
    rows of E critics; only ``loss`` has a gradient, written out in one pass over q:

    ``dL/dq_na = (alpha / B) softmax(q_n)_a + [a = a_n] (huber'(q_n,a_n - y_n) - alpha) / B``,
    ``huber'(x) = clamp(x, -delta, delta)``. Autograd on the unfused loss builds two zero-filled
    (N, A) gradients, a scatter, a sum, the softmax and a dozen small nodes for the same numbers.
    """

    @staticmethod
    def forward(  # noqa: PLR0917 (a Function's inputs are positional)
        ctx: Any,
        q: Tensor,
        action: Tensor,
        target: Tensor,
        batch: int,
        alpha: float,
        delta: float,
    ) -> tuple[Tensor, ...]:
        picked = q.gather(1, action[:, None]).squeeze(1)  # (N,)
        lse = picked - torch.log_softmax(q, -1).gather(1, action[:, None]).squeeze(1)
        err = picked - target
        td = F.huber_loss(picked, target, reduction="sum", delta=delta) / batch
        penalty = (lse - picked).sum() / batch
        ctx.save_for_backward(q, action, err)
        ctx.consts = (batch, alpha, delta)
        metrics = (td, penalty, picked.mean())
        ctx.mark_non_differentiable(*metrics)
        return (td + alpha * penalty, *metrics)

    @staticmethod
    def backward(ctx: Any, g: Tensor, *_: Tensor) -> tuple[Tensor | None, ...]:
        q, action, err = ctx.saved_tensors
        batch, alpha, delta = ctx.consts
        grad = torch.softmax(q, -1).mul_(g * alpha / batch)  # (N, A)
        g_pick = g * (err.clamp(-delta, delta) - alpha) / batch  # (N,)
        grad.scatter_add_(1, action[:, None], g_pick[:, None])
        return grad, None, None, None, None, None


def cql_objective(
    q_all: Tensor, action: Tensor, target: Tensor, *, alpha: float, huber_delta: float
) -> tuple[Tensor, dict[str, Tensor]]:
    """``L_DQN + alpha * penalty`` and its metrics, as one autograd node.

    ``q_all`` (E, B, A) Q of every action (float32/64; lower precisions are upcast), ``action``
    (B,) int64 logged actions, ``target`` (B,) TD targets (no gradient). ``L_DQN`` is the Huber
    TD error of ``Q_e(s, a_data)``, the mean over the batch summed over critics (as
    :meth:`DQNAgent.td_loss`); ``penalty`` is :func:`conservative_penalty`.
    """
    n_members, batch, n_actions = q_all.shape
    if q_all.dtype not in (torch.float32, torch.float64):  # bf16 autocast: softmax in fp32
        q_all = q_all.float()
    loss, td, penalty, q_data = _CQLObjective.apply(  # type: ignore[no-untyped-call]
        q_all.reshape(-1, n_actions),
        action.repeat(n_members),
        target.to(q_all.dtype).repeat(n_members),
        batch,
        alpha,
        huber_delta,
    )
    return loss, {"td_loss": td, "cql_penalty": penalty, "q_data": q_data}


class CQLAgent(DQNAgent):
    """Offline discrete CQL: :class:`DQNAgent` with the conservative penalty."""

    config: CQLConfig

    def loss(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """``L_DQN + alpha * penalty`` and its metrics (alpha = 0: DQN's loss, which scores
        only the logged actions)."""
        if self.config.alpha == 0:
            return super().loss(batch)
        drawn = self.candidates()
        if drawn is not None:
            return self._sampled_loss(batch, *drawn)
        q_all: Tensor = self.q(batch.obs, batch.history)  # (E, B, A): logsumexp needs all
        target = self.td_target(batch, self.online_next(batch))  # online Q(s'): no grad
        loss, metrics = cql_objective(
            q_all,
            batch.action,
            target,
            alpha=self.config.alpha,
            huber_delta=self.config.huber_delta,
        )
        return loss, {**metrics, "target": target.float().mean()}

    def _sampled_loss(
        self, batch: Batch, items: Tensor, log_q: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """At catalogue scale: the penalty's ``logsumexp`` is the sampled, log-Q-corrected
        estimate over S = ``catalogue.negatives`` drawn ``items`` (S,) (also the candidates
        of the target's maximum)."""
        q_data = self.q(batch.obs, batch.history, batch.action).float()  # (E, B)
        q_items = self.q(batch.obs, batch.history, items=items).float()  # (E, B, S)
        hits = items[None, :] == batch.action[:, None]
        lse = sampled_logsumexp(q_data, q_items, log_q, hits)  # (E, B)
        penalty = (lse - q_data).mean(1).sum()
        target = self.td_target(batch, self.online_next(batch, items), items)
        td = self.td_loss(q_data, target)
        return td + self.config.alpha * penalty, {
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
