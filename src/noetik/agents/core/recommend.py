"""Top-k recommendations for real users: their current state from the logs, then the agent's
scores over the items.

A user's *current* state is the state right after their last logged interaction: their logged
history (the last K interactions and the all-time sums) is replayed into
:class:`~noetik.data.online_state.OnlineStates`, and the decision is taken one minute after that
interaction, at the start of a new session, in the main feed (tab 1).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from noetik.agents.core import serving
from noetik.agents.core.base import Agent
from noetik.agents.networks.encoders import History
from noetik.agents.networks.topk import Exclusions
from noetik.data.dataset import KuaiRandDataset
from noetik.data.online_state import OnlineStates, OnlineStateTables, history_after
from noetik.data.transitions import Transitions

#: Seconds between a user's last logged interaction and the decision.
DECISION_DELAY_S = 60.0
#: Tab of the decision (1: the single-column main feed, the most common tab in KuaiRand).
DECISION_TAB = 1


@dataclass(frozen=True)
class UserStates:
    """Decision states of R users."""

    user_ids: np.ndarray
    """(R,) int64 user ids."""
    obs: np.ndarray
    """(R, 128) float32 states."""
    history: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
    """Raw history arrays as :meth:`Transitions.history` returns them (items, signals, gaps,
    mask), each with leading dim R."""


@dataclass(frozen=True)
class Recommendations:
    """Top-k items per user."""

    user_ids: np.ndarray
    """(R,) int64 user ids."""
    actions: np.ndarray
    """(R, k) int64 action indices, best first."""
    video_ids: np.ndarray
    """(R, k) int64 video ids of those actions (the action index when no vocabulary is known)."""
    scores: np.ndarray
    """(R, k) float32 the agent's scores (Q values or policy logits) of those actions."""


def sample_users(transitions: Transitions, n: int, seed: int = 0) -> np.ndarray:
    """``n`` distinct user ids drawn uniformly from the users of ``transitions``."""
    users = np.unique(transitions.user_id)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(users, size=min(n, len(users)), replace=False)).astype(np.int64)


def decision_history_len(agent: Agent) -> int:
    """The history window ``agent`` reads at a decision: its encoder's ``history_len`` (what a
    Transformer attends over; 10 by default). ``noetik act``, ``noetik explain`` and the report
    all take it from here."""
    return int(agent.config.encoder.history_len)


def window_states(
    ds: KuaiRandDataset,
    transitions: Transitions,
    user_ids: np.ndarray,
    states_window: int,
    history_window: int,
) -> UserStates:
    """Decision states whose 128-d state summarises the last ``states_window`` interactions
    (the task's ``states.history_len``, as in training) and whose raw history holds the last
    ``history_window`` (the encoder's); one pass when the two windows are equal."""
    states = user_states(ds, transitions, user_ids, states_window)
    if history_window == states_window:
        return states
    raw = user_states(ds, transitions, user_ids, history_window)
    return dataclasses.replace(states, history=raw.history)


def decision_states(
    agent: Agent,
    ds: KuaiRandDataset,
    transitions: Transitions,
    user_ids: np.ndarray,
    states_window: int = 10,
) -> UserStates:
    """The current decision state of each user in ``user_ids`` (R,) as ``agent`` sees it, with
    the task's state window ``states_window``: the one way to get it."""
    return window_states(ds, transitions, user_ids, states_window, decision_history_len(agent))


def user_states(
    ds: KuaiRandDataset, transitions: Transitions, user_ids: np.ndarray, history_len: int = 10
) -> UserStates:
    """The current decision state of each user in ``user_ids`` (R,) (see the module docs)."""
    ids = np.asarray(user_ids, dtype=np.int64)
    tables = OnlineStateTables.from_dataset(ds, transitions.vocab)
    states = OnlineStates(tables, len(ids), history_len)
    states.reset(np.arange(len(ids)), ids, history_after(transitions, ids, history_len))
    time_s = _last_time_s(transitions, ids) + DECISION_DELAY_S
    tab = np.full(len(ids), DECISION_TAB, dtype=np.int64)
    obs = states.observe(time_s, tab, np.zeros(len(ids), dtype=np.int64))
    return UserStates(ids, obs, states.history(time_s))


def _last_time_s(transitions: Transitions, user_ids: np.ndarray) -> np.ndarray:
    """(R,) float64 time of each user's last interaction (the log's last time if none)."""
    order = np.lexsort((transitions.time_ms, transitions.user_id))
    users, times = transitions.user_id[order], transitions.time_ms[order]
    last = np.searchsorted(users, user_ids, side="right") - 1
    found = (last >= 0) & (users[np.maximum(last, 0)] == user_ids)
    fallback = float(transitions.time_ms.max())
    return np.where(found, times[np.maximum(last, 0)], fallback).astype(np.float64) / 1000.0


def top_k(
    agent: Agent, states: UserStates, k: int, exclude: Exclusions | None = None
) -> Recommendations:
    """The ``k`` best-scored actions of ``agent`` for each user, with their scores, leaving
    out ``exclude`` (one row per user, e.g. :func:`seen_exclusions`); exact at any catalogue
    size (:func:`noetik.agents.core.serving.top_k`)."""
    device = next(iter(agent.parameters()), torch.empty(0)).device
    obs = torch.as_tensor(states.obs, dtype=torch.float32, device=device)
    history = History.from_numpy(states.history, device)
    values, best = serving.top_k(agent, obs, history, min(k, agent.spec.n_actions), exclude=exclude)
    actions = best.cpu().numpy().astype(np.int64)
    video_ids = agent.spec.video_ids[actions] if agent.spec.video_ids is not None else actions
    return Recommendations(
        states.user_ids, actions, video_ids, values.cpu().numpy().astype(np.float32)
    )
