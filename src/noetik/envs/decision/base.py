"""The Gymnasium face shared by the decision-task environments.

A trial asks for one choice per level of the task's :class:`~noetik.data.choices.TaskDesign`
(one step per level: a bandit trial is one step, a two-step trial two). The action is the
option within the current state (``Discrete(options per state)``); the full option index, as
:class:`~noetik.data.choices.ChoiceEpisodes` stores it, is ``state * options_per_state +
action``. Outcomes arrive on a trial's last step; the step's reward is their sum (reward, or
gain + loss), raw. An episode ends (``terminated``) after ``n_trials`` trials.

Observation (float32): ``[one-hot of the current (level, state) | one-hot of each level's
choice on the previous trial | the previous trial's outcomes]`` (zeros before the first trial).

``info`` on every step: ``trial`` (trials completed), ``level`` and ``state`` of the next
decision, ``choice`` (the full option index just chosen), ``outcomes`` ((O,) float64, zeros
before a trial's last step) and each outcome by name (``reward``, or ``gain`` and ``loss``),
and ``option_values`` ((V,) float64, the task's per-option values in effect on the trial, e.g.
reward probabilities). ``reset`` gives ``trial``, ``level``, ``state`` and ``option_values``.

Seeding: all randomness comes from ``np_random``, seeded by ``reset(seed=...)``: the same seed
and actions give the same episode.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt
from gymnasium import spaces

from noetik.data.choices import FloatArray, IntArray, TaskDesign
from noetik.errors import ConfigError
from noetik.simulators.core import check_positive

__all__ = ["DecisionEnv", "DriftConfig", "check_count", "check_probability", "reflect"]

Float32Array = npt.NDArray[np.float32]


def check_count(name: str, value: int, minimum: int = 1) -> None:
    """Raise ConfigError naming ``name`` unless ``value`` is an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")


def check_probability(name: str, value: float) -> None:
    """Raise ConfigError naming ``name`` unless ``value`` lies in [0, 1]."""
    if not 0.0 <= float(value) <= 1.0:
        raise ConfigError(f"{name} must lie in [0, 1], got {value!r}")


def reflect(
    p: FloatArray, sd: float, low: float, high: float, rng: np.random.Generator
) -> FloatArray:
    """One step of a Gaussian random walk (``sd``) of ``p`` with reflecting bounds [low, high]."""
    step = p + rng.normal(0.0, sd, size=p.shape)
    step = np.where(step > high, 2.0 * high - step, step)
    step = np.where(step < low, 2.0 * low - step, step)
    out: FloatArray = np.clip(step, low, high)
    return out


@dataclass(frozen=True)
class DriftConfig:
    """Probabilities that drift: a Gaussian random walk with reflecting bounds, started
    uniform within them (the options of the drifting tasks)."""

    drift_sd: float = 0.025
    """Standard deviation of each probability's Gaussian step per trial."""
    p_low: float = 0.25
    """Lower reflecting bound of the probabilities."""
    p_high: float = 0.75
    """Upper reflecting bound of the probabilities."""

    def __post_init__(self) -> None:
        check_positive("drift_sd", self.drift_sd, allow_zero=True)
        check_probability("p_low", self.p_low)
        check_probability("p_high", self.p_high)
        if self.p_low >= self.p_high:
            raise ConfigError(f"p_low must be below p_high, got {self.p_low} >= {self.p_high}")

    def start(self, n: int, rng: np.random.Generator) -> FloatArray:
        """(n,) probabilities drawn uniformly within the bounds."""
        out: FloatArray = rng.uniform(self.p_low, self.p_high, size=n)
        return out

    def step(self, p: FloatArray, rng: np.random.Generator) -> FloatArray:
        """``p`` after one step of the walk."""
        return reflect(p, self.drift_sd, self.p_low, self.p_high, rng)


