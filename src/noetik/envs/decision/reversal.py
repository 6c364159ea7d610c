"""``noetik/ReversalLearning-v0``: probabilistic reversal learning with two options.

One option is good (pays ``reward`` with probability ``p_good``, else ``loss``), the other bad
(``p_bad``); which is good is drawn at the start. The contingency reverses once the current
block has lasted ``min_block`` trials and the participant has chosen the good option on the
last ``criterion`` trials in a row (``criterion=0``: every ``min_block`` trials), the
performance-based schedule of probabilistic reversal-learning studies (e.g. den Ouden et al.,
2013, hBayesDM's ``prl`` tasks, whose outcomes are 1 / -1). ``info["option_values"]``: the
reward probability of each option on the trial.

>>> import gymnasium as gym, noetik
>>> env = gym.make("noetik/ReversalLearning-v0", n_trials=160, p_good=0.8)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from noetik.data.choices import FloatArray, IntArray, TaskDesign
from noetik.envs.decision.base import DecisionEnv, check_count, check_probability
from noetik.simulators.core import make_config

ENV_ID = "noetik/ReversalLearning-v0"


@dataclass(frozen=True)
class ReversalConfig:
    """Options of ``noetik/ReversalLearning-v0``."""

    n_trials: int = 200
    """Trials in a run."""
    p_good: float = 0.8
    """Reward probability of the good option."""
    p_bad: float = 0.2
    """Reward probability of the bad option."""
    reward: float = 1.0
    """Outcome of a rewarded choice."""
    loss: float = -1.0
    """Outcome of an unrewarded choice."""
    min_block: int = 10
    """Fewest trials between two reversals."""
    criterion: int = 4
    """Consecutive good choices that, after ``min_block`` trials, trigger a reversal."""

    def __post_init__(self) -> None:
        check_count("n_trials", self.n_trials)
        check_probability("p_good", self.p_good)
        check_probability("p_bad", self.p_bad)
        check_count("min_block", self.min_block)
        check_count("criterion", self.criterion, 0)


class ReversalLearningEnv(DecisionEnv):
    """``gymnasium.make("noetik/ReversalLearning-v0", **ReversalConfig fields)``."""

    option_value_names = ("p1", "p2")

    def __init__(self, render_mode: str | None = None, **options: Any) -> None:
        self.config = config = make_config(ReversalConfig, options, ENV_ID)
        design = TaskDesign("reversal", (2,), (1,), ("reward",))
        low, high = sorted((config.reward, config.loss))
        super().__init__(design, config.n_trials, ((low, high),), render_mode)
        self._good = self._block = self._streak = 0

    def _begin(self, rng: np.random.Generator) -> None:
        self._good = int(rng.integers(2))
        self._block = self._streak = 0

    def _outcomes(self, choices: IntArray, rng: np.random.Generator) -> FloatArray:
        p = self._option_values()[choices[0]]
        return np.array([self.config.reward if rng.random() < p else self.config.loss])

    def _end_trial(self, choices: IntArray, rng: np.random.Generator) -> None:
        self._block += 1
        self._streak = self._streak + 1 if choices[0] == self._good else 0
        if self._block >= self.config.min_block and self._streak >= self.config.criterion:
            self._good = 1 - self._good
            self._block = self._streak = 0

    def _option_values(self) -> FloatArray:
        p = np.full(2, self.config.p_bad)
        p[self._good] = self.config.p_good
        return p
