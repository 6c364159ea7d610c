"""``noetik/TwoStep-v0``: the two-step task of Daw, Gershman, Seymour, Dayan & Dolan (2011).

Each trial has two choices. At the first stage one of two options (0, 1) leads to a
second-stage state, A or B: option 0 to A and option 1 to B with the common probability
``common`` (0.7), else to the other (rare). In that state the participant chooses one of two
options (full indices 0-1 in A, 2-3 in B, as hBayesDM's ``level2_choice`` 1-4), which pays
``reward`` with its current probability, else 0. After every trial the four probabilities move
by a Gaussian random walk (SD ``drift_sd``, 0.025) with reflecting bounds ``[p_low, p_high]``
(Daw et al.: [0.25, 0.75]; the hBayesDM example file's probabilities span [0.2, 0.8]); they
start uniform in the bounds. ``info["option_values"]``: the four probabilities in effect on the
trial, named as the data's ``A1prob, A2prob, B1prob, B2prob``.

>>> import gymnasium as gym, noetik
>>> env = gym.make("noetik/TwoStep-v0", n_trials=200)
>>> obs, info = env.reset(seed=0)
>>> obs, reward, terminated, truncated, info = env.step(0)   # first stage
>>> info["state"]                                             # 0: A, 1: B
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from noetik.data.choices import FloatArray, IntArray, TaskDesign
from noetik.envs.decision.base import DecisionEnv, DriftConfig, check_count, check_probability
from noetik.simulators.core import check_positive, make_config

ENV_ID = "noetik/TwoStep-v0"


@dataclass(frozen=True)
class TwoStepConfig(DriftConfig):
    """Options of ``noetik/TwoStep-v0`` (and ``drift_sd`` = 0.025, ``p_low`` = 0.25, ``p_high``
    = 0.75 of :class:`~noetik.envs.decision.base.DriftConfig`, Daw et al.'s values)."""

    n_trials: int = 200
    """Trials in a run (two choices each)."""
    common: float = 0.7
    """Probability of the common transition (option 0 -> A, option 1 -> B)."""
    reward: float = 1.0
    """Size of a reward (> 0)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_count("n_trials", self.n_trials)
        check_probability("common", self.common)
        check_positive("reward", self.reward)


class TwoStepEnv(DecisionEnv):
    """``gymnasium.make("noetik/TwoStep-v0", **TwoStepConfig fields)``."""

    option_value_names = ("A1prob", "A2prob", "B1prob", "B2prob")

    def __init__(self, render_mode: str | None = None, **options: Any) -> None:
        self.config = config = make_config(TwoStepConfig, options, ENV_ID)
        design = TaskDesign("two-step", (2, 4), (1, 2), ("reward",))
        super().__init__(design, config.n_trials, ((0.0, config.reward),), render_mode)
        self._p = np.zeros(4)

    def _begin(self, rng: np.random.Generator) -> None:
        self._p = self.config.start(4, rng)

    def _transition(self, level: int, choice: int, rng: np.random.Generator) -> int:
        return choice if rng.random() < self.config.common else 1 - choice

    def _outcomes(self, choices: IntArray, rng: np.random.Generator) -> FloatArray:
        win = rng.random() < self._p[choices[1]]
        return np.array([self.config.reward if win else 0.0])

    def _end_trial(self, choices: IntArray, rng: np.random.Generator) -> None:
        self._p = self.config.step(self._p, rng)

    def _option_values(self) -> FloatArray:
        return self._p.copy()
