"""PPO's minibatch objective: the readable definition and the fused one the agent trains with.

:func:`ppo_losses` writes the clipped surrogate and value losses out in tensor operations (the
reference, checked by hand in the tests). :func:`ppo_objective` computes the same loss from the
policy's logits and the critic's values as one autograd node (:class:`_PPOObjective`) whose
backward is written out:

    L = pg_loss - c_H mean(H) + c_V v_loss
    dL/dz_j   = g_m (1[j = a_m] - p_mj) + (c_H / M) p_mj (log p_mj + H_m)
    g_m       = -(A_m r_m / M) w_m
    dL/dV_m   = (c_V / M) [w'_m (V_m - R_m) + (1 - w'_m) 1_clip(V_m) (V^clip_m - R_m)]

with ``r = exp(log p_a - log p_old)``; ``w`` the share of the surrogate's gradient that reaches
``r``: 1 where the unclipped term is the larger, ``[1 - eps <= r <= 1 + eps]`` where the
clipped one is, the mean of the two on a tie (autograd's rule for ``max`` and ``clamp``);
``w'`` the unclipped value term's share of the value loss's ``max`` (1, 0 or 1/2 on a
tie). At M = 64 rows the ~30 small autograd nodes of the unfused loss cost more than its
arithmetic; this is one node, the same numbers (tested against autograd on
:func:`ppo_losses`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

__all__ = ["PPOCoefs", "ppo_losses", "ppo_objective"]


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


@dataclass(frozen=True)
class PPOCoefs:
    """The constants of :func:`ppo_objective`."""

    clip_coef: float
    """epsilon of the clipped surrogate (and of the value clipping)."""
    clip_vloss: bool
    """Clip the value loss around the rollout's values."""
    ent_coef: float
    """c_H, weight of the entropy bonus."""
    vf_coef: float
    """c_V, weight of the value loss."""


def _first_share(first: Tensor, second: Tensor) -> Tensor:
    """(M,) share of ``max(first, second)``'s gradient that goes to ``first``: 1 where it is
    the larger, 0 where it is the smaller, 1/2 on a tie (the rest goes to ``second``)."""
    return torch.where(first > second, 1.0, torch.where(first < second, 0.0, 0.5))


class _PPOObjective(torch.autograd.Function):
    """``(logits (M, A), value (M,), batch) -> (loss, pg_loss, v_loss, entropy, approx_kl,
    clipfrac)`` 0-d tensors; only ``loss`` has a gradient (see the module docstring)."""

    @staticmethod
    def forward(  # noqa: PLR0917 (a Function's inputs are positional)
        ctx: Any,
        logits: Tensor,
        value: Tensor,
        action: Tensor,
        old_logp: Tensor,
        advantage: Tensor,
        old_value: Tensor,
        returns: Tensor,
        coefs: PPOCoefs,
    ) -> tuple[Tensor, ...]:
        eps, m = coefs.clip_coef, logits.shape[0]
        logp_all = torch.log_softmax(logits, -1)  # (M, A)
        probs = torch.softmax(logits, -1)
        entropy = -(probs * logp_all).sum(-1)  # (M,)
        log_ratio = logp_all.gather(1, action[:, None]).squeeze(1) - old_logp
        ratio = log_ratio.exp()
        pg1, pg2 = -advantage * ratio, -advantage * ratio.clamp(1.0 - eps, 1.0 + eps)
        in_clip = ((ratio >= 1.0 - eps) & (ratio <= 1.0 + eps)).float()
        share = _first_share(pg1, pg2)
        g_logp = pg1 * (share + (1.0 - share) * in_clip) / m  # d pg_loss / d log p_a
        err = value - returns
        if coefs.clip_vloss:
            delta = value - old_value
            clipped_err = old_value + delta.clamp(-eps, eps) - returns
            v1, v2 = err**2, clipped_err**2
            passes = ((delta >= -eps) & (delta <= eps)).float()
            share = _first_share(v1, v2)
            v_loss = 0.5 * torch.maximum(v1, v2).mean()
            d_value = (share * err + (1.0 - share) * passes * clipped_err) / m
        else:
            v_loss, d_value = 0.5 * (err**2).mean(), err / m
        pg_loss = torch.maximum(pg1, pg2).mean()
        ent = entropy.mean()
        loss = pg_loss - coefs.ent_coef * ent + coefs.vf_coef * v_loss
        approx_kl = ((ratio - 1.0) - log_ratio).mean()
        clipfrac = ((ratio - 1.0).abs() > eps).float().mean()
        ctx.save_for_backward(probs, logp_all, entropy, action, g_logp, d_value)
        ctx.coefs = coefs
        metrics = (pg_loss, v_loss, ent, approx_kl, clipfrac)
        ctx.mark_non_differentiable(*metrics)
        return (loss, *metrics)

    @staticmethod
    def backward(ctx: Any, g: Tensor, *_: Tensor) -> tuple[Tensor | None, ...]:
        probs, logp_all, entropy, action, g_logp, d_value = ctx.saved_tensors
        coefs: PPOCoefs = ctx.coefs
        g_a = g * g_logp  # (M,)
        if coefs.ent_coef:
            c_h = g * coefs.ent_coef / probs.shape[0]
            inner = torch.addcmul(-g_a[:, None] + c_h * entropy[:, None], logp_all, c_h)
            grad = inner.mul_(probs)  # (M, A)
        else:
            grad = probs * -g_a[:, None]
        grad.scatter_add_(1, action[:, None], g_a[:, None])
        return grad, g * coefs.vf_coef * d_value, None, None, None, None, None, None


def ppo_objective(
    logits: Tensor,
    value: Tensor,
    *,
    action: Tensor,
    old_logp: Tensor,
    advantage: Tensor,
    old_value: Tensor,
    returns: Tensor,
    coefs: PPOCoefs,
) -> tuple[Tensor, dict[str, Tensor]]:
    """``(loss, metrics)`` of one PPO minibatch, differentiable in ``logits`` (M, A) and
    ``value`` (M,) (float32); ``action`` (M,) int64, the rest (M,) float32 constants.
    ``metrics``: pg_loss, v_loss, entropy, approx_kl, clipfrac (0-d, no gradient)."""
    out = _PPOObjective.apply(  # type: ignore[no-untyped-call]
        logits, value, action, old_logp, advantage, old_value, returns, coefs
    )
    names = ("pg_loss", "v_loss", "entropy", "approx_kl", "clipfrac")
    return out[0], dict(zip(names, out[1:], strict=True))
