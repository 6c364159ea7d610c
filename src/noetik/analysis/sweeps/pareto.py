"""The Pareto front of engagement against an interpretability cost."""

from __future__ import annotations

import numpy as np

__all__ = ["pareto_front"]


def pareto_front(ret: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """(N,) bool: points not dominated when maximising ``ret`` (N,) float64 and minimising
    ``cost`` (N,) float64 (dominated: another point is at least as good in both, better in
    one)."""
    r, c = np.asarray(ret, dtype=np.float64), np.asarray(cost, dtype=np.float64)
    better_eq = (r[None, :] >= r[:, None]) & (c[None, :] <= c[:, None])
    strictly = (r[None, :] > r[:, None]) | (c[None, :] < c[:, None])
    front = np.logical_not((better_eq & strictly).any(axis=1))
    return np.asarray(front, dtype=bool)