class DecisionEnv(gym.Env[Float32Array, np.int64], ABC):
    """One participant doing one run of ``n_trials`` trials of a decision task."""

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012

    #: Names of the per-option values reported in ``info["option_values"]``.
    option_value_names: tuple[str, ...] = ()

    def __init__(
        self,
        design: TaskDesign,
        n_trials: int,
        outcome_bounds: tuple[tuple[float, float], ...],
        render_mode: str | None = None,
    ) -> None:
        check_count("n_trials", n_trials)
        per_state = {design.options_per_state(lv) for lv in range(design.n_levels)}
        if len(per_state) != 1:
            raise ConfigError(f"{design.task}: every level must offer the same number of options")
        self.design = design
        self.n_trials = n_trials
        self.render_mode = render_mode
        self._k = per_state.pop()
        self._state_offset = np.cumsum([0, *design.states])[:-1]
        self._choice_offset = np.cumsum([0, *design.n_options])[:-1]
        size_states, size_choices = sum(design.states), sum(design.n_options)
        low = np.zeros(size_states + size_choices, dtype=np.float32)
        high = np.ones(size_states + size_choices, dtype=np.float32)
        bounds = np.asarray(outcome_bounds, dtype=np.float32).reshape(-1, 2)
        self._obs_size = size_states + size_choices + len(bounds)
        self.observation_space = spaces.Box(
            np.concatenate([low, bounds[:, 0]]), np.concatenate([high, bounds[:, 1]])
        )
        self.action_space = spaces.Discrete(self._k)
        self._started = False
        self._trial = self._level = self._state = 0
        self._choices: IntArray = np.zeros(design.n_levels, dtype=np.int64)
        self._last_choices: IntArray = np.full(design.n_levels, -1, dtype=np.int64)
        self._last_outcomes: FloatArray = np.zeros(len(design.outcomes))

    # -- what each task defines ------------------------------------------------------------
    @abstractmethod
    def _begin(self, rng: np.random.Generator) -> None:
        """Draw the task's hidden state for a new run (reward probabilities, deck orders)."""

    @abstractmethod
    def _outcomes(self, choices: IntArray, rng: np.random.Generator) -> FloatArray:
        """(O,) outcomes of a trial whose full option indices per level are ``choices``."""

    def _transition(self, level: int, choice: int, rng: np.random.Generator) -> int:
        """State of level ``level + 1`` after ``choice`` at ``level`` (multi-level tasks)."""
        raise NotImplementedError(f"{self.design.task} has one choice level")

    def _end_trial(self, choices: IntArray, rng: np.random.Generator) -> None:
        """Move the task on after a trial (drift, reversal); default: nothing changes."""

    def _option_values(self) -> FloatArray:
        """(V,) per-option values in effect now (empty by default)."""
        return np.zeros(0)

    @property
    def option_values(self) -> FloatArray:
        """(V,) the task's per-option values in effect for the next decision."""
        return self._option_values()

    # -- the Gymnasium API -----------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Float32Array, dict[str, Any]]:
        """Start a new run of the task."""
        super().reset(seed=seed)
        self._started = True
        self._trial = self._level = self._state = 0
        self._last_choices = np.full(self.design.n_levels, -1, dtype=np.int64)
        self._last_outcomes = np.zeros(len(self.design.outcomes))
        self._begin(self.np_random)
        info = {"trial": 0, "level": 0, "state": 0, "option_values": self._option_values()}
        return self._observe(), info

    def step(self, action: Any) -> tuple[Float32Array, float, bool, bool, dict[str, Any]]:
        """Choose option ``action`` of the current state."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        if self._trial >= self.n_trials:
            raise RuntimeError(f"the run of {self.n_trials} trials is over; call reset()")
        a = int(action)
        if not 0 <= a < self._k:
            raise ValueError(f"actions must be options in [0, {self._k}), got {action!r}")
        rng, level = self.np_random, self._level
        choice = self._state * self._k + a
        self._choices[level] = choice
        outcomes = np.zeros(len(self.design.outcomes))
        values = self._option_values()
        if level < self.design.n_levels - 1:
            self._state = self._transition(level, choice, rng)
            self._level += 1
        else:
            outcomes = np.asarray(self._outcomes(self._choices, rng), dtype=np.float64)
            self._end_trial(self._choices, rng)
            self._last_choices = self._choices.copy()
            self._last_outcomes = outcomes
            self._trial += 1
            self._level = self._state = 0
        info: dict[str, Any] = {
            "trial": self._trial,
            "level": self._level,
            "state": self._state,
            "choice": choice,
            "outcomes": outcomes,
            "option_values": values,
        }
        info.update(zip(self.design.outcomes, outcomes.tolist(), strict=True))
        terminated = self._trial >= self.n_trials
        return self._observe(), float(outcomes.sum()), terminated, False, info

    def _observe(self) -> Float32Array:
        design = self.design
        obs: Float32Array = np.zeros(self._obs_size, dtype=np.float32)
        obs[self._state_offset[self._level] + self._state] = 1.0
        base = sum(design.states)
        seen = self._last_choices >= 0
        obs[base + self._choice_offset[seen] + self._last_choices[seen]] = 1.0
        obs[base + sum(design.n_options) :] = self._last_outcomes
        return obs
