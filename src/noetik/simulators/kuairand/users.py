"""The per-user state of ``noetik/KuaiRand-v0``: a :class:`~noetik.simulators.core.Users` batch
whose rows also carry each user's incremental 128-d state (:class:`OnlineStates`).

:class:`OnlineStates` keeps B rows of arrays (ring buffer of the last K interactions, running
sums). Here those arrays live in :attr:`KuaiRandUsers.online` (a dict of arrays with leading
dim B), so :meth:`RowBatch.take` and :meth:`RowBatch.put` (the vector env's autoreset) copy
them with the other fields; :meth:`KuaiRandUsers.states` binds an :class:`OnlineStates` to them,
whose ``observe``/``push``/``history`` then read and update the batch in place.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self

import numpy as np

from noetik.data.features import STATE_DIM
from noetik.data.online_state import OnlineStates, OnlineStateTables
from noetik.data.rewards import N_SIGNALS
from noetik.simulators.core import FloatArray, IntArray, Users
from noetik.simulators.kuairand.examples import HEADS

#: OnlineStates attributes that are not per-user rows (shared helpers sized by the batch).
_SHARED = frozenset({"_ar"})


def state_rows(states: OnlineStates) -> dict[str, np.ndarray]:
    """The per-row arrays of ``states`` by attribute name (the same objects, not copies)."""
    rows = {
        name: value
        for name, value in vars(states).items()
        if isinstance(value, np.ndarray) and name not in _SHARED
    }
    bad = [name for name, value in rows.items() if value.shape[:1] != (states.batch_size,)]
    if bad:
        raise TypeError(f"OnlineStates arrays {bad} are not per-row; update _SHARED")
    return rows


def bind_states(
    tables: OnlineStateTables, rows: dict[str, np.ndarray], history_len: int, clock_lag_s: float
) -> OnlineStates:
    """An :class:`OnlineStates` working on the arrays ``rows`` (from :func:`state_rows`)."""
    states = OnlineStates(tables, len(rows["user_id"]), history_len, clock_lag_s=clock_lag_s)
    vars(states).update(rows)
    return states


@dataclass(kw_only=True)
class KuaiRandUsers(Users):
    """B simulated KuaiRand users (``preference`` is empty: the state is the history)."""

    time_s: FloatArray
    """(B,) Unix seconds of each user's next request (the clock)."""
    tab: IntArray
    """(B,) app tab of the session (0..14)."""
    online: dict[str, np.ndarray]
    """Per-row arrays of the users' :class:`OnlineStates` (see :func:`state_rows`)."""
    signals: FloatArray
    """(B, 12) signals of the last step in :data:`SIGNALS` order (0 before the first)."""
    predicted: np.ndarray
    """(B, 9) float32 predicted probabilities / mean watch ratio of the last step."""
    leave_draw: FloatArray
    """(B,) uniform draw of the last step's leave decision (hazard leave model)."""
    leave_prob: FloatArray
    """(B,) probability that the user left after the last step."""
    obs: np.ndarray
    """(B, 128) float32 copy of the last observation (valid where ``obs_fresh``)."""
    obs_fresh: np.ndarray
    """(B,) bool: ``obs`` is the current state (no step or restart since it was observed)."""
    member: IntArray
    """(B,) int64 ensemble member answering for each user (``ensemble="sample"``; else 0)."""
    pred_std: np.ndarray
    """(B, 9) float32 std over the ensemble members of each head at the last step (0 without
    members)."""
    reward_sigma: FloatArray
    """(B,) std over the ensemble members of the last step's expected reward (0 without)."""
    reward_raw: FloatArray
    """(B,) the last step's reward before the pessimism penalty."""
    repeat_share: FloatArray
    """(B,) share of the 10 videos before the last one that share its main tag (computed
    only when ``leave_repeat_coef > 0``; else 0)."""
    view: OnlineStates | None = field(default=None, repr=False, compare=False)
    """The :class:`OnlineStates` bound to ``online`` (built on demand by :meth:`states`)."""

    def states(self, tables: OnlineStateTables, history_len: int, clock_lag_s: float) -> Any:
        """The :class:`OnlineStates` of these users (bound once, then reused)."""
        if self.view is None:
            self.view = bind_states(tables, self.online, history_len, clock_lag_s)
        return self.view

    def observe(self, tables: OnlineStateTables, history_len: int, clock_lag_s: float) -> Any:
        """(B, 128) float32 current states, reusing the cached ones when every row is fresh."""
        if self.obs_fresh.all():
            return self.obs
        obs = self.states(tables, history_len, clock_lag_s).observe(self.time_s, self.tab, self.t)
        self.obs = obs.copy()  # the caller may modify what it gets
        self.obs_fresh[:] = True
        return obs

    def take(self, index: Any) -> Self:
        """A copy of rows ``index``; its state view is rebuilt on demand."""
        out = super().take(index)
        out.view = None
        return out

    @classmethod
    def fresh(
        cls,
        user_id: IntArray,
        time_s: FloatArray,
        tab: IntArray,
        states: OnlineStates,
        member: IntArray | None = None,
    ) -> Self:
        """New sessions (``t = 0``) of users ``user_id`` (n,) whose states are ``states``,
        answered by ensemble ``member`` (n,) int64 (None: 0)."""
        n = len(user_id)
        return cls(
            user_id=user_id,
            preference=np.zeros((n, 0)),
            budget=np.full(n, np.inf),
            t=np.zeros(n, dtype=np.int64),
            time_s=time_s,
            tab=tab,
            online=state_rows(states),
            signals=np.zeros((n, N_SIGNALS)),
            predicted=np.zeros((n, len(HEADS)), dtype=np.float32),
            leave_draw=np.ones(n),
            leave_prob=np.zeros(n),
            obs=np.zeros((n, STATE_DIM), dtype=np.float32),
            obs_fresh=np.zeros(n, dtype=bool),
            member=np.zeros(n, dtype=np.int64) if member is None else member,
            pred_std=np.zeros((n, len(HEADS)), dtype=np.float32),
            reward_sigma=np.zeros(n),
            reward_raw=np.zeros(n),
            repeat_share=np.zeros(n),
            view=states,
        )
