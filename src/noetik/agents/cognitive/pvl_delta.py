"""PVL-Delta, the prospect valence learning model with the delta rule (Ahn et al., 2008), for
the Iowa Gambling Task (four parameters).

With the trial's net outcome ``x_t`` (gain + loss, divided by ``outcome_scale``: 100 for
hBayesDM's IGT)::

    u_t = x_t ** alpha                    if x_t >= 0
    u_t = -lambda * |x_t| ** alpha        if x_t < 0
    E_{t+1}[c_t] = E_t[c_t] + A * (u_t - E_t[c_t])            E_1 = 0
    P(c_t = i) = softmax_i(theta * E_t),  theta = 3 ** c - 1

``A`` in [0, 1] (learning rate), ``alpha`` in [0, 2] (outcome sensitivity), ``c`` in [0, 5]
(choice consistency), ``lambda`` in [0, 10] (loss aversion): hBayesDM's ``igt_pvl_delta``.

>>> from noetik.agents.cognitive import PVLDelta
>>> PVLDelta().parameter_names
('A', 'alpha', 'c', 'lambda')
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from noetik.agents.cognitive.base import Learners, OptionValueModel, Parameter
from noetik.agents.cognitive.rescorla_wagner import delta_rule
from noetik.data.choices import FloatArray, IntArray

__all__ = ["PVLDelta"]


class PVLDelta(OptionValueModel):
    """Prospect utility, delta-rule expectancies, consistency-scaled softmax."""

    name: ClassVar[str] = "pvl_delta"
    parameters: ClassVar[tuple[Parameter, ...]] = (
        Parameter("A", 0.0, 1.0, 0.3, "learning rate", (0.05, 0.6)),
        Parameter("alpha", 0.0, 2.0, 0.5, "outcome sensitivity (utility exponent)", (0.2, 1.0)),
        Parameter("c", 0.0, 5.0, 1.0, "choice consistency, theta = 3^c - 1", (0.5, 2.5)),
        Parameter("lambda", 0.0, 10.0, 1.0, "loss aversion", (0.5, 5.0)),
    )

    def logits(
        self, learners: Learners, state: FloatArray, level: int, context: IntArray
    ) -> FloatArray:
        params = learners.params
        theta = np.power(3.0, params[:, 2:3]) - 1.0
        out: FloatArray = theta * state
        return out

    def update(
        self, learners: Learners, state: FloatArray, choices: IntArray, outcomes: FloatArray
    ) -> FloatArray:
        params = learners.params
        x = outcomes.sum(axis=1)
        magnitude = np.power(np.abs(x), params[:, 1])
        utility = np.where(x >= 0, magnitude, -params[:, 3] * magnitude)
        return delta_rule(state, choices[:, 0], utility, params[:, 0])
