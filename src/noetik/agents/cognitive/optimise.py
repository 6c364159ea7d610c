"""A batched quasi-Newton minimiser: many small, independent fits in one stream of array calls.

Maximum-likelihood fits of cognitive models are many independent problems of 2-7 parameters
(one per subject and starting point) whose cost is a loop over trials. :func:`minimise` runs
them together: each iteration asks the objective for the values of all active problems at
several points at once (a few step lengths along each problem's BFGS direction, then the 2P
points of a central-difference gradient), so the trial loop runs twice per iteration for all
problems instead of hundreds of times per problem. Each problem keeps its own inverse Hessian,
step length and convergence test; a converged problem stops being evaluated.

>>> import numpy as np
>>> from noetik.agents.cognitive import minimise
>>> centres = np.array([[1.0, -2.0], [0.5, 3.0]])
>>> def f(points, rows):                # (A, R, P) points of problems rows (A,) -> (A, R)
...     return ((points - centres[rows, None, :]) ** 2).sum(axis=2)
>>> minimise(f, np.zeros((2, 2))).x     # close to centres
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from noetik.agents.cognitive.base import Z_LIMIT
from noetik.data.choices import BoolArray, FloatArray, IntArray

__all__ = ["Minimum", "minimise"]

#: Step lengths tried along each search direction, longest first.
_STEPS = np.array([1.0, 0.5, 0.25, 0.1, 0.03, 0.01, 0.001])

#: Objective: (A, R, P) points of the A problems ``rows`` (A,) -> (A, R) values.
Objective = Callable[[FloatArray, IntArray], FloatArray]


@dataclass(frozen=True, eq=False)
class Minimum:
    """Where each of B problems ended."""

    x: FloatArray
    """(B, P) float64 minimisers (unbounded coordinates)."""
    fun: FloatArray
    """(B,) float64 objective values there."""
    converged: BoolArray
    """(B,) bool: the gradient or the progress fell below tolerance before ``max_iter``."""
    iterations: IntArray
    """(B,) int64 iterations taken."""


class _Search:
    """The state of B problems: points, values, gradients, inverse Hessians, flags."""

    def __init__(self, objective: Objective, x0: FloatArray, h: float) -> None:
        b, p = x0.shape
        self.objective, self.h = objective, h
        self.x = np.clip(np.asarray(x0, dtype=np.float64), -Z_LIMIT, Z_LIMIT).copy()
        every = np.arange(b)
        self.fun = objective(self.x[:, None, :], every)[:, 0]
        self.grad = self.gradient(self.x, every)
        self.eye = np.eye(p)
        self.inv_h = np.repeat(self.eye[None], b, axis=0)
        self.active = np.isfinite(self.fun)
        self.converged = np.zeros(b, dtype=bool)
        self.slow = np.zeros(b, dtype=bool)  # the last step made almost no progress
        self.fresh = np.ones(b, dtype=bool)  # inverse Hessian is the (unscaled) identity
        self.iterations = np.zeros(b, dtype=np.int64)

    def gradient(self, x: FloatArray, rows: IntArray) -> FloatArray:
        """(A, P) central-difference gradients at (A, P) ``x`` of problems ``rows``."""
        p = x.shape[1]
        offsets = np.concatenate([np.eye(p), -np.eye(p)])
        values = self.objective(x[:, None, :] + self.h * offsets[None], rows)
        out: FloatArray = (values[:, :p] - values[:, p:]) / (2.0 * self.h)
        return out

    def stop(self, rows: IntArray) -> None:
        self.converged[rows] = True
        self.active[rows] = False

    def line_search(self, rows: IntArray, max_step: float) -> tuple[FloatArray, FloatArray]:
        """``(points (A, P), values (A,))``: the longest step along each problem's quasi-Newton
        direction that passes Armijo's test, else the best step tried."""
        g = self.grad[rows]
        direction = -np.einsum("aij,aj->ai", self.inv_h[rows], g)
        uphill = (direction * g).sum(axis=1) >= 0
        direction[uphill] = -g[uphill]
        longest = np.abs(direction).max(axis=1, initial=1e-300)
        direction *= np.minimum(1.0, max_step / longest)[:, None]
        slope = (direction * g).sum(axis=1)
        steps = _STEPS[None, :, None] * direction[:, None, :]
        trial = np.clip(self.x[rows, None, :] + steps, -Z_LIMIT, Z_LIMIT)
        values = self.objective(trial, rows)
        values = np.where(np.isfinite(values), values, np.inf)
        armijo = values <= self.fun[rows, None] + 1e-4 * _STEPS[None, :] * slope[:, None]
        pick = np.where(armijo.any(axis=1), armijo.argmax(axis=1), values.argmin(axis=1))
        chosen = np.arange(len(rows))
        return trial[chosen, pick], values[chosen, pick]

    def accept(
        self, rows: IntArray, x: FloatArray, fun: FloatArray, gtol: float, ftol: float
    ) -> None:
        """Move problems ``rows`` to ``x`` (better values ``fun``), update their inverse
        Hessians (BFGS) and stop those that converged."""
        grad = self.gradient(x, rows)
        s, y = x - self.x[rows], grad - self.grad[rows]
        sy = (s * y).sum(axis=1)
        first = self.fresh[rows] & (sy > 0)
        scale = np.where(first, sy / np.maximum((y * y).sum(axis=1), 1e-300), 1.0)
        inv_h = self.inv_h[rows] * scale[:, None, None]
        self.inv_h[rows] = np.where((sy > 1e-12)[:, None, None], _bfgs(inv_h, s, y, sy), inv_h)
        self.fresh[rows] = False
        tiny = self.fun[rows] - fun <= ftol * (1.0 + np.abs(self.fun[rows]))
        done = (np.abs(grad).max(axis=1) < gtol) | (tiny & self.slow[rows])
        self.slow[rows] = tiny
        self.x[rows], self.fun[rows], self.grad[rows] = x, fun, grad
        self.stop(rows[done])


