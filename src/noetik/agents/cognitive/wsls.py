"""Win-stay / lose-shift (two parameters).

After a win (net outcome > 0) the person repeats the choice with probability ``p_stay_win``;
after a loss (net outcome <= 0) they switch with probability ``p_shift_lose``; a switch picks
one of the other k - 1 options uniformly::

    P(c_t = c_prev) = p_stay_win            after a win,   1 - p_shift_lose after a loss
    P(c_t = i)      = (1 - P(c_t = c_prev)) / (k - 1)       for each i != c_prev
    P(c_1 = i)      = 1 / k

In a task with several choice levels (the two-step task) each level, in each state, repeats or
switches from the last choice made there, after the last trial's outcome.

>>> from noetik.agents.cognitive import WinStayLoseShift
>>> WinStayLoseShift().parameter_names
('p_stay_win', 'p_shift_lose')
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from noetik.agents.cognitive.base import CognitiveModel, Learners, Parameter
from noetik.data.choices import FloatArray, IntArray, TaskDesign

__all__ = ["WinStayLoseShift"]


def _slots(design: TaskDesign) -> IntArray:
    """(L,) index of each level's first state slot in the state vector (after the win flag)."""
    return 1 + np.cumsum([0, *design.states[:-1]]).astype(np.int64)


class WinStayLoseShift(CognitiveModel):
    """Repeat after a win, switch after a loss (``p_stay_win``, ``p_shift_lose``)."""

    name: ClassVar[str] = "wsls"
    parameters: ClassVar[tuple[Parameter, ...]] = (
        Parameter("p_stay_win", 0.0, 1.0, 0.8, "probability of repeating after a win", (0.4, 0.95)),
        Parameter(
            "p_shift_lose", 0.0, 1.0, 0.5, "probability of switching after a loss", (0.2, 0.9)
        ),
    )

    def supports(self, design: TaskDesign) -> bool:
        return True

    def initial_state(self, learners: Learners) -> FloatArray:
        params, design = learners
        """[last trial won (0/1), last option chosen in each (level, state) or -1]."""
        state = np.full((len(params), 1 + sum(design.states)), -1.0)
        state[:, 0] = 0.0
        return state

    def logits(
        self, learners: Learners, state: FloatArray, level: int, context: IntArray
    ) -> FloatArray:
        params, design = learners
        b, k = len(params), design.options_per_state(level)
        rows = np.arange(b)
        previous = state[rows, _slots(design)[level] + context].astype(np.int64)
        won = state[:, 0] > 0.5
        p_same = np.where(won, params[:, 0], 1.0 - params[:, 1])
        probs = np.repeat(((1.0 - p_same) / (k - 1))[:, None], k, axis=1)
        seen = previous >= 0
        probs[rows[seen], previous[seen]] = p_same[seen]
        probs[~seen] = 1.0 / k
        with np.errstate(divide="ignore"):
            out: FloatArray = np.log(probs)
        return out

    def update(
        self, learners: Learners, state: FloatArray, choices: IntArray, outcomes: FloatArray
    ) -> FloatArray:
        design = learners.design
        out = state.copy()
        rows = np.arange(len(state))
        out[:, 0] = outcomes.sum(axis=1) > 0
        for level, slot in enumerate(_slots(design)):
            k = design.options_per_state(level)
            c = choices[:, level]
            out[rows, slot + c // k] = c % k
        return out
