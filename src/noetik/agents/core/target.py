"""Target networks: the Polyak (soft) update of a target copy towards its online network."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

__all__ = ["soft_update"]


@torch.no_grad()
def soft_update(target: Iterable[Tensor], online: Iterable[Tensor], tau: float) -> None:
    """``target <- target + tau * (online - target)`` for each pair of parameters, in place and
    in one fused call (``tau = 1``: a hard copy). Both iterables list matching tensors in the
    same order (e.g. ``target_net.parameters()`` and ``online_net.parameters()``)."""
    torch._foreach_lerp_(list(target), list(online), tau)