def minimise(
    objective: Objective,
    x0: FloatArray,
    *,
    max_iter: int = 200,
    gtol: float = 1e-3,
    ftol: float = 1e-9,
    h: float = 1e-5,
    max_step: float = 3.0,
) -> Minimum:
    """Minimise B independent smooth functions of P unbounded coordinates from (B, P) ``x0``.

    BFGS on central-difference gradients (step ``h``) with a multi-point Armijo line search.
    Problem ``i`` stops when its largest gradient entry is below ``gtol``, when two iterations
    in a row lower it by less than ``ftol * (1 + |f|)``, or when no step along the steepest
    descent lowers it. Coordinates stay within +-``Z_LIMIT``; a step moves at most
    ``max_step`` in any coordinate.
    """
    search = _Search(objective, x0, h)
    active = np.flatnonzero(search.active)
    search.stop(active[np.abs(search.grad[active]).max(axis=1) < gtol])
    for _ in range(max_iter):
        rows = np.flatnonzero(search.active)
        if not len(rows):
            break
        search.iterations[rows] += 1
        x, fun = search.line_search(rows, max_step)
        better = fun < search.fun[rows]
        # no progress: retry once from steepest descent (a fresh identity), then stop
        stuck = rows[~better]
        search.stop(stuck[search.fresh[stuck]])
        search.inv_h[stuck] = search.eye
        search.fresh[stuck] = True
        if better.any():
            search.accept(rows[better], x[better], fun[better], gtol, ftol)
    return Minimum(search.x, search.fun, search.converged, search.iterations)


def _bfgs(hinv: FloatArray, s: FloatArray, y: FloatArray, sy: FloatArray) -> FloatArray:
    """BFGS update of (A, P, P) inverse Hessians with steps ``s`` and gradient changes ``y``."""
    rho = 1.0 / np.where(sy > 1e-12, sy, 1.0)
    p = s.shape[1]
    left = np.eye(p)[None] - rho[:, None, None] * s[:, :, None] * y[:, None, :]
    out: FloatArray = left @ hinv @ left.transpose(0, 2, 1) + rho[:, None, None] * (
        s[:, :, None] * s[:, None, :]
    )
    return out
