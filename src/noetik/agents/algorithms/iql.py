"""Discrete Implicit Q-Learning (Kostrikov, Nair & Levine, 2021, arXiv:2110.06169).

IQL learns from the log without ever evaluating an action the log does not contain:

* V(s) is fitted by expectile regression to the (target) twin Q of the *logged* action,
  ``L_V = E[L2^τ(min(Q̂1, Q̂2)(s, a) - V(s))]`` with ``L2^τ(u) = |τ - 1(u < 0)| u²``;
  τ → 1 makes V approach the best logged action's value, τ = 0.5 gives the behaviour value.
* Twin Q networks regress onto ``r̃ + γ (1 - done) V(s')`` (no max over actions).
* The policy is a softmax over all A items, extracted by advantage-weighted regression:
  ``L_π = -E[min(exp(β (Q̂(s, a) - V(s))), clip) log π(a | s)]``. At catalogue scale
  (``catalogue.min_actions``) ``log π`` is the sampled softmax with the log-Q correction
  (:mod:`noetik.agents.networks.sampled`); the critics never need a maximum over items.

One :meth:`IQLAgent.update` is one Adam step of V, then π, then Q (π and Q read the freshly
updated V, as in the reference implementation), then a Polyak step of the target Q networks.
Rewards are rescaled by a constant from dataset statistics (:func:`reward_scale`). The formulas
are written out in docs/algorithms.md (section "IQL").
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from noetik.agents.core.base import (
    Agent,
    AgentConfig,
    BatchSource,
    Capabilities,
    ProblemSpec,
    item_scorer,
    register,
)
from noetik.agents.core.batches import Batch
from noetik.agents.core.reward_scale import RewardScaleMode, check_reward_scale_mode, reward_scale
from noetik.agents.core.target import soft_update
from noetik.agents.networks.catalogue import CatalogueScorer
from noetik.agents.networks.encoders import EncoderConfig, History, make_encoder
from noetik.agents.networks.heads import FusedEnsemble
from noetik.agents.networks.q import QNetwork
from noetik.agents.regularisers.terms import add_penalty, make_terms, recording
from noetik.data.ondisk import DiskTransitions
from noetik.data.transitions import Transitions
from noetik.errors import ConfigError

__all__ = [
    "IQLAgent",
    "IQLConfig",
    "ValueNetwork",
    "awr_weights",
    "expectile_loss",
    "reward_scale",
]


# -- the losses, as plain functions (tested against hand-computed numbers) ----------------------
def expectile_loss(diff: Tensor, expectile: float) -> Tensor:
    """Elementwise asymmetric squared loss ``|τ - 1(u < 0)| u²`` of ``diff = u`` (any shape).

    Positive residuals (target above the prediction) weigh ``τ``, negative ones ``1 - τ``.
    """
    weight = torch.where(diff > 0, expectile, 1.0 - expectile)
    return weight * diff.square()


def awr_weights(advantage: Tensor, temperature: float, clip: float) -> Tensor:
    """``min(exp(β · advantage), clip)``, elementwise; ``β = temperature`` (inverse temperature)."""
    return torch.exp(temperature * advantage).clamp(max=clip)


def _cat_history(a: History | None, b: History | None) -> History | None:
    """Both histories stacked along the batch dimension (None when there is none)."""
    if a is None or b is None:
        return None
    return History(
        *(torch.cat([x, y]) for x, y in zip(vars(a).values(), vars(b).values(), strict=True))
    )


# -- the networks -------------------------------------------------------------------------------
class ValueNetwork(nn.Module):
    """``V(s) = linear(encoder(s, history))``: (B,) float32."""

    def __init__(self, config: IQLConfig, spec: ProblemSpec) -> None:
        super().__init__()
        self.encoder = make_encoder(config.encoder, spec, config.catalogue)
        self.head = nn.Linear(self.encoder.out_dim, 1)

    def forward(self, obs: Tensor, history: History | None = None) -> Tensor:
        out: Tensor = self.head(self.encoder(obs, history)).squeeze(-1)
        return out


# -- the agent ----------------------------------------------------------------------------------
class IQLAgent(Agent):
    """Discrete IQL: twin Q (+ targets), expectile V, softmax policy by AWR.

    Modules (all in ``state_dict``): ``encoder`` + ``actor_head`` (the policy; ``encoder`` is
    what :meth:`Agent.attention` explains), ``v_net``, ``q_net`` (a :class:`FusedEnsemble` of
    two :class:`~noetik.agents.networks.q.QNetwork`, parameters stacked (2, ...)), ``q_target``
    (its Polyak average) and the buffer ``reward_scale`` (the constant c of :func:`reward_scale`).
    """

    config: IQLConfig
    capabilities = Capabilities(q_values=True, policy_logits=True, offline=True, learned=True)
    reward_scale: Tensor
    """() float32, the reward multiplier c; set from the data by :meth:`make_source`."""

    def __init__(self, config: IQLConfig, spec: ProblemSpec) -> None:
        super().__init__(config, spec)
        self.encoder = make_encoder(config.encoder, spec, config.catalogue)
        self.actor_head = item_scorer(self.encoder.out_dim, config, spec)
        self.v_net = ValueNetwork(config, spec)
        self.q_net = FusedEnsemble([QNetwork(config, spec) for _ in range(2)])
        self.q_target = copy.deepcopy(self.q_net).requires_grad_(False)
        self.register_buffer("reward_scale", torch.tensor(1.0))
        actor_params = [*self.encoder.parameters(), *self.actor_head.parameters()]
        self.add_optimizer("actor", self.make_adam(actor_params, lr=config.actor_lr))
        self.add_optimizer("value", self.make_adam(self.v_net.parameters(), lr=config.lr))
        self.add_optimizer("q", self.make_adam(self.q_net.parameters(), lr=config.lr))
        self.interp = make_terms(config.interpretability, self.encoder, config.seed)

    # -- data -------------------------------------------------------------------------------
    def make_source(self, data: Any) -> BatchSource:
        """The replay of ``data``; also sets ``reward_scale`` from its statistics."""
        if isinstance(data, (Transitions, DiskTransitions)):
            self.reward_scale.fill_(reward_scale(data, self.config.reward_scale_mode))
        return super().make_source(data)

    # -- reading the networks (no gradient needed by callers) -------------------------------
    def scores(self, obs: Tensor, history: History | None = None) -> Tensor:
        """(B, A) float32 policy logits; ``softmax`` of them is π(· | s)."""
        out: Tensor = self.actor_head(self.encoder(obs, history))
        return out

    def catalogue_scorers(self) -> list[tuple[nn.Module, CatalogueScorer]]:
        """The policy's encoder and scorer at catalogue scale (else none)."""
        head = self.actor_head
        return [(self.encoder, head)] if isinstance(head, CatalogueScorer) else []

    def q_values(
        self, obs: Tensor, history: History | None = None, actions: Tensor | None = None
    ) -> Tensor:
        """(B, A) float32 ``min(Q1, Q2)`` of the online critics, in raw reward units, or (B,)
        of ``actions`` (B,) int64 only.

        Only logged actions are trained: values of items never logged in a state are not
        meaningful (IQL never queries them).
        """
        if actions is None and self.config.catalogue.applies(self.spec.n_actions):
            # member by member (no vmap): each reuses its cached item matrix in eval mode
            q: Tensor = self.q_net.each(obs, history).amin(dim=0)
        else:
            q = self.q_net(obs, history, actions).amin(dim=0)
        return q / self.reward_scale

    def value(self, obs: Tensor, history: History | None = None) -> Tensor:
        """(B,) float32 V(s) in raw reward units (the τ-expectile of Q over logged actions)."""
        v: Tensor = self.v_net(obs, history)
        return v / self.reward_scale

    def advantages(self, obs: Tensor, history: History | None = None) -> Tensor:
        """(B, A) float32 ``Q(s, a) - V(s)`` in raw reward units (what AWR exponentiates)."""
        return self.q_values(obs, history) - self.value(obs, history).unsqueeze(-1)

    # -- training ---------------------------------------------------------------------------
    def _step(self, names: tuple[str, ...], loss: Tensor) -> None:
        """One backward of ``loss`` and one step of each named optimizer."""
        opts = [self.optimizers[name] for name in names]
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        for opt in opts:
            opt.step()

    def update(self, batch: Batch) -> dict[str, Tensor]:
        """One step of V, π and Q on ``batch`` and a Polyak step of the targets; no host sync.

        π and Q have disjoint parameters and separate optimizers, so their losses share one
        backward pass (the gradients are those of each loss alone)."""
        cfg = self.config
        with self.autocast():
            with torch.no_grad():  # Q̂(s, a) of the logged action, by the target critics: (B,)
                q_hat = self.q_target(batch.obs, batch.history, batch.action).amin(dim=0).float()
            v = self.v_net(batch.obs, batch.history).float()
            v_loss = expectile_loss(q_hat - v, cfg.expectile).mean()
        self._step(("value",), v_loss)

        with self.autocast():
            with torch.no_grad():  # the updated V at s and s' in one pass: (2B,) -> 2 x (B,)
                both = self.v_net(
                    torch.cat([batch.obs, batch.next_obs]),
                    _cat_history(batch.history, batch.next_history),
                )
                v_now, v_next = both.float().chunk(2)
                advantage = q_hat - v_now
                weight = awr_weights(advantage, cfg.temperature, cfg.weight_clip)
                target = self.reward_scale * batch.reward + cfg.gamma * (1.0 - batch.done) * v_next
            with recording(self.interp):  # log π(a | s): exact, or sampled at catalogue scale
                h = self.encoder(batch.obs, batch.history)
                log_prob, logits = self.actor_head.train_log_prob(h, batch.action)
            actor_loss = -(weight * log_prob).mean()
            q = self.q_net(batch.obs, batch.history, batch.action).float()  # (2, B)
            q_loss = (q - target).square().mean(dim=1).sum()  # mean over B, summed over twins
        actor_total, interp = add_penalty(
            self.interp, actor_loss, self.scores, batch.obs, batch.history, logits=logits
        )
        self._step(("actor", "q"), actor_total + q_loss)

        soft_update(self.q_target.parameters(), self.q_net.parameters(), cfg.tau)
        return {
            "v_loss": v_loss.detach(),
            "q_loss": q_loss.detach(),
            "actor_loss": actor_loss.detach(),
            "v_mean": v.detach().mean(),
            "q_mean": q_hat.mean(),
            "adv_mean": advantage.mean(),
            "awr_weight_mean": weight.mean(),
            "awr_clipped": (weight >= cfg.weight_clip).float().mean(),
            "log_prob_mean": log_prob.detach().mean(),
            **interp,
        }


