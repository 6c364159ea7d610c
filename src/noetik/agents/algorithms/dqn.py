"""DQN on logged transitions: Q-learning with a target network (Mnih et al. 2015, Nature 518).

Loss, for a batch of logged ``(s, a, r, s', done)`` and E critics ``Q_e`` (E = ``n_critics``):

    a*  = argmax_a' mean_e Q_e(s', a')           (double DQN, van Hasselt et al. 2016)
        = argmax_a' mean_e Q^-_e(s', a')         (vanilla DQN)
    y   = c * r + gamma * (1 - done) * min_e Q^-_e(s', a*)
    L   = sum_e mean_batch Huber_delta(Q_e(s, a) - y)

``Q^-`` is the target network: every ``target_update_interval`` updates it moves towards the
online network by ``tau`` (``tau = 1`` is the hard copy of the Nature DQN, ``interval = 1`` and a
small ``tau`` the Polyak average). ``c`` is the reward scale of
:mod:`noetik.agents.core.reward_scale` (the same ``reward_scale_mode`` as IQL); Q is learnt in
scaled units and ``scores`` are the online Q values averaged over critics, divided by ``c``
(raw reward units).
With double DQN the target network scores only ``a*`` (a (B,) gather of item rows, not the
(B, A) product), the same value as scoring every action and picking ``a*``. At catalogue scale
(``catalogue.min_actions``) the maximum runs over S candidates drawn from the logged-count
proposal instead of every item (:meth:`DQNAgent.candidates`).
With E > 1 the critics are one :class:`~noetik.agents.networks.heads.FusedEnsemble` (one vmapped
call).
The same conventions as d3rlpy's ``DQN`` / ``DoubleDQN`` (target reduced by ``min`` over the
ensemble, TD errors summed over members). :mod:`noetik.agents.algorithms.cql` builds on this module.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from noetik.agents.core.base import (
    Agent,
    AgentConfig,
    BatchSource,
    Capabilities,
    ProblemSpec,
    register,
)
from noetik.agents.core.batches import Batch
from noetik.agents.core.reward_scale import RewardScale, RewardScaleMode, check_reward_scale_mode
from noetik.agents.core.target import soft_update
from noetik.agents.fast.grad_clip import clip_grad_norm
from noetik.agents.networks.catalogue import CatalogueScorer, ItemTables
from noetik.agents.networks.encoders import Encoder, History
from noetik.agents.networks.heads import FusedEnsemble
from noetik.agents.networks.q import QNetwork
from noetik.data.ondisk import DiskTransitions
from noetik.data.transitions import Transitions
from noetik.errors import ConfigError

__all__ = ["DQNAgent", "DQNConfig", "QEnsemble", "ensemble_mean"]


class QEnsemble(nn.Module):
    """E Q networks: ``(obs, history) -> (E, B, A)`` (or ``(E, B)`` of given actions); a plain
    network when E = 1, else one :class:`FusedEnsemble` (stacked parameters, one vmapped call)."""

    def __init__(self, n_critics: int, config: AgentConfig, spec: ProblemSpec) -> None:
        super().__init__()
        nets = [QNetwork(config, spec) for _ in range(n_critics)]
        self.n_critics = n_critics
        self.catalogue = config.catalogue.applies(spec.n_actions)
        self.net: nn.Module = nets[0] if n_critics == 1 else FusedEnsemble(nets)

    def forward(
        self,
        obs: Tensor,
        history: History | None = None,
        actions: Tensor | None = None,
        items: Tensor | None = None,
    ) -> Tensor:
        """(E, B, A); (E, B) of ``actions`` (B,); or (E, B, S) of shared ``items`` (S,)."""
        if items is not None:
            args: tuple[Any, ...] = (obs, history, None, items)
        else:
            args = (obs, history) if actions is None else (obs, history, actions)
        if isinstance(self.net, FusedEnsemble) and len(args) == 2 and self.catalogue:
            return self.net.each(*args)  # every item, member by member (cached item matrices)
        out: Tensor = self.net(*args)
        return out.unsqueeze(0) if self.n_critics == 1 else out

    def members(self) -> list[nn.Module]:
        """The E Q networks as plain modules (views of the fused parameters when E > 1)."""
        if self.n_critics == 1:
            return [self.net]
        return list(self.net.members())  # type: ignore[operator]

    def first_encoder(self) -> Encoder:
        """The encoder of critic 0 (of its member view when the critics are fused)."""
        net = self.net if self.n_critics == 1 else self.net.member(0)  # type: ignore[operator]
        encoder = net.get_submodule("encoder")
        assert isinstance(encoder, Encoder)
        return encoder


class DQNAgent(Agent):
    """Offline (double) DQN; see the module docstring for the loss."""

    config: DQNConfig
    capabilities = Capabilities(
        q_values=True, q_scores=True, policy_logits=True, offline=True, learned=True
    )
    q: QEnsemble
    q_target: QEnsemble
    rewards: RewardScale
    n_updates: Tensor
    """() int64 updates done so far (checkpointed; drives the target update schedule)."""

    def __init__(self, config: DQNConfig, spec: ProblemSpec) -> None:
        super().__init__(config, spec)
        self.q = QEnsemble(config.n_critics, config, spec)
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)
        self.rewards = RewardScale(config.reward_scale_mode)
        self.register_buffer("n_updates", torch.zeros((), dtype=torch.int64))
        self._updates: int | None = None  # host mirror of n_updates (no sync per step)
        self.register_load_state_dict_post_hook(_forget_update_count)  # type: ignore[no-untyped-call]
        self.add_optimizer("q", self.make_adam(self.q.parameters(), lr=config.lr))

    @property
    def encoder(self) -> Encoder:
        """The encoder of critic 0 (so :meth:`Agent.attention` explains the Q function)."""
        return self.q.first_encoder()

    def make_source(self, data: Any) -> BatchSource:
        """The default replay; fits the reward scale ``c`` on the first training log."""
        if isinstance(data, (Transitions, DiskTransitions)):
            self.rewards.fit(data)
        return super().make_source(data)

    def scores(self, obs: Tensor, history: History | None = None) -> Tensor:
        """(B, A) float32 Q values (mean over critics) in raw reward units (Q / c)."""
        q: Tensor = self.q(obs, history)  # (E, B, A), in scaled reward units
        return ensemble_mean(q) / self.rewards.scale

    def catalogue_scorers(self) -> list[tuple[nn.Module, CatalogueScorer]]:
        """Each critic's encoder and scorer at catalogue scale (else none): :meth:`scores` is
        their mean Q divided by the reward scale c."""
        pairs = [(n.get_submodule("encoder"), n.get_submodule("head")) for n in self.q.members()]
        return [(e, h) for e, h in pairs if isinstance(h, CatalogueScorer)]

    def score_scale(self) -> Tensor:
        """c, the reward scale (Q is learnt in scaled units)."""
        return self.rewards.scale

    def q_values(
        self, obs: Tensor, history: History | None = None, actions: Tensor | None = None
    ) -> Tensor:
        """:meth:`scores` (B, A), or (B,) the mean Q of ``actions`` (B,) int64 only."""
        if actions is None:
            return self.scores(obs, history)
        q: Tensor = self.q(obs, history, actions)  # (E, B)
        return ensemble_mean(q) / self.rewards.scale

    # -- one update, top to bottom ---------------------------------------------------------
    def candidates(self) -> tuple[Tensor, Tensor] | None:
        """At catalogue scale, S = ``catalogue.negatives`` items drawn from the logged-count
        proposal, ``(items (S,) int64, log_q (S,) float32)``; None for small catalogues."""
        if not self.config.catalogue.applies(self.spec.n_actions):
            return None
        proposal = ItemTables.of(self.spec, self.config.catalogue).proposal
        return proposal.sample(self.config.catalogue.negatives, self.device)

    def td_target(
        self, batch: Batch, q_next_online: Tensor | None, items: Tensor | None = None
    ) -> Tensor:
        """(B,) float32 ``y = c r + gamma (1 - done) min_e Q^-_e(s', a*)`` (no grad).

        ``q_next_online`` (E, B, A): online Q of ``s'`` for double DQN, None for vanilla.
        With ``items`` (S,) (catalogue scale) the maximum runs over those candidates only
        (``q_next_online`` is then (E, B, S)): a maximum over a subset, never above the
        full one, so the target is biased low (pessimistic) rather than over-estimated.
        """
        with torch.no_grad():
            if q_next_online is None:  # vanilla: the target network picks and scores a*
                q_next: Tensor = self.q_target(
                    batch.next_obs, batch.next_history, items=items
                )  # (E, B, A) or (E, B, S)
                best = ensemble_mean(q_next).argmax(-1)  # (B,) a* (a position in items)
                idx = best.view(1, -1, 1).expand(q_next.shape[0], -1, 1)
                q_best = q_next.gather(-1, idx).squeeze(-1)  # (E, B)
            else:  # double: the target network scores only a* (no (B, A) product)
                best = ensemble_mean(q_next_online).argmax(-1)
                if items is not None:
                    best = items[best]
                q_best = self.q_target(batch.next_obs, batch.next_history, best)
            value = q_best.amin(0)  # (B,)
            reward: Tensor = self.rewards(batch.reward)  # c * r
            return reward + self.config.gamma * (1.0 - batch.done) * value

    def online_next(self, batch: Batch, items: Tensor | None = None) -> Tensor | None:
        """Online Q(s', ·) (E, B, A), or (E, B, S) of candidate ``items``, without grad for
        double DQN; None for vanilla DQN (a separate no-grad forward is cheaper than one over
        ``[s; s']`` with gradients)."""
        if not self.config.double:
            return None
        with torch.no_grad():
            q_next: Tensor = self.q(batch.next_obs, batch.next_history, items=items)
        return q_next

    def td_loss(self, q_data: Tensor, target: Tensor) -> Tensor:
        """Huber TD error of ``Q(s, a)`` (E, B) against ``target`` (B,): sum over critics of
        the mean over the batch (0-d float32)."""
        err = F.huber_loss(
            q_data.float(),
            target.float().expand_as(q_data),
            reduction="none",
            delta=self.config.huber_delta,
        )
        return err.mean(1).sum()

    def loss(self, batch: Batch) -> tuple[Tensor, dict[str, Tensor]]:
        """The objective to minimise and its metrics (CQL overrides this). Only the logged
        actions are scored with gradients (``ItemScorer.score_actions``: no (B, A) product)."""
        q_data = self.q(batch.obs, batch.history, batch.action)  # (E, B)
        drawn = self.candidates()
        items = None if drawn is None else drawn[0]
        target = self.td_target(batch, self.online_next(batch, items), items)
        td = self.td_loss(q_data, target)
        return td, {
            "td_loss": td.detach(),
            "q_data": q_data.detach().float().mean(),
            "target": target.float().mean(),
        }

    def update(self, batch: Batch) -> dict[str, Tensor]:
        with self.autocast():
            loss, metrics = self.loss(batch)
        opt = self.optimizers["q"]
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        if self.config.max_grad_norm > 0:
            norm = clip_grad_norm(self.q.parameters(), self.config.max_grad_norm)
            metrics["grad_norm"] = norm.detach()
        opt.step()
        self.sync_target()
        return {"loss": loss.detach(), **metrics}

    def sync_target(self) -> None:
        """Count the update; every ``target_update_interval`` updates, lerp by ``tau``."""
        if self._updates is None:
            self._updates = int(self.n_updates)  # one sync after creation or loading
        self._updates += 1
        self.n_updates.add_(1)
        if self._updates % self.config.target_update_interval == 0:
            soft_update(self.q_target.parameters(), self.q.parameters(), self.config.tau)


def ensemble_mean(q: Tensor) -> Tensor:
    """(B, A) mean over the critics of ``q`` (E, B, A); a view, not a pass, when E = 1."""
    return q[0] if q.shape[0] == 1 else q.mean(0)


def _forget_update_count(module: Any, _: Any) -> None:
    module._updates = None  # re-read n_updates from the loaded buffer


@register("dqn")
@dataclass(frozen=True)
class DQNConfig(AgentConfig):
    """Config of :class:`DQNAgent` (offline DQN / double DQN)."""

    agent_class = DQNAgent
    double: bool = True
    """Double DQN: the online network picks ``a*`` in ``s'``, the target network scores it."""
    n_critics: int = 1
    """E Q networks (fused when > 1): target = min over critics, TD errors summed."""
    tau: float = 0.005
    """Target update rate: ``Q^- <- Q^- + tau (Q - Q^-)`` (1.0 = hard copy)."""
    target_update_interval: int = 1
    """Updates between target updates (1 with small ``tau``: Polyak; e.g. 8000 with tau=1)."""
    huber_delta: float = 1.0
    """Huber loss threshold (quadratic below, linear above)."""
    max_grad_norm: float = 0.0
    """Clip the global gradient norm to this value; 0 disables clipping."""
    reward_scale_mode: RewardScaleMode = "std"
    """Rewards are multiplied by ``c`` fitted on the log (:mod:`noetik.agents.core.reward_scale`):
    ``"std"`` 1 / std(r), ``"return_range"`` 1000 / (max - min episode return), ``"none"``."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_critics < 1 or self.target_update_interval < 1:
            raise ConfigError("n_critics and target_update_interval must be >= 1")
        if not 0.0 < self.tau <= 1.0 or self.huber_delta <= 0 or self.max_grad_norm < 0:
            raise ConfigError("need 0 < tau <= 1, huber_delta > 0 and max_grad_norm >= 0")
        check_reward_scale_mode(self.reward_scale_mode)
