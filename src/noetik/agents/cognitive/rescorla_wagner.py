"""Rescorla-Wagner / Q-learning with softmax choice (two parameters).

For a task with one choice among n options and net outcome ``r_t`` (reward, or gain + loss,
divided by the design's ``outcome_scale``)::

    P(c_t = i) = exp(beta * Q_t[i]) / sum_j exp(beta * Q_t[j])
    Q_{t+1}[c_t] = Q_t[c_t] + alpha * (r_t - Q_t[c_t])       (unchosen values unchanged)
    Q_1 = 0

``alpha`` in [0, 1] is the learning rate, ``beta`` in [0, 50] the inverse temperature (as
hBayesDM's ``bandit2arm_delta``, whose ``tau`` is ``beta``).

>>> from noetik.agents.cognitive import RescorlaWagner, fit_subjects
>>> fits = fit_subjects(RescorlaWagner(), episodes)
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from noetik.agents.cognitive.base import Learners, OptionValueModel, Parameter
from noetik.data.choices import FloatArray, IntArray

__all__ = ["RescorlaWagner", "delta_rule"]


def delta_rule(
    values: FloatArray, chosen: IntArray, target: FloatArray, rate: FloatArray
) -> FloatArray:
    """``values`` (B, n) with the ``chosen`` (B,) entry moved towards ``target`` (B,) by
    ``rate`` (B,) times the prediction error (a copy; the input is unchanged)."""
    rows = np.arange(len(values))
    out = values.copy()
    out[rows, chosen] += rate * (target - values[rows, chosen])
    return out


class RescorlaWagner(OptionValueModel):
    """Delta-rule values with softmax choice (``alpha``, ``beta``); one-level tasks."""

    name: ClassVar[str] = "rw"
    parameters: ClassVar[tuple[Parameter, ...]] = (
        Parameter("alpha", 0.0, 1.0, 0.3, "learning rate", (0.1, 0.9)),
        Parameter("beta", 0.0, 50.0, 3.0, "inverse temperature", (1.0, 6.0)),
    )

    def logits(
        self, learners: Learners, state: FloatArray, level: int, context: IntArray
    ) -> FloatArray:
        params = learners.params
        out: FloatArray = params[:, 1:2] * state
        return out

    def update(
        self, learners: Learners, state: FloatArray, choices: IntArray, outcomes: FloatArray
    ) -> FloatArray:
        params = learners.params
        return delta_rule(state, choices[:, 0], outcomes.sum(axis=1), params[:, 0])
