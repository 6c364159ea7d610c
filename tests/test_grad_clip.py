"""``clip_grad_norm`` against torch's ``clip_grad_norm_``: bit-identical norms and gradients."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from noetik.agents.fast.grad_clip import clip_grad_norm


def _grads(seed: int, scale: float) -> list[nn.Parameter]:
    gen = torch.Generator().manual_seed(seed)
    params = [nn.Parameter(torch.zeros(shape)) for shape in [(7, 3), (3,), (2, 2, 2)]]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen) * scale
    return params


@pytest.mark.parametrize(("max_norm", "scale"), [(0.5, 1.0), (100.0, 1.0), (math.inf, 3.0)])
def test_matches_torch_clip_grad_norm(max_norm: float, scale: float) -> None:
    ours, ref = _grads(0, scale), _grads(0, scale)
    norm = clip_grad_norm(ours, max_norm)
    ref_norm = nn.utils.clip_grad_norm_(ref, max_norm)
    assert torch.equal(norm, ref_norm)
    for a, b in zip(ours, ref, strict=True):
        assert a.grad is not None and b.grad is not None and torch.equal(a.grad, b.grad)
    after = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in ours]))  # type: ignore[union-attr]
    assert float(after) <= min(max_norm, float(norm)) * (1 + 1e-5)


def test_no_gradients_gives_zero() -> None:
    assert float(clip_grad_norm([nn.Parameter(torch.ones(2))], 1.0)) == 0.0
