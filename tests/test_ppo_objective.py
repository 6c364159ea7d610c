"""The fused PPO objective against autograd on its readable definition (``ppo_losses``)."""

from __future__ import annotations

import pytest
import torch

from noetik.agents.fast.ppo_objective import PPOCoefs, ppo_losses, ppo_objective


def _reference(logits, value, batch, coefs):  # type: ignore[no-untyped-def]
    logp_all = torch.log_softmax(logits, -1)
    entropy = -(logp_all.exp() * logp_all).sum(-1).mean()
    logp = logp_all.gather(1, batch["action"][:, None]).squeeze(1)
    losses = ppo_losses(
        logp,
        batch["old_logp"],
        advantage=batch["advantage"],
        value=value,
        old_value=batch["old_value"],
        returns=batch["returns"],
        clip_coef=coefs.clip_coef,
        clip_vloss=coefs.clip_vloss,
    )
    loss = losses["pg_loss"] - coefs.ent_coef * entropy + coefs.vf_coef * losses["v_loss"]
    return loss, losses | {"entropy": entropy}


def _batch(seed: int, dtype: torch.dtype, same_policy: bool):  # type: ignore[no-untyped-def]
    gen = torch.Generator().manual_seed(seed)
    m, a = 12, 9
    logits = torch.randn(m, a, generator=gen, dtype=dtype)
    value = torch.randn(m, generator=gen, dtype=dtype)
    action = torch.randint(0, a, (m,), generator=gen)
    logp = torch.log_softmax(logits, -1).gather(1, action[:, None]).squeeze(1)
    # old log-probs: equal (first minibatch: ratio exactly 1, ties in max) or spread so that
    # some ratios fall outside [1 - eps, 1 + eps] on both sides
    old = logp if same_policy else logp + torch.randn(m, generator=gen, dtype=dtype) * 0.4
    batch = {
        "action": action,
        "old_logp": old.detach(),
        "advantage": torch.randn(m, generator=gen, dtype=dtype),
        "old_value": value + torch.randn(m, generator=gen, dtype=dtype) * 0.4,
        "returns": torch.randn(m, generator=gen, dtype=dtype),
    }
    return logits, value, batch


@pytest.mark.parametrize("clip_vloss", [True, False])
@pytest.mark.parametrize("ent_coef", [0.0, 0.01])
@pytest.mark.parametrize("same_policy", [True, False])
def test_loss_metrics_and_gradients_match_autograd(
    clip_vloss: bool, ent_coef: float, same_policy: bool
) -> None:
    coefs = PPOCoefs(clip_coef=0.2, clip_vloss=clip_vloss, ent_coef=ent_coef, vf_coef=0.5)
    logits, value, batch = _batch(0, torch.float64, same_policy)
    grads, values = [], []
    for fn in (ppo_objective, None):
        z, v = logits.clone().requires_grad_(), value.clone().requires_grad_()
        if fn is None:
            loss, metrics = _reference(z, v, batch, coefs)
        else:
            loss, metrics = fn(z, v, coefs=coefs, **batch)
        (loss * 1.7).backward()
        grads.append((z.grad, v.grad))
        values.append({"loss": loss.detach(), **{k: x.detach() for k, x in metrics.items()}})
    for key, ours in values[0].items():
        torch.testing.assert_close(ours, values[1][key], msg=key)
    torch.testing.assert_close(grads[0][0], grads[1][0])
    torch.testing.assert_close(grads[0][1], grads[1][1])


def test_clipping_is_exercised_and_gradcheck_passes() -> None:
    coefs = PPOCoefs(clip_coef=0.2, clip_vloss=True, ent_coef=0.01, vf_coef=0.5)
    logits, value, batch = _batch(1, torch.float64, same_policy=False)
    ratio = (
        torch.log_softmax(logits, -1).gather(1, batch["action"][:, None]).squeeze(1)
        - batch["old_logp"]
    ).exp()
    assert bool((ratio > 1.2).any()) and bool((ratio < 0.8).any())
    assert bool(((value - batch["old_value"]).abs() > 0.2).any())
    z, v = logits.clone().requires_grad_(), value.clone().requires_grad_()
    assert torch.autograd.gradcheck(
        lambda a, b: ppo_objective(a, b, coefs=coefs, **batch)[0], (z, v)
    )
