"""Rescorla-Wagner with separate learning rates for gains and losses (three parameters).

Each option keeps a gain value ``G`` and a loss value ``L``, learned from the trial's gain
``g_t >= 0`` and loss ``l_t <= 0`` (the design's gain and loss columns, or the positive and
negative parts of a single reward column; divided by ``outcome_scale``)::

    P(c_t = i) = softmax_i(beta * (G_t + L_t))
    G_{t+1}[c_t] = G_t[c_t] + alpha_gain * (g_t - G_t[c_t])
    L_{t+1}[c_t] = L_t[c_t] + alpha_loss * (l_t - L_t[c_t])
    G_1 = L_1 = 0

as in the reward/punishment learning of Seymour et al. (2012) with unit sensitivities
(hBayesDM's ``bandit4arm_4par`` with R = P = 1, one ``beta``).

>>> from noetik.agents.cognitive import GainLossRW
>>> GainLossRW().parameter_names
('alpha_gain', 'alpha_loss', 'beta')
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from noetik.agents.cognitive.base import Learners, OptionValueModel, Parameter
from noetik.agents.cognitive.rescorla_wagner import delta_rule
from noetik.data.choices import FloatArray, IntArray

__all__ = ["GainLossRW", "gains_and_losses"]


def gains_and_losses(outcomes: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``(gain, loss)`` (B,) of (B, O) outcomes: the two columns, or the positive and negative
    parts of a single column."""
    if outcomes.shape[1] == 2:
        return outcomes[:, 0], outcomes[:, 1]
    r = outcomes[:, 0]
    return np.maximum(r, 0.0), np.minimum(r, 0.0)


class GainLossRW(OptionValueModel):
    """Separate delta rules for gains and losses (``alpha_gain``, ``alpha_loss``, ``beta``)."""

    name: ClassVar[str] = "rw_gain_loss"
    parameters: ClassVar[tuple[Parameter, ...]] = (
        Parameter("alpha_gain", 0.0, 1.0, 0.3, "learning rate from gains", (0.1, 0.9)),
        Parameter("alpha_loss", 0.0, 1.0, 0.3, "learning rate from losses", (0.1, 0.9)),
        Parameter("beta", 0.0, 50.0, 3.0, "inverse temperature", (1.0, 6.0)),
    )

    values_per_option: ClassVar[int] = 2

    def logits(
        self, learners: Learners, state: FloatArray, level: int, context: IntArray
    ) -> FloatArray:
        params, design = learners
        n = design.n_options[0]
        out: FloatArray = params[:, 2:3] * (state[:, :n] + state[:, n:])
        return out

    def update(
        self, learners: Learners, state: FloatArray, choices: IntArray, outcomes: FloatArray
    ) -> FloatArray:
        params, design = learners
        n = design.n_options[0]
        gain, loss = gains_and_losses(outcomes)
        c = choices[:, 0]
        g = delta_rule(state[:, :n], c, gain, params[:, 0])
        lo = delta_rule(state[:, n:], c, loss, params[:, 1])
        return np.concatenate([g, lo], axis=1)
