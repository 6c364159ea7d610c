"""PPO: clipped-surrogate policy optimisation on rollouts of a VectorEnv, with GAE advantages.

Schulman et al. 2017, "Proximal Policy Optimization Algorithms"; advantages by GAE(lambda),
Schulman et al. 2016, "High-Dimensional Continuous Control Using Generalized Advantage
Estimation". Conventions follow CleanRL's ``ppo.py``: per-minibatch advantage normalisation,
optionally clipped value loss, entropy bonus, global gradient clipping, linear learning-rate
annealing, optional early stop on the approximate KL.

One trainer step = one rollout of ``n_steps`` x ``num_envs`` decisions (see
:mod:`noetik.agents.onpolicy.rollout` for the autoreset rules) + ``update_epochs`` passes of
minibatches of ``batch_size`` valid decisions.

>>> agent = PPOConfig(n_steps=128, batch_size=256).create(ProblemSpec.from_env(envs))
>>> agent.fit(envs, steps=1000)                # 1000 rollouts
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from noetik.agents.core.base import ProblemSpec, register
from noetik.agents.fast.ppo_objective import PPOCoefs, ppo_objective
from noetik.agents.fast.threads import with_intra_op_threads
from noetik.agents.networks.encoders import History
from noetik.agents.onpolicy.rollout import (
    ActorCriticAgent,
    ActorCriticConfig,
    Rollout,
    gae,
    take_history,
    valid_rows,
)
from noetik.agents.regularisers.terms import add_penalty, make_terms, metric_names, recording
from noetik.errors import ConfigError

__all__ = ["PPOAgent", "PPOConfig"]


class PPOAgent(ActorCriticAgent):
    """Softmax policy over items + value head, trained by PPO-clip with GAE."""

    config: PPOConfig

    def __init__(self, config: PPOConfig, spec: ProblemSpec) -> None:
        super().__init__(config, spec)
        self.interp = make_terms(config.interpretability, self.encoder, config.seed)

    @with_intra_op_threads
    def update(self, batch: Rollout) -> dict[str, Tensor]:
        """GAE on the rollout, then ``update_epochs`` x minibatch clipped-surrogate steps.

        The valid rows are packed once into one (M, D + 5) float32 table (obs, action, logp,
        value, advantage, return; action indices are exact in float32 below 2^24); each epoch
        gathers it once in a random order and minibatches are slices of that gather."""
        cfg = self.config
        self._anneal()
        adv_all, ret_all = gae(batch, cfg.gamma, cfg.gae_lambda)
        rows = valid_rows(batch)
        d, m = batch.obs.shape[-1], len(rows)
        cols = (batch.action.to(batch.obs.dtype), batch.logp, batch.value, adv_all, ret_all)
        packed = torch.cat([batch.obs.flatten(0, 1), torch.stack(cols, -1).flatten(0, 1)], 1)
        packed = packed[rows]
        n_mb = -(-m // cfg.batch_size)
        names = (*_METRICS, *metric_names(self.interp))
        stats = packed.new_zeros(cfg.update_epochs * n_mb, len(names))
        count = 0
        for _ in range(cfg.update_epochs):
            perm = torch.randperm(m, device=rows.device)
            shuffled, order = packed[perm], rows[perm]
            for start in range(0, m, cfg.batch_size):
                part = slice(start, start + cfg.batch_size)
                history = take_history(batch.history, order[part])
                stats[count] = self._minibatch(shuffled[part], d, history)
                count += 1
            if cfg.target_kl is not None and float(stats[count - 1, 2]) > cfg.target_kl:
                break  # one host read per epoch, only when target_kl is set
        self.n_updates += 1
        out = dict(zip(names, stats[:count].mean(0).unbind(), strict=True))
        out["explained_var"] = _explained_variance(packed[:, d + 2], packed[:, d + 4])
        if batch.episode_return is not None and batch.episodes is not None:
            out |= {"episode_return": batch.episode_return, "episodes": batch.episodes}
        return out

    def _minibatch(self, mb: Tensor, d: int, history: History | None) -> Tensor:
        """One clipped-surrogate gradient step on the packed minibatch ``mb`` (M, d + 5);
        returns the (len(_METRICS) + interpretability terms,) detached metrics."""
        cfg = self.config
        action, old_logp, old_value, adv, ret = mb[:, d:].unbind(1)
        if cfg.norm_adv and len(adv) > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        with self.autocast(), recording(self.interp):
            logits, value = self.policy_value(mb[:, :d], history)
        loss, losses = ppo_objective(
            logits.float(),
            value.float(),
            action=action.long(),
            old_logp=old_logp,
            advantage=adv,
            old_value=old_value,
            returns=ret,
            coefs=PPOCoefs(cfg.clip_coef, cfg.clip_vloss, cfg.ent_coef, cfg.vf_coef),
        )
        loss, interp = add_penalty(
            self.interp, loss, self.scores, mb[:, :d], history, logits=logits.float()
        )
        grad_norm = self._step(loss)
        parts = (*(losses[k] for k in _METRICS[:5]), loss, grad_norm, *interp.values())
        return torch.stack(parts).detach()


#: The minibatch metrics of :meth:`PPOAgent.update`, averaged over minibatches, in order.
_METRICS = ("pg_loss", "v_loss", "approx_kl", "clipfrac", "entropy", "loss", "grad_norm")
"""The first five come from :func:`~noetik.agents.fast.ppo_objective.ppo_objective`."""


def _explained_variance(pred: Tensor, target: Tensor) -> Tensor:
    """0-d ``1 - Var(target - pred) / Var(target)`` (0 when the target is constant)."""
    var = target.var() if len(target) > 1 else target.new_zeros(())
    resid = (target - pred).var() if len(target) > 1 else target.new_zeros(())
    return torch.where(var > 0, 1.0 - resid / var.clamp_min(1e-12), torch.zeros_like(var))


@register("ppo")
@dataclass(frozen=True)
class PPOConfig(ActorCriticConfig):
    """Config of :class:`PPOAgent` (CleanRL defaults; ``batch_size`` is the minibatch size)."""

    agent_class = PPOAgent
    supports_interpretability = True
    gae_lambda: float = 0.95
    """lambda of GAE (1: Monte-Carlo advantages, 0: one-step TD errors)."""
    update_epochs: int = 4
    """Passes over the rollout per update."""
    clip_coef: float = 0.2
    """epsilon of the clipped surrogate (and of the value clipping)."""
    clip_vloss: bool = True
    """Clip the value loss around the rollout's values, like the policy ratio."""
    norm_adv: bool = True
    """Normalise advantages per minibatch (zero mean, unit std)."""
    target_kl: float | None = None
    """Stop the epochs early when the approximate KL of a minibatch exceeds this (None: off)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.gae_lambda <= 1.0 or self.update_epochs < 1 or self.clip_coef <= 0:
            raise ConfigError("gae_lambda must be in [0, 1], update_epochs >= 1, clip_coef > 0")
