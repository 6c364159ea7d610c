"""When simulated KuaiRand users end their sessions: fixed length, or the logs' hazard.

Sessions of the standard log are cut where the same user was inactive for more than
``session_gap_minutes`` (the data layer's session rule). From their lengths ``L`` the
empirical hazard is ``h(t) = #{L = t} / #{L >= t}``: the probability that a user who has
seen ``t`` videos leaves after the ``t``-th. Where fewer than :data:`MIN_AT_RISK` sessions
reach step ``t`` the tail is pooled into one constant hazard (the geometric maximum-likelihood
estimate ``#{L >= t0} / sum_{L >= t0} (L - t0 + 1)``), so rare long sessions do not make the
hazard jump. In the environment the hazard is modulated by the step's reward ``r``::

    logit p(t) = logit h(t) - leave_reward_coef * (r - r_ref)

with ``r_ref`` the mean reward of the random-exposure log: a random policy keeps users about as
long as the logs do, a better one keeps them longer. With ``leave_repeat_coef`` (DORL, Gao et
al. SIGIR 2023: users tire of the same kind of video) the log-odds also rise by
``leave_repeat_coef * s``, ``s`` the share of the last 10 videos shown before this one that
share its main tag (:func:`repeat_share`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np

from noetik.data.rewards import RewardConfig, reward_from_signals
from noetik.simulators import core
from noetik.simulators.core import BoolArray, FloatArray
from noetik.simulators.kuairand.users import KuaiRandUsers
from noetik.simulators.kuairand.world import LogArrays

#: Fewest sessions at risk for a step's own hazard estimate; the tail beyond is pooled.
MIN_AT_RISK = 30


@dataclass(frozen=True, eq=False)
class LogSessionStats:
    """Session statistics of the standard log under one session gap."""

    lengths: np.ndarray
    """(S,) int64 session lengths (interactions)."""
    start_s: np.ndarray
    """(S,) float64 Unix seconds of each session's first interaction."""
    start_tab: np.ndarray
    """(S,) int64 app tab of each session's first interaction."""
    within_gap_mean_s: float
    """Mean seconds between consecutive interactions of one session."""
    between_gaps_s: np.ndarray
    """(G,) float64 seconds between a user's consecutive sessions (at least one entry)."""


def session_stats(log: LogArrays, gap_minutes: float) -> LogSessionStats:
    """Cut ``log`` (sorted by user, time) into sessions at gaps longer than ``gap_minutes``."""
    n = len(log.time_ms)
    if n == 0:
        raise ValueError("the standard log is empty")
    diff = np.diff(log.time_ms).astype(np.float64) / 1000.0
    same_user = log.user_id[1:] == log.user_id[:-1]
    new = np.r_[True, ~same_user | (diff > gap_minutes * 60.0)]
    starts = np.flatnonzero(new)
    lengths = np.diff(np.r_[starts, n]).astype(np.int64)
    inside = ~new[1:]
    within = float(diff[inside].mean()) if inside.any() else 60.0
    between = diff[same_user & new[1:]]
    if not len(between):
        between = np.array([2.0 * gap_minutes * 60.0])
    tab = np.clip(log.tab[starts], 0, 14)
    return LogSessionStats(lengths, log.time_ms[starts] / 1000.0, tab, within, between)