@register("iql")
@dataclass(frozen=True)
class IQLConfig(AgentConfig):
    """Config of :class:`IQLAgent` (the base fields: ``lr`` is the V and Q learning rate).

    Encoders: the policy, V and each twin Q have their own encoder (MLP or History
    Transformer, ``encoder``). Separate encoders are what the paper and the reference use: the
    three losses have different scales and targets (the AWR loss would otherwise reshape the
    critic's features, and V's expectile loss the policy's), the target critic must average
    its own encoder, and the policy's attention then explains the policy alone.
    """

    agent_class = IQLAgent
    supports_interpretability = True
    expectile: float = 0.7
    """τ of the expectile regression of V, in (0, 1); 0.5 = behaviour value (SARSA-like),
    → 1 = value of the best logged action (the paper uses 0.7 locomotion, 0.9 AntMaze)."""
    temperature: float = 10.0
    """β, an *inverse* temperature: AWR weights are exp(β (Q - V)); β = 0 is behaviour cloning,
    larger β is greedier (paper: 3 locomotion, 10 AntMaze). Advantages are in scaled rewards.
    10 won the sweep on synthetic KuaiRand (docs/results.md: 3, 10, 20 tried)."""
    gamma: float = 0.9
    """Discount; 0.9 (horizon about 10 decisions, the length of a KuaiRand-v0 session) won the
    sweep on synthetic KuaiRand against 0.99, 0.5 and 0 (docs/results.md)."""
    weight_clip: float = 100.0
    """Upper clip of the AWR weights exp(β A) (the reference clips at 100)."""
    tau: float = 0.005
    """Polyak rate of the target Q networks: θ̂ ← θ̂ + tau (θ - θ̂) after every update."""
    actor_lr: float = 3e-4
    """Adam learning rate of the policy (``lr`` is used for V and Q)."""
    reward_scale_mode: RewardScaleMode = "std"
    """How rewards are scaled before learning (:func:`reward_scale`): ``"std"`` r / std(r),
    ``"return_range"`` 1000 r / (max - min episode return), ``"none"``."""
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    """State encoder of each network: ``kind="mlp"`` (128-d state) or ``"transformer"``."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.expectile < 1.0:
            raise ConfigError(f"expectile must be in (0, 1), got {self.expectile}")
        if self.temperature < 0 or self.weight_clip <= 0 or self.actor_lr <= 0:
            raise ConfigError("temperature must be >= 0, weight_clip and actor_lr > 0")
        if not 0.0 < self.tau <= 1.0:
            raise ConfigError(f"tau must be in (0, 1], got {self.tau}")
        check_reward_scale_mode(self.reward_scale_mode)
