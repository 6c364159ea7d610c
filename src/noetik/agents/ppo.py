"""PPO: clipped-surrogate policy optimisation on rollouts of a VectorEnv, with GAE advantages.

Schulman et al. 2017, "Proximal Policy Optimization Algorithms"; advantages by GAE(lambda),
Schulman et al. 2016, "High-Dimensional Continuous Control Using Generalized Advantage
Estimation". Conventions follow CleanRL's ``ppo.py``: per-minibatch advantage normalisation,
optionally clipped value loss, entropy bonus, global gradient clipping, linear learning-rate
annealing, optional early stop on the approximate KL.

One trainer step = one rollout of ``n_steps`` x ``num_envs`` decisions (see
:mod:`noetik.agents.rollout` for the autoreset rules) + ``update_epochs`` passes of minibatches
of ``batch_size`` valid decisions.

>>> agent = PPOConfig(n_steps=128, batch_size=256).create(ProblemSpec.from_env(envs))
>>> agent.fit(envs, steps=1000)                # 1000 rollouts
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from noetik.agents.base import register
from noetik.agents.encoders import History
from noetik.agents.rollout import (
    ActorCriticAgent,
    ActorCriticConfig,
    Rollout,
    entropy_and_logp,
    gae,
    take_history,
    valid_rows,
)
from noetik.errors import ConfigError

__all__ = ["PPOAgent", "PPOConfig", "ppo_losses"]


def ppo_losses(
    logp: Tensor,
    old_logp: Tensor,
    *,
    advantage: Tensor,
    value: Tensor,
    old_value: Tensor,
    returns: Tensor,
    clip_coef: float,
    clip_vloss: bool = True,
) -> dict[str, Tensor]:
    """The clipped surrogate and value losses of one minibatch (all inputs (M,) float32).

    ``pg_loss = mean(max(-A r, -A clip(r, 1 - eps, 1 + eps)))`` with ``r = exp(logp -
    old_logp)``; ``v_loss = 0.5 mean(max((V - R)^2, (V_old + clip(V - V_old, -eps, eps) -
    R)^2))`` when ``clip_vloss`` else ``0.5 mean((V - R)^2)``. Also ``approx_kl`` (the
    ``(r - 1) - log r`` estimator) and ``clipfrac`` (share of ``|r - 1| > eps``), detached.
    """
    log_ratio = logp - old_logp
    ratio = log_ratio.exp()
    pg1 = -advantage * ratio
    pg2 = -advantage * ratio.clamp(1.0 - clip_coef, 1.0 + clip_coef)
    pg_loss = torch.max(pg1, pg2).mean()
    unclipped = (value - returns) ** 2
    if clip_vloss:
        clipped = old_value + (value - old_value).clamp(-clip_coef, clip_coef)
        v_loss = 0.5 * torch.max(unclipped, (clipped - returns) ** 2).mean()
    else:
        v_loss = 0.5 * unclipped.mean()
    with torch.no_grad():
        approx_kl = ((ratio - 1.0) - log_ratio).mean()
        clipfrac = ((ratio - 1.0).abs() > clip_coef).float().mean()
    return {"pg_loss": pg_loss, "v_loss": v_loss, "approx_kl": approx_kl, "clipfrac": clipfrac}


class PPOAgent(ActorCriticAgent):
    """Softmax policy over items + value head, trained by PPO-clip with GAE."""

    config: PPOConfig

    def update(self, batch: Rollout) -> dict[str, Tensor]:
        """GAE on the rollout, then ``update_epochs`` x minibatch clipped-surrogate steps."""
        cfg = self.config
        self._anneal()
        adv_all, ret_all = gae(batch, cfg.gamma, cfg.gae_lambda)
        rows = valid_rows(batch)
        data = {
            "obs": batch.obs.flatten(0, 1)[rows], "action": batch.action.flatten()[rows],
            "logp": batch.logp.flatten()[rows], "value": batch.value.flatten()[rows],
            "adv": adv_all.flatten()[rows], "ret": ret_all.flatten()[rows],
        }  # fmt: skip
        sums: dict[str, Tensor] = {}
        count = 0
        for _ in range(cfg.update_epochs):
            perm = torch.randperm(len(rows), device=rows.device)
            for start in range(0, len(rows), cfg.batch_size):
                mb = perm[start : start + cfg.batch_size]
                metrics = self._minibatch({k: v[mb] for k, v in data.items()},
                                          take_history(batch.history, rows[mb]))  # fmt: skip
                sums = {k: sums.get(k, 0.0) + v for k, v in metrics.items()}
                count += 1
            if cfg.target_kl is not None and float(metrics["approx_kl"]) > cfg.target_kl:
                break  # one host read per epoch, only when target_kl is set
        self.n_updates += 1
        out = {k: v / max(count, 1) for k, v in sums.items()}
        out["explained_var"] = _explained_variance(data["value"], data["ret"])
        if batch.episode_return is not None and batch.episodes is not None:
            out |= {"episode_return": batch.episode_return, "episodes": batch.episodes}
        return out

    def _minibatch(self, mb: dict[str, Tensor], history: History | None) -> dict[str, Tensor]:
        """One clipped-surrogate gradient step on minibatch ``mb`` ((M,) tensors)."""
        cfg = self.config
        logits, value = self.policy_value(mb["obs"], history)
        entropy, logp = entropy_and_logp(logits, mb["action"])
        adv = mb["adv"]
        if cfg.norm_adv and len(adv) > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        losses = ppo_losses(
            logp, mb["logp"], advantage=adv, value=value, old_value=mb["value"],
            returns=mb["ret"], clip_coef=cfg.clip_coef, clip_vloss=cfg.clip_vloss,
        )  # fmt: skip
        ent = entropy.mean()
        loss = losses["pg_loss"] - cfg.ent_coef * ent + cfg.vf_coef * losses["v_loss"]
        grad_norm = self._step(loss)
        detached = {k: v.detach() for k, v in losses.items()}
        return detached | {"entropy": ent.detach(), "loss": loss.detach(), "grad_norm": grad_norm}


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