def empirical_hazard(lengths: np.ndarray, max_steps: int) -> FloatArray:
    """(max_steps + 1,) float64 ``h[t] = P(L = t | L >= t)`` for t >= 1 (``h[0] = 0``)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    top = max(int(lengths.max(initial=0)), max_steps) + 2
    counts = np.bincount(lengths, minlength=top).astype(np.float64)
    at_risk = counts[::-1].cumsum()[::-1]  # at_risk[t] = #{L >= t}
    hazard = np.zeros(max_steps + 1, dtype=np.float64)
    t0 = 1
    while t0 <= max_steps and at_risk[t0] >= MIN_AT_RISK:
        hazard[t0] = counts[t0] / at_risk[t0]
        t0 += 1
    if t0 <= max_steps:
        tail = lengths[lengths >= t0]
        exposure = float((tail - t0 + 1).sum())
        fallback = hazard[t0 - 1] if t0 > 1 else 1.0 / max(float(lengths.mean()), 1.0)
        hazard[t0:] = len(tail) / exposure if exposure > 0 else fallback
    return hazard


def expected_length(hazard: FloatArray, max_steps: int) -> float:
    """Mean session length under ``hazard`` truncated at ``max_steps``: ``E[min(L, max)]``."""
    survive = np.cumprod(1.0 - hazard[1 : max_steps + 1])  # P(L > t), t = 1..max
    return float(1.0 + survive[:-1].sum())


def reference_reward(random: LogArrays | None, standard: LogArrays, reward: RewardConfig) -> float:
    """Mean reward of the random-exposure log (of the standard log when there is none)."""
    log = random if random is not None and len(random.action) else standard
    return float(reward_from_signals(log.signals, reward).astype(np.float64).mean())


def main_tags(action_tags: np.ndarray) -> np.ndarray:
    """(N,) int64 main tag of each action (its first tag bucket; -1 without a tag) from the
    (N, 24) multi-hot ``action_tags`` (e.g. the state tables', whose last row is padding)."""
    tags = np.asarray(action_tags)
    main: np.ndarray = np.where(tags.any(axis=1), tags.argmax(axis=1), -1).astype(np.int64)
    return main


def repeat_share(history_items: np.ndarray, item: np.ndarray, main_tag: np.ndarray) -> FloatArray:
    """(B,) float64 share of the K slots of ``history_items`` (B, K) int64 (padding allowed)
    whose main tag is that of ``item`` (B,) int64; 0 for an item without a tag."""
    current = main_tag[item][:, None]
    same = (main_tag[history_items] == current) & (current >= 0)
    share: FloatArray = same.sum(axis=1) / history_items.shape[1]
    return share


class FixedLength(core.Termination):
    """Sessions end (terminated) after exactly ``length`` steps; ``max_steps`` truncates."""

    def __init__(self, length: int, max_steps: int) -> None:
        self.length, self.max_steps = length, max_steps

    def __call__(self, users: core.Users) -> tuple[BoolArray, BoolArray]:
        terminated = users.t >= self.length
        cast(KuaiRandUsers, users).leave_prob[:] = terminated
        return terminated, (users.t >= self.max_steps) & ~terminated


class HazardLeave(core.Termination):
    """After each step a user leaves with the reward-modulated hazard (see module docs).

    Reads ``users.signals`` (B, 12) of the step, ``users.leave_draw`` (B,) uniforms drawn by
    the user model and (``repeat_coef > 0``) ``users.repeat_share`` (B,), and writes
    ``users.leave_prob`` (B,).
    """

    def __init__(
        self,
        hazard: FloatArray,
        reward: RewardConfig,
        coef: float,
        ref: float,
        max_steps: int,
        *,
        repeat_coef: float = 0.0,
    ) -> None:
        clipped = np.clip(hazard, 1e-9, 1.0 - 1e-9)
        self.hazard, self.logit = hazard, np.log(clipped / (1.0 - clipped))
        self.reward = reward
        self.coef, self.ref, self.max_steps = coef, ref, max_steps
        self.repeat_coef = repeat_coef

    def __call__(self, users: core.Users) -> tuple[BoolArray, BoolArray]:
        kr = cast(KuaiRandUsers, users)
        t = np.minimum(kr.t, len(self.hazard) - 1)
        if self.coef == 0.0 and self.repeat_coef == 0.0:
            p = self.hazard[t]
        else:
            r = reward_from_signals(kr.signals, self.reward, dtype=np.float64)
            stay_odds = self.coef * (r - self.ref) - self.logit[t]  # minus the leave log-odds
            if self.repeat_coef != 0.0:
                stay_odds = stay_odds - self.repeat_coef * kr.repeat_share
            p = 1.0 / (1.0 + np.exp(stay_odds))
        kr.leave_prob[:] = p
        left: BoolArray = kr.leave_draw < p
        return left, (kr.t >= self.max_steps) & ~left
