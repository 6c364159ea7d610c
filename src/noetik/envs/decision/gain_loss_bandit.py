"""``noetik/Bandit4Arm-v0``: four arms, each with its own drifting chances of a gain and of a
loss on every trial (after Seymour et al., 2012, hBayesDM's ``bandit4arm`` task).

On each trial the chosen arm ``i`` pays ``gain`` with probability ``p_gain[i]`` and, separately,
takes ``loss`` with probability ``p_loss[i]``, so a trial may bring both, either or neither.
After every trial all 2k probabilities move by a Gaussian random walk (SD ``drift_sd``) with
reflecting bounds ``[p_low, p_high]``; they start uniform in the bounds. The default range
matches the hBayesDM example file, where a gain follows 24% and a loss 27% of choices (the file
does not hold the study's own schedule). ``info["option_values"]``: ``p_gain`` then ``p_loss``.

>>> import gymnasium as gym, noetik
>>> env = gym.make("noetik/Bandit4Arm-v0", n_trials=200)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from noetik.data.choices import FloatArray, IntArray, TaskDesign
from noetik.envs.decision.base import DecisionEnv, DriftConfig, check_count
from noetik.simulators.core import check_positive, make_config

ENV_ID = "noetik/Bandit4Arm-v0"


@dataclass(frozen=True)
class GainLossBanditConfig(DriftConfig):
    """Options of ``noetik/Bandit4Arm-v0`` (and ``drift_sd``, ``p_low``, ``p_high`` of
    :class:`~noetik.envs.decision.base.DriftConfig`)."""

    p_low: float = 0.1
    """Lower reflecting bound of the gain and loss probabilities."""
    p_high: float = 0.5
    """Upper reflecting bound of the gain and loss probabilities."""
    n_trials: int = 200
    """Trials in a run."""
    n_arms: int = 4
    """Number of arms."""
    gain: float = 1.0
    """Size of a gain (> 0)."""
    loss: float = 1.0
    """Size of a loss (> 0; the outcome is ``-loss``)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        check_count("n_trials", self.n_trials)
        check_count("n_arms", self.n_arms, 2)
        check_positive("gain", self.gain)
        check_positive("loss", self.loss)


class GainLossBanditEnv(DecisionEnv):
    """``gymnasium.make("noetik/Bandit4Arm-v0", **GainLossBanditConfig fields)``."""

    def __init__(self, render_mode: str | None = None, **options: Any) -> None:
        self.config = config = make_config(GainLossBanditConfig, options, ENV_ID)
        k = config.n_arms
        self.option_value_names = tuple(
            f"{kind}{i + 1}" for kind in ("p_gain", "p_loss") for i in range(k)
        )
        design = TaskDesign(f"bandit{k}arm", (k,), (1,), ("gain", "loss"))
        bounds = ((0.0, config.gain), (-config.loss, 0.0))
        super().__init__(design, config.n_trials, bounds, render_mode)
        self._p = np.zeros(2 * k)

    def _begin(self, rng: np.random.Generator) -> None:
        self._p = self.config.start(2 * self.config.n_arms, rng)

    def _outcomes(self, choices: IntArray, rng: np.random.Generator) -> FloatArray:
        k, arm = self.config.n_arms, int(choices[0])
        gain, loss = rng.random(2) < self._p[[arm, k + arm]]
        return np.array([self.config.gain * gain, -self.config.loss * loss]) + 0.0

    def _end_trial(self, choices: IntArray, rng: np.random.Generator) -> None:
        self._p = self.config.step(self._p, rng)

    def _option_values(self) -> FloatArray:
        return self._p.copy()
