"""``noetik/Bandit2Arm-v0``: a k-armed bandit with fixed reward probabilities.

Each arm ``i`` pays ``reward`` with probability ``p_reward[i]`` and ``loss`` otherwise, the
design of hBayesDM's two-armed bandit data (outcome 1 = reward, -1 = loss). One choice per
trial; ``info["option_values"]`` holds ``p_reward``.

>>> import gymnasium as gym, noetik
>>> env = gym.make("noetik/Bandit2Arm-v0", p_reward=(0.8, 0.2), n_trials=100)
>>> obs, info = env.reset(seed=0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from noetik.data.choices import FloatArray, IntArray, TaskDesign
from noetik.envs.decision.base import DecisionEnv, check_count, check_probability
from noetik.errors import ConfigError
from noetik.simulators.core import make_config

ENV_ID = "noetik/Bandit2Arm-v0"


@dataclass(frozen=True)
class BanditConfig:
    """Options of ``noetik/Bandit2Arm-v0``."""

    n_trials: int = 100
    """Trials in a run."""
    p_reward: tuple[float, ...] = (0.7, 0.3)
    """Reward probability of each arm (two or more arms)."""
    reward: float = 1.0
    """Outcome of a rewarded choice."""
    loss: float = -1.0
    """Outcome of an unrewarded choice."""

    def __post_init__(self) -> None:
        check_count("n_trials", self.n_trials)
        if len(self.p_reward) < 2:
            raise ConfigError(f"p_reward needs two or more arms, got {self.p_reward}")
        for i, p in enumerate(self.p_reward):
            check_probability(f"p_reward[{i}]", p)


class BanditEnv(DecisionEnv):
    """``gymnasium.make("noetik/Bandit2Arm-v0", **BanditConfig fields)``."""

    def __init__(self, render_mode: str | None = None, **options: Any) -> None:
        self.config = config = make_config(BanditConfig, options, ENV_ID)
        k = len(config.p_reward)
        self.option_value_names = tuple(f"p{i + 1}" for i in range(k))
        design = TaskDesign(f"bandit{k}arm", (k,), (1,), ("reward",))
        low, high = sorted((config.reward, config.loss))
        super().__init__(design, config.n_trials, ((low, high),), render_mode)
        self._p = np.asarray(config.p_reward, dtype=np.float64)

    def _begin(self, rng: np.random.Generator) -> None:
        pass

    def _outcomes(self, choices: IntArray, rng: np.random.Generator) -> FloatArray:
        win = rng.random() < self._p[choices[0]]
        return np.array([self.config.reward if win else self.config.loss])

    def _option_values(self) -> FloatArray:
        return self._p.copy()
