"""The one loop that steps a Gymnasium ``VectorEnv`` with a policy and records what was asked.

On-policy training (:mod:`~noetik.agents.onpolicy.rollout`), online evaluation
(:mod:`noetik.evaluation.online.sessions`), the OPE check's logging
(:mod:`noetik.evaluation.ope.simulated_logs`) and simulated logs
(:mod:`noetik.analysis.simulated`) all run :meth:`Collector.run`:

* **continuing** (``until_done=False``): exactly ``n_steps`` calls to ``env.step``, episodes
  restarting by next-step autoreset; the collector keeps ``obs`` / ``info`` between runs, and
  with ``episodes=True`` closes the episodes that ended
  (:func:`~noetik.agents.onpolicy.episode_log.episode_log`, carried across runs).
* **sessions** (``until_done=True``): from :meth:`Collector.reset`, until every row's first
  episode ended (or ``n_steps``); :attr:`Step.active` marks the rows still in it, and with
  ``active_only=True`` the policy is asked about those rows only.

The policy is ``policy(obs (B, ...), info) -> actions`` or ``-> (actions, extra)``: the extras
(e.g. log-probabilities and values as tensors) are kept in order in :attr:`Collected.extras`.
``keep_obs=True`` copies each observation into a host buffer (T, B, ...) float32 *before* the
policy sees it, and hands the policy that buffer row (no second copy). ``keep_steps=True`` keeps
the raw (T, B) rewards and flags. Anything else is recorded by hooks called after each step
with a :class:`Step`; :class:`SessionTotals` is the per-session summary of online evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from noetik.agents.onpolicy.episode_log import EpisodeLog, episode_log
from noetik.errors import ConfigError

__all__ = [
    "Collected",
    "Collector",
    "Hook",
    "Policy",
    "SessionTotals",
    "Step",
    "check_next_step",
    "select_rows",
]

#: ``(obs (B, ...), info with (B, ...) arrays) -> actions (B, ...) int64 | (actions, extra)``.
Policy = Callable[[np.ndarray, dict[str, Any]], Any]


@dataclass(frozen=True)
class Step:
    """One call to ``env.step`` as hooks see it (B = ``num_envs``)."""

    t: int
    """Index of the step in this run (0-based)."""
    obs: np.ndarray
    """(B, ...) the observations the actions were chosen on (all rows)."""
    info: dict[str, Any]
    """The ``info`` that came with ``obs`` (all rows)."""
    action: np.ndarray
    """(B, ...) int64 the env actions (0 on rows the policy was not asked about)."""
    extra: Any
    """What the policy returned besides the actions (None when nothing)."""
    reward: np.ndarray
    """(B,) the rewards ``env.step`` returned, as it returned them."""
    terminated: np.ndarray
    """(B,) bool raw ``terminated`` of ``env.step``."""
    truncated: np.ndarray
    """(B,) bool raw ``truncated`` of ``env.step``."""
    next_info: dict[str, Any]
    """The ``info`` ``env.step`` returned."""
    active: np.ndarray
    """(B,) bool rows still in their first episode before this step (all True when the run
    is continuing); never changed in place by the collector."""


#: A hook: called after each step, in order.
Hook = Callable[[Step], None]


@dataclass(frozen=True)
class Collected:
    """What one :meth:`Collector.run` recorded (T = steps taken, B = ``num_envs``)."""

    steps: int
    """Calls to ``env.step`` made (T)."""
    obs: np.ndarray | None
    """(T, B, ...) float32 observation each action was chosen on (``keep_obs``), else None."""
    reward: np.ndarray | None
    """(T, B) float32 raw rewards (``keep_steps``), else None."""
    terminated: np.ndarray | None
    """(T, B) bool raw ``terminated`` (``keep_steps``), else None."""
    truncated: np.ndarray | None
    """(T, B) bool raw ``truncated`` (``keep_steps``), else None."""
    extras: list[Any] = field(default_factory=list)
    """(T,) the policy's extras, one per step (empty when it returned actions only)."""
    episodes: EpisodeLog | None = None
    """The masked view of the steps and the episodes that ended (``episodes=True``)."""


def check_next_step(env: Any) -> None:
    """Raise :class:`ConfigError` unless ``env`` autoresets on the next step (or says
    nothing about it, as Noetik's test envs)."""
    mode = getattr(env, "metadata", {}).get("autoreset_mode")
    if mode is not None and getattr(mode, "value", mode) != "NextStep":
        raise ConfigError(f"this loop needs a next-step autoreset env, got {mode}")


def select_rows(info: dict[str, Any], rows: np.ndarray, n: int) -> dict[str, Any]:
    """``info`` restricted to ``rows`` (M,) int64: every (n, ...) array (other keys dropped)."""
    return {
        k: v[rows]
        for k, v in info.items()
        if isinstance(v, np.ndarray) and v.ndim and v.shape[0] == n
    }


