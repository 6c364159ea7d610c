"""Global gradient-norm clipping with the fewest operator calls.

``torch.nn.utils.clip_grad_norm_`` groups the gradients by device and dtype and validates its
arguments on every call; at PPO's 64-row minibatches that bookkeeping costs more than the
arithmetic. Our agents keep every parameter on one device in one dtype, so the same result
(the same operators in the same order: per-tensor norms, the norm of those, one in-place scale)
takes four calls.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor

__all__ = ["clip_grad_norm"]


def clip_grad_norm(params: Iterable[Tensor], max_norm: float) -> Tensor:
    """Scale the gradients of ``params`` in place so that their global L2 norm is at most
    ``max_norm`` (``math.inf``: no scaling); returns the norm before clipping (0-d float32).

    Equals ``torch.nn.utils.clip_grad_norm_(params, max_norm)`` for parameters that share one
    device and dtype (the coefficient ``max_norm / (norm + 1e-6)`` is clamped at 1).
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.zeros(())
    total: Tensor = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    if not math.isinf(max_norm):
        torch._foreach_mul_(grads, torch.clamp(max_norm / (total + 1e-6), max=1.0))
    return total
