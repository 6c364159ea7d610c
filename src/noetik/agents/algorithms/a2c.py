"""A2C: synchronous advantage actor-critic with n-step bootstrapped returns per environment.

Mnih et al. 2016, "Asynchronous Methods for Deep Reinforcement Learning" (the synchronous,
batched variant). Each rollout of ``n_steps`` x ``num_envs`` decisions gives one gradient step
on ``-mean(log pi(a_t|s_t) A_t) + vf_coef * 0.5 mean((R_t - V(s_t))^2) - ent_coef * H``
with ``A_t = R_t - V(s_t)`` (no gradient through ``R_t``) and the n-step return
``R_t = sum_{k<m} gamma^k r_{t+k} + gamma^m V(s_{t+m})``, ``m = min(n, steps to the end of
the episode or of the rollout)``: each reward is discounted exactly once
(:func:`~noetik.agents.onpolicy.rollout.nstep_returns`).

>>> agent = A2CConfig(n_steps=5, n=5).create(ProblemSpec.from_env(envs))
>>> agent.fit(envs, steps=10_000)                # 10,000 rollouts = 10,000 updates
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from noetik.agents.core.base import register
from noetik.agents.fast.threads import with_intra_op_threads
from noetik.agents.onpolicy.rollout import (
    ActorCriticAgent,
    ActorCriticConfig,
    Rollout,
    entropy_and_logp,
    nstep_returns,
    take_history,
    valid_rows,
)
from noetik.errors import ConfigError

__all__ = ["A2CAgent", "A2CConfig"]


class A2CAgent(ActorCriticAgent):
    """Softmax policy over items + value head, one actor-critic step per rollout."""

    config: A2CConfig

    def update_rows(self) -> int:
        """A2C's one step per rollout sees at least ``n_steps`` rows (times the envs)."""
        return self.config.n_steps

    @with_intra_op_threads
    def update(self, batch: Rollout) -> dict[str, Tensor]:
        """n-step returns on the rollout, then one gradient step on all valid decisions."""
        cfg = self.config
        self._anneal()
        n = cfg.n if cfg.n > 0 else cfg.n_steps
        returns = nstep_returns(batch, cfg.gamma, n).flatten()
        rows = valid_rows(batch)
        obs, action = batch.obs.flatten(0, 1)[rows], batch.action.flatten()[rows]
        with self.autocast():
            logits, value = self.policy_value(obs, take_history(batch.history, rows))
        entropy, logp = entropy_and_logp(logits.float(), action, cfg.ent_coef != 0)
        value = value.float()
        target = returns[rows]
        adv = (target - value).detach()
        if cfg.norm_adv and len(adv) > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        pg_loss = -(logp * adv).mean()
        v_loss = 0.5 * ((target - value) ** 2).mean()
        ent = entropy.mean()
        loss = pg_loss + cfg.vf_coef * v_loss - cfg.ent_coef * ent
        grad_norm = self._step(loss)
        self.n_updates += 1
        out = {
            "pg_loss": pg_loss.detach(),
            "v_loss": v_loss.detach(),
            "entropy": ent.detach(),
            "loss": loss.detach(),
            "grad_norm": grad_norm,
        }
        if batch.episode_return is not None and batch.episodes is not None:
            out |= {"episode_return": batch.episode_return, "episodes": batch.episodes}
        return out


@register("a2c")
@dataclass(frozen=True)
class A2CConfig(ActorCriticConfig):
    """Config of :class:`A2CAgent` (defaults of Stable-Baselines3's A2C where they apply)."""

    agent_class = A2CAgent
    n_steps: int = 5
    """Environment steps per environment in one rollout (one update)."""
    lr: float = 7e-4
    """Adam learning rate."""
    n: int = 0
    """Steps of the n-step return (0: ``n_steps``, i.e. up to the end of the rollout)."""
    norm_adv: bool = False
    """Normalise the advantages of a rollout (zero mean, unit std)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n < 0:
            raise ConfigError(f"n must be >= 0, got {self.n}")
