"""The hybrid model-based / model-free model of the two-step task (Daw et al., 2011; seven
parameters).

Stage-1 options a in {0, 1}; stage-2 states s in {A, B}, options (s, b). With the known common
transition probability ``common`` (0.7), option 0 commonly leads to A and 1 to B::

    Q_MB(a) = P(A | a) * max_b Q2(A, b) + P(B | a) * max_b Q2(B, b)
    Q_net(a) = w * Q_MB(a) + (1 - w) * Q_MF(a)
    P(a_t = a) = softmax_a(beta1 * Q_net(a) + p * rep(a))       rep(a) = [a == a_{t-1}]
    P(b_t = b | s_t) = softmax_b(beta2 * Q2(s_t, b))

and after the trial, with reward r_t (SARSA(lambda), both errors taken before any update)::

    delta1 = Q2(s_t, b_t) - Q_MF(a_t)
    delta2 = r_t - Q2(s_t, b_t)
    Q_MF(a_t) += alpha1 * delta1 + alpha1 * lambda * delta2
    Q2(s_t, b_t) += alpha2 * delta2

All values start at 0; ``rep`` is 0 on the first trial. Bounds: ``alpha1, alpha2, lambda, w`` in
[0, 1], ``beta1, beta2`` in [0, 20], ``p`` in [-5, 5]. Daw et al. write the perseveration
inside the inverse temperature, ``beta1 * (Q_net + p' * rep)``; ``p = beta1 * p'`` gives the same
likelihood and, as in hBayesDM's ``ts_par7``, keeps ``p`` identifiable when ``beta1`` is small.
``ts_par7`` differs in one more detail: its eligibility update uses the stage-2 error after the
stage-2 update.

>>> from noetik.agents.cognitive import HybridMBMF
>>> HybridMBMF().parameter_names
('alpha1', 'alpha2', 'beta1', 'beta2', 'lambda', 'w', 'p')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from noetik.agents.cognitive.base import CognitiveModel, Learners, Parameter
from noetik.data.choices import FloatArray, IntArray, TaskDesign

__all__ = ["HybridMBMF"]

#: Layout of the state: Q_MF (2), Q2 (A1, A2, B1, B2), previous stage-1 option (-1: none).
_MF, _Q2, _PREV = slice(0, 2), slice(2, 6), 6


@dataclass(frozen=True)
class HybridMBMF(CognitiveModel):
    """Daw et al. (2011) hybrid learner for the two-step task."""

    common: float = 0.7
    """Probability of the common transition, known to the participant."""

    name: ClassVar[str] = "hybrid"
    parameters: ClassVar[tuple[Parameter, ...]] = (
        Parameter("alpha1", 0.0, 1.0, 0.5, "stage-1 learning rate", (0.2, 0.8)),
        Parameter("alpha2", 0.0, 1.0, 0.5, "stage-2 learning rate", (0.2, 0.8)),
        Parameter("beta1", 0.0, 20.0, 3.0, "stage-1 inverse temperature", (1.0, 8.0)),
        Parameter("beta2", 0.0, 20.0, 3.0, "stage-2 inverse temperature", (1.0, 8.0)),
        Parameter("lambda", 0.0, 1.0, 0.5, "eligibility trace", (0.2, 0.9)),
        Parameter("w", 0.0, 1.0, 0.5, "model-based weight", (0.1, 0.9)),
        Parameter("p", -5.0, 5.0, 0.0, "perseveration of the stage-1 choice", (-0.5, 1.5)),
    )

    def supports(self, design: TaskDesign) -> bool:
        return design.n_options == (2, 4) and design.states == (1, 2)

    def initial_state(self, learners: Learners) -> FloatArray:
        params = learners.params
        state = np.zeros((len(params), 7))
        state[:, _PREV] = -1.0
        return state

    def logits(
        self, learners: Learners, state: FloatArray, level: int, context: IntArray
    ) -> FloatArray:
        params = learners.params
        logits = np.empty((len(state), 2))
        if level == 1:
            in_a = context == 0
            logits[:, 0] = params[:, 3] * np.where(in_a, state[:, 2], state[:, 4])
            logits[:, 1] = params[:, 3] * np.where(in_a, state[:, 3], state[:, 5])
            return logits
        best_a = np.maximum(state[:, 2], state[:, 3])  # each state's best option
        best_b = np.maximum(state[:, 4], state[:, 5])
        c, w, beta1, p = self.common, params[:, 5], params[:, 2], params[:, 6]
        for a, (to_a, to_b) in enumerate(((c, 1.0 - c), (1.0 - c, c))):
            q_net = w * (to_a * best_a + to_b * best_b) + (1.0 - w) * state[:, a]
            logits[:, a] = beta1 * q_net + p * (state[:, _PREV] == a)
        return logits

    def update(
        self, learners: Learners, state: FloatArray, choices: IntArray, outcomes: FloatArray
    ) -> FloatArray:
        params = learners.params
        rows = np.arange(len(state))
        a, b = choices[:, 0], choices[:, 1]
        alpha1, alpha2, lam = params[:, 0], params[:, 1], params[:, 4]
        out = state.copy()
        q2 = state[rows, 2 + b]
        delta1 = q2 - state[rows, a]
        delta2 = outcomes.sum(axis=1) - q2
        out[rows, a] += alpha1 * delta1 + alpha1 * lam * delta2
        out[rows, 2 + b] += alpha2 * delta2
        out[:, _PREV] = a
        return out
