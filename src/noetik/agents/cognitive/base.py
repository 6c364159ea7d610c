"""The contract of a cognitive model of choice, and its likelihood on episodes.

A :class:`CognitiveModel` is a set of equations with named, bounded parameters
(:class:`Parameter`) and a latent state (values, last choice, ...) carried from trial to trial.
It defines three steps, each vectorised over B :class:`Learners` (subjects, or parameter
sets: their (B, P) ``params`` and the task ``design``):

* ``initial_state(learners)`` -> (B, K) float64, the state before the first trial;
* ``logits(learners, state, level, context)`` -> (B, k) float64, unnormalised
  log-probabilities of the k options of choice level ``level`` in states ``context`` (B,):
  the choice probabilities are their softmax;
* ``update(learners, state, choices, outcomes)`` -> (B, K), the state after a trial with
  (B, L) full option indices and (B, O) outcomes already divided by ``design.outcome_scale``.

:func:`trial_log_likelihood` runs them over a subject's observed trials; :func:`predict` also
scores whether each choice was the model's most likely one. The same steps drive
:func:`~noetik.agents.cognitive.simulate.simulate` in a task environment.

>>> from noetik.agents.cognitive import RescorlaWagner, trial_log_likelihood
>>> ll = trial_log_likelihood(RescorlaWagner(), [0.3, 2.0], episodes)   # (S, T)
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, NamedTuple

import numpy as np
import numpy.typing as npt

from noetik.data.choices import BoolArray, ChoiceEpisodes, FloatArray, IntArray, TaskDesign
from noetik.errors import ConfigError

__all__ = [
    "Z_LIMIT",
    "ChoicePredictions",
    "CognitiveModel",
    "Learners",
    "OptionValueModel",
    "Parameter",
    "chosen_log_probability",
    "log_softmax",
    "predict",
    "trial_log_likelihood",
]

#: Largest magnitude of an unbounded coordinate (a parameter within 1e-6 of its bounds).
Z_LIMIT = 14.0


@dataclass(frozen=True)
class Parameter:
    """A model parameter bounded to [low, high], fitted through the logit of its position."""

    name: str
    """Name (as in the model's equations)."""
    low: float
    """Lower bound."""
    high: float
    """Upper bound."""
    default: float
    """Typical value: the first starting point of a fit."""
    doc: str
    """What the parameter does, in a few words."""
    typical: tuple[float, float]
    """Range of values typical of people: simulated participants (parameter recovery) draw
    from it uniformly."""

    def squash(self, z: npt.ArrayLike) -> FloatArray:
        """The parameter value of unbounded coordinate(s) ``z``: ``low + (high - low) *
        sigmoid(z)``."""
        out: FloatArray = self.low + (self.high - self.low) / (1.0 + np.exp(-np.asarray(z)))
        return out

    def unsquash(self, value: npt.ArrayLike) -> FloatArray:
        """The unbounded coordinate of ``value`` (inverse of :meth:`squash`, clipped to
        +-``Z_LIMIT``)."""
        u = (np.asarray(value, dtype=np.float64) - self.low) / (self.high - self.low)
        u = np.clip(u, 1e-12, 1.0 - 1e-12)
        out: FloatArray = np.clip(np.log(u) - np.log1p(-u), -Z_LIMIT, Z_LIMIT)
        return out


def log_softmax(logits: FloatArray) -> FloatArray:
    """(B, k) log-softmax over the last axis (column-wise maxima and sums: for the few options
    of a decision task faster than numpy's reductions along a short axis)."""
    top = logits[:, 0]
    for j in range(1, logits.shape[1]):
        top = np.maximum(top, logits[:, j])
    shifted = logits - top[:, None]
    weights = np.exp(shifted)
    total = weights[:, 0]
    for j in range(1, logits.shape[1]):
        total = total + weights[:, j]
    out: FloatArray = shifted - np.log(total)[:, None]
    return out


def chosen_log_probability(logits: FloatArray, option: IntArray) -> FloatArray:
    """(B,) log-softmax of (B, k) ``logits`` at the (B,) chosen ``option``; the hot spot of a
    fit, so two options take a gather-free path: ``log p = min(s, 0) - log(1 + exp(-|s|))``
    with ``s`` the chosen option's logit minus the other's."""
    if logits.shape[1] == 2:
        diff = logits[:, 1] - logits[:, 0]
        s = np.where(option == 1, diff, -diff)
        out: FloatArray = np.minimum(s, 0.0) - np.log(1.0 + np.exp(-np.abs(diff)))
        return out
    return log_softmax(logits)[np.arange(len(option)), option]


class Learners(NamedTuple):
    """B learners doing one task: what stays fixed while a model runs over their trials."""

    params: FloatArray
    """(B, P) float64 parameters, one row per learner."""
    design: TaskDesign
    """The task they do."""


class CognitiveModel(ABC):
    """A model of a person's trial-by-trial choices (see the module docstring for the steps)."""

    #: Short name (``"rw"``, ``"pvl_delta"``, ...).
    name: ClassVar[str]
    #: The parameters, in the order of a params array's last axis.
    parameters: ClassVar[tuple[Parameter, ...]]

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Names of the parameters, in order."""
        return tuple(p.name for p in self.parameters)

    @property
    def defaults(self) -> FloatArray:
        """(P,) float64 typical values."""
        return np.array([p.default for p in self.parameters])

    def squash(self, z: FloatArray) -> FloatArray:
        """(..., P) parameters of (..., P) unbounded coordinates."""
        return np.stack([p.squash(z[..., i]) for i, p in enumerate(self.parameters)], axis=-1)

    def unsquash(self, params: FloatArray) -> FloatArray:
        """(..., P) unbounded coordinates of (..., P) parameters."""
        return np.stack(
            [p.unsquash(params[..., i]) for i, p in enumerate(self.parameters)], axis=-1
        )

    @abstractmethod
    def supports(self, design: TaskDesign) -> bool:
        """Whether the equations apply to tasks of this design."""

    def check(self, design: TaskDesign) -> None:
        """Raise ConfigError unless the model applies to ``design``."""
        if not self.supports(design):
            raise ConfigError(
                f"model '{self.name}' does not apply to task '{design.task}' "
                f"(choice levels {design.n_options}, states {design.states})"
            )

    @abstractmethod
    def initial_state(self, learners: Learners) -> FloatArray:
        """(B, K) state before the first trial."""

    @abstractmethod
    def logits(
        self, learners: Learners, state: FloatArray, level: int, context: IntArray
    ) -> FloatArray:
        """(B, k) unnormalised log-probabilities of the options of ``level`` in states
        ``context`` (B,); the choice probabilities are their softmax."""

    @abstractmethod
    def update(
        self, learners: Learners, state: FloatArray, choices: IntArray, outcomes: FloatArray
    ) -> FloatArray:
        """(B, K) state after a trial: (B, L) full option indices, (B, O) scaled outcomes."""


class OptionValueModel(CognitiveModel):
    """A model of tasks with one choice per trial whose state is ``values_per_option`` learned
    values of each of the n options, all 0 before the first trial ((B, values_per_option * n),
    grouped by kind: the first n values, then the next n, ...)."""

    #: Learned values per option.
    values_per_option: ClassVar[int] = 1

    def supports(self, design: TaskDesign) -> bool:
        return design.n_levels == 1

    def initial_state(self, learners: Learners) -> FloatArray:
        params, design = learners
        return np.zeros((len(params), self.values_per_option * design.n_options[0]))


@dataclass(frozen=True, eq=False)
class ChoicePredictions:
    """A model's per-trial predictions of observed choices (S subjects, T trials)."""

    log_lik: FloatArray
    """(S, T) float64 log-probability of the trial's observed choices (sum over levels), 0 in
    padding."""
    hits: FloatArray
    """(S, T) float64 choices (of the trial's L) that were the model's most likely option, a
    tie of m options counting 1/m; 0 in padding."""
    mask: BoolArray
    """(S, T) bool real trials."""
    levels: int
    """L, choices per trial."""


def trial_log_likelihood(
    model: CognitiveModel, params: npt.ArrayLike, episodes: ChoiceEpisodes
) -> FloatArray:
    """(S, T) float64 log-likelihood of each observed trial under ``model`` with ``params``,
    (P,) for all subjects or (S, P) one row per subject; 0 in padding."""
    return _run(model, _rows(model, params, episodes.n_subjects), episodes, hits=False)[0]


def predict(
    model: CognitiveModel, params: npt.ArrayLike, episodes: ChoiceEpisodes
) -> ChoicePredictions:
    """Log-likelihoods and hits of each observed trial (params as in
    :func:`trial_log_likelihood`)."""
    log_lik, hits = _run(model, _rows(model, params, episodes.n_subjects), episodes, hits=True)
    return ChoicePredictions(log_lik, hits, episodes.mask, episodes.design.n_levels)


def _rows(model: CognitiveModel, params: npt.ArrayLike, n: int) -> FloatArray:
    values = np.asarray(params, dtype=np.float64)
    p = len(model.parameters)
    if values.shape not in ((p,), (n, p)):
        raise ConfigError(
            f"model '{model.name}' takes ({p},) or ({n}, {p}) parameters, got {values.shape}"
        )
    return np.ascontiguousarray(np.broadcast_to(values, (n, p)))


def _run(
    model: CognitiveModel, params: FloatArray, episodes: ChoiceEpisodes, *, hits: bool
) -> tuple[FloatArray, FloatArray]:
    """``(log_lik, hits)`` (S, T) of ``episodes`` under (S, P) ``params``."""
    design = episodes.design
    model.check(design)
    return run_arrays(
        model,
        params,
        design,
        choices=episodes.choices,
        outcomes=episodes.outcomes / design.outcome_scale,
        mask=episodes.mask,
        hits=hits,
    )


def run_arrays(
    model: CognitiveModel,
    params: FloatArray,
    design: TaskDesign,
    *,
    choices: IntArray,
    outcomes: FloatArray,
    mask: BoolArray,
    hits: bool,
) -> tuple[FloatArray, FloatArray]:
    """The likelihood loop on raw arrays: (B, P) params, (B, T, L) choices, (B, T, O) scaled
    outcomes, (B, T) mask -> ``(log_lik, hits)`` (B, T) (hits all 0 unless ``hits``)."""
    b, t_max = mask.shape
    rows = np.arange(b)
    per_state = [design.options_per_state(lv) for lv in range(design.n_levels)]
    by_trial = np.ascontiguousarray(choices.transpose(1, 2, 0))  # (T, L, B)
    contexts = [by_trial[:, lv] // k for lv, k in enumerate(per_state)]
    options = [by_trial[:, lv] % k for lv, k in enumerate(per_state)]
    outcomes_by_trial = np.ascontiguousarray(outcomes.transpose(1, 0, 2))  # (T, B, O)
    log_lik = np.zeros((t_max, b))
    hit = np.zeros((t_max, b))
    learners = Learners(params, design)
    state = model.initial_state(learners)
    for t in range(t_max):
        for level in range(len(per_state)):
            logits = model.logits(learners, state, level, contexts[level][t])
            option = options[level][t]
            log_lik[t] += chosen_log_probability(logits, option)
            if hits:
                best = logits >= logits.max(axis=1, keepdims=True) - 1e-12
                hit[t] += best[rows, option] / best.sum(axis=1)
        if t + 1 < t_max:
            state = model.update(learners, state, choices[:, t], outcomes_by_trial[t])
    return np.where(mask, log_lik.T, 0.0), np.where(mask, hit.T, 0.0)
