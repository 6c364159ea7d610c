"""Episode bookkeeping of a next-step-autoreset ``VectorEnv`` rollout, after the fact.

:class:`~noetik.agents.onpolicy.collect.Collector` only records what ``env.step`` returned;
this module turns the raw (T, N) ``terminated`` / ``truncated`` / ``reward`` arrays into the
rollout's ``valid`` mask, masked flags and rewards, and the returns of the episodes that ended,
in a few array passes instead of a dozen small numpy calls per step.

Rule (next-step autoreset): the step after a row's episode ended restarts that row; it is not
a transition (``valid`` False, reward 0, flags False). So ``valid[t + 1] = not (valid[t] and
(terminated[t] or truncated[t]))``, with ``valid[0]`` from the previous rollout.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["EpisodeLog", "episode_log"]


@dataclass(frozen=True)
class EpisodeLog:
    """The masked view of one rollout's raw step results (arrays are (T, N))."""

    valid: np.ndarray
    """(T, N) bool: a real transition (False on autoreset rows)."""
    terminated: np.ndarray
    """(T, N) bool: raw ``terminated`` on valid rows."""
    truncated: np.ndarray
    """(T, N) bool: raw ``truncated`` on valid rows."""
    reward: np.ndarray
    """(T, N) float32: raw rewards on valid rows, 0 elsewhere."""
    returns: np.ndarray
    """(E,) float64 undiscounted returns of the episodes that ended, in (step, env) order."""
    ended: np.ndarray
    """(N,) bool: rows whose episode ended at the last step (the next step restarts them)."""
    carry: np.ndarray
    """(N,) float64 return so far of each row's unfinished episode."""


def episode_log(
    reward: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    *,
    ended: np.ndarray,
    carry: np.ndarray,
) -> EpisodeLog:
    """Mask raw step results and close the episodes that ended.

    ``reward`` (T, N) float32, ``terminated`` / ``truncated`` (T, N) bool as ``env.step``
    returned them; ``ended`` (N,) bool rows that ended at the previous rollout's last step;
    ``carry`` (N,) float64 the return so far of each row's unfinished episode.
    """
    done_raw = terminated | truncated
    valid = np.ones_like(done_raw)
    valid[0] = ~ended
    for t in np.flatnonzero(done_raw[:-1].any(1)):  # only steps where some episode ended
        valid[t + 1] = ~(valid[t] & done_raw[t])
    term, trunc = terminated & valid, truncated & valid
    masked = np.where(valid, reward, 0.0).astype(np.float32)
    total = np.cumsum(masked, axis=0, dtype=np.float64)  # (T, N) running sums
    start = np.zeros(valid.shape[1])  # running sum at each row's last episode end
    open_return = carry.astype(np.float64).copy()
    returns = []
    for t, j in zip(*np.nonzero(term | trunc), strict=True):  # (step, env) order
        returns.append(open_return[j] + total[t, j] - start[j])
        start[j], open_return[j] = total[t, j], 0.0
    return EpisodeLog(
        valid=valid,
        terminated=term,
        truncated=trunc,
        reward=masked,
        returns=np.asarray(returns, dtype=np.float64),
        ended=(term | trunc)[-1],
        carry=open_return + total[-1] - start,
    )