class Collector:
    """Steps the next-step-autoreset vector env ``envs``; ``obs`` / ``info`` persist between
    runs (the state after the last step; :meth:`reset` starts new episodes)."""

    def __init__(self, envs: Any, *, seed: int | None = None, next_step: bool = False) -> None:
        """``seed``: reset ``envs`` now with it; ``next_step``: check the autoreset mode
        (needed by continuing runs with ``episodes=True``)."""
        if next_step:
            check_next_step(envs)
        self.envs = envs
        self.num_envs = int(envs.num_envs)
        self.obs: np.ndarray = np.empty(0)
        """(B, ...) the observations the next step's actions are chosen on."""
        self.info: dict[str, Any] = {}
        """The ``info`` that came with :attr:`obs`."""
        self.ended = np.zeros(self.num_envs, dtype=bool)
        """(B,) bool rows whose episode ended at the last step (the next step restarts them)."""
        self.carry = np.zeros(self.num_envs)
        """(B,) float64 undiscounted return so far of each row's unfinished episode."""
        if seed is not None:
            self.reset(seed)

    def reset(self, seed: int | None) -> None:
        """``envs.reset(seed=seed)``: new episodes in every row."""
        self.obs, self.info = self.envs.reset(seed=seed)
        self.ended = np.zeros(self.num_envs, dtype=bool)
        self.carry = np.zeros(self.num_envs)

    def run(
        self,
        policy: Policy,
        n_steps: int,
        *,
        until_done: bool = False,
        active_only: bool = False,
        keep_obs: bool = False,
        keep_steps: bool = False,
        episodes: bool = False,
        hooks: Sequence[Hook] = (),
    ) -> Collected:
        """At most ``n_steps`` steps of ``policy`` (see the module docs for the options)."""
        if episodes and (until_done or not keep_steps):
            raise ConfigError("episodes=True needs a continuing run with keep_steps=True")
        n = self.num_envs
        obs_buf = np.empty((n_steps, *np.shape(self.obs)), np.float32) if keep_obs else None
        rew = np.zeros((n_steps, n), dtype=np.float32) if keep_steps else None
        term = np.zeros((n_steps, n), dtype=bool) if keep_steps else None
        trunc = np.zeros((n_steps, n), dtype=bool) if keep_steps else None
        extras: list[Any] = []
        active = np.ones(n, dtype=bool)
        steps = 0
        for t in range(n_steps):
            obs, info = self.obs, self.info
            if obs_buf is not None:
                obs_buf[t] = obs
                obs = obs_buf[t]
            subset = active_only and not active.all()
            action, extra, has_extra = _decide(policy, obs, info, active if subset else None)
            if has_extra:
                extras.append(extra)
            self.obs, reward, terminated, truncated, self.info = self.envs.step(action)
            steps = t + 1
            if rew is not None and term is not None and trunc is not None:
                rew[t], term[t], trunc[t] = reward, terminated, truncated
            if hooks:
                step = Step(
                    t, obs, info, action, extra, reward, terminated, truncated, self.info, active
                )
                for hook in hooks:
                    hook(step)
            if until_done:
                active = active & ~(np.asarray(terminated) | np.asarray(truncated))
                if not active.any():
                    break
        if steps < n_steps:
            obs_buf = None if obs_buf is None else obs_buf[:steps]
            rew, term, trunc = (None if a is None else a[:steps] for a in (rew, term, trunc))
        log = None
        if episodes and rew is not None and term is not None and trunc is not None:
            log = episode_log(rew, term, trunc, ended=self.ended, carry=self.carry)
            self.ended, self.carry = log.ended, log.carry
        return Collected(steps, obs_buf, rew, term, trunc, extras, log)


def _decide(
    policy: Policy, obs: np.ndarray, info: dict[str, Any], active: np.ndarray | None
) -> tuple[np.ndarray, Any, bool]:
    """``(actions (B, ...) int64, extra, whether the policy gave extras)``; with ``active``
    (B,) bool the policy is asked about those rows only, the others get action 0."""
    if active is None:
        out = policy(obs, info)
        chosen, extra = out if isinstance(out, tuple) else (out, None)
        return np.asarray(chosen, dtype=np.int64), extra, isinstance(out, tuple)
    n = len(active)
    rows = np.flatnonzero(active)
    out = policy(obs[rows], select_rows(info, rows, n))
    chosen, extra = out if isinstance(out, tuple) else (out, None)
    chosen = np.asarray(chosen, dtype=np.int64)
    action = np.zeros((n, *chosen.shape[1:]), dtype=np.int64)
    action[rows] = chosen
    return action, extra, isinstance(out, tuple)


class SessionTotals:
    """Hook of a sessions run: per-row totals over each row's first episode."""

    def __init__(self, n: int, signal_names: tuple[str, ...], record_items: bool) -> None:
        """``n`` rows; sums of the ``info`` signals in ``signal_names`` the env reports;
        ``record_items``: keep the action of every step (``Discrete`` action spaces)."""
        self.signal_names = signal_names
        self.returns = np.zeros(n)
        """(B,) float64 sum of each session's rewards."""
        self.lengths = np.zeros(n, dtype=np.int64)
        """(B,) int64 steps of each session."""
        self.sums: dict[str, np.ndarray] = {}
        """Per reported signal, (B,) float64 its sum over each session's steps."""
        self.shown: list[np.ndarray] | None = [] if record_items else None
        """Per step, (B,) int64 the action shown (``-1`` after the session) when recorded."""

    def __call__(self, step: Step) -> None:
        """Add one step (rows not :attr:`Step.active` add nothing)."""
        active = step.active
        self.returns += np.where(active, step.reward, 0.0)
        self.lengths += active
        for s in self.signal_names:
            if s in step.next_info:
                value = np.where(active, np.asarray(step.next_info[s], dtype=np.float64), 0.0)
                self.sums[s] = self.sums[s] + value if s in self.sums else value
        if self.shown is not None:
            self.shown.append(np.where(active, step.action, -1))

    def means(self) -> dict[str, np.ndarray]:
        """Per reported signal, (B,) float64 its mean over each session's steps."""
        return {s: v / np.maximum(self.lengths, 1) for s, v in self.sums.items()}

    def items(self) -> np.ndarray | None:
        """(T, B) int64 actions shown, ``-1`` after each session's end (None if unrecorded)."""
        return np.stack(self.shown) if self.shown else None
