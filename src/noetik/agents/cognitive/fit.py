"""Maximum-likelihood fits of a cognitive model: per subject, or pooled over subjects.

Parameters are fitted through the logit of their position within their bounds, from
``restarts`` starting points (the parameters' typical values, then seeded random draws), all
problems at once by :func:`~noetik.agents.cognitive.optimise.minimise`; the best start wins.
Information criteria count k parameters per fitted set and n decisions (choices: trials times
choice levels): ``AIC = 2 k + 2 NLL``, ``BIC = k ln n + 2 NLL``.

>>> from noetik.agents.cognitive import FitConfig, RescorlaWagner, fit_pooled, fit_subjects
>>> fits = fit_subjects(RescorlaWagner(), episodes, FitConfig(restarts=5, seed=0))
>>> fits.params.shape, fits.aic.sum()           # (S, 2), the summed AIC
>>> pooled = fit_pooled(RescorlaWagner(), episodes)
>>> pooled.params, pooled.bic
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from noetik.agents.cognitive.base import CognitiveModel, run_arrays
from noetik.agents.cognitive.optimise import minimise
from noetik.data.choices import BoolArray, ChoiceEpisodes, FloatArray, IntArray
from noetik.errors import ConfigError
from noetik.utils.seeding import rng

__all__ = ["FitConfig", "PooledFit", "SubjectFits", "aic", "bic", "fit_pooled", "fit_subjects"]


@dataclass(frozen=True)
class FitConfig:
    """How maximum-likelihood fits search."""

    restarts: int = 5
    """Starting points per fit: the parameters' typical values, then random draws."""
    spread: float = 1.5
    """Standard deviation of the random starting points in logit coordinates."""
    max_iter: int = 200
    """Most quasi-Newton iterations per fit."""
    gtol: float = 1e-3
    """A fit stops when every gradient entry (NLL per logit unit) is below this."""
    seed: int = 0
    """Seed of the random starting points."""

    def __post_init__(self) -> None:
        if self.restarts < 1 or self.max_iter < 1:
            raise ConfigError(
                f"restarts and max_iter must be >= 1, got {self.restarts} and {self.max_iter}"
            )
        if not (self.spread >= 0 and self.gtol > 0):
            raise ConfigError(f"spread must be >= 0 and gtol > 0, got {self.spread}, {self.gtol}")


@dataclass(frozen=True, eq=False)
class SubjectFits:
    """One parameter set per subject (S subjects, P parameters)."""

    model: str
    """Name of the model."""
    parameter_names: tuple[str, ...]
    """(P,) parameter names."""
    subjects: tuple[str, ...]
    """(S,) subject ids."""
    params: FloatArray
    """(S, P) float64 maximum-likelihood parameters."""
    nll: FloatArray
    """(S,) float64 negative log-likelihood of each subject's choices at ``params``."""
    n_decisions: IntArray
    """(S,) int64 choices of each subject (trials times choice levels)."""
    converged: BoolArray
    """(S,) bool: the best start's search converged."""
    seconds: float
    """Wall-clock time of the fit."""

    @property
    def aic(self) -> FloatArray:
        """(S,) float64 ``2 P + 2 NLL`` per subject (sum them for the data set)."""
        return aic(self.nll, len(self.parameter_names))

    @property
    def bic(self) -> FloatArray:
        """(S,) float64 ``P ln n + 2 NLL`` per subject, n its decisions."""
        return bic(self.nll, len(self.parameter_names), self.n_decisions)


@dataclass(frozen=True, eq=False)
class PooledFit:
    """One parameter set for all subjects."""

    model: str
    """Name of the model."""
    parameter_names: tuple[str, ...]
    """(P,) parameter names."""
    params: FloatArray
    """(P,) float64 maximum-likelihood parameters."""
    nll: float
    """Negative log-likelihood of all subjects' choices at ``params``."""
    n_subjects: int
    """Subjects fitted."""
    n_decisions: int
    """Choices fitted (trials times choice levels)."""
    converged: bool
    """The best start's search converged."""
    seconds: float
    """Wall-clock time of the fit."""

    @property
    def aic(self) -> float:
        """``2 P + 2 NLL``."""
        return float(aic(np.asarray(self.nll), len(self.parameter_names)))

    @property
    def bic(self) -> float:
        """``P ln n + 2 NLL``."""
        return float(bic(np.asarray(self.nll), len(self.parameter_names), self.n_decisions))


def aic(nll: FloatArray, k: int) -> FloatArray:
    """Akaike's information criterion ``2 k + 2 NLL`` of fits with ``k`` parameters."""
    out: FloatArray = 2.0 * k + 2.0 * nll
    return out


def bic(nll: FloatArray, k: int, n: IntArray | int) -> FloatArray:
    """Schwarz's Bayesian information criterion ``k ln n + 2 NLL`` (``n`` decisions)."""
    out: FloatArray = k * np.log(n) + 2.0 * nll
    return out


def fit_subjects(
    model: CognitiveModel, episodes: ChoiceEpisodes, config: FitConfig | None = None
) -> SubjectFits:
    """Maximum-likelihood parameters of each subject separately."""
    config = config or FitConfig()
    start = time.perf_counter()
    s = episodes.n_subjects
    x, fun, converged = _fit(model, episodes, np.arange(s), s, config)
    return SubjectFits(
        model=model.name,
        parameter_names=model.parameter_names,
        subjects=episodes.subjects,
        params=model.squash(x),
        nll=fun,
        n_decisions=episodes.n_trials * episodes.design.n_levels,
        converged=converged,
        seconds=time.perf_counter() - start,
    )


def fit_pooled(
    model: CognitiveModel, episodes: ChoiceEpisodes, config: FitConfig | None = None
) -> PooledFit:
    """Maximum-likelihood parameters shared by all subjects."""
    config = config or FitConfig()
    start = time.perf_counter()
    x, fun, converged = _fit(
        model, episodes, np.zeros(episodes.n_subjects, dtype=np.int64), 1, config
    )
    return PooledFit(
        model=model.name,
        parameter_names=model.parameter_names,
        params=model.squash(x[0]),
        nll=float(fun[0]),
        n_subjects=episodes.n_subjects,
        n_decisions=int(episodes.n_trials.sum()) * episodes.design.n_levels,
        converged=bool(converged[0]),
        seconds=time.perf_counter() - start,
    )


def _fit(
    model: CognitiveModel,
    episodes: ChoiceEpisodes,
    owner: IntArray,
    n_fits: int,
    config: FitConfig,
) -> tuple[FloatArray, FloatArray, BoolArray]:
    """``(x (F, P), nll (F,), converged (F,))`` of ``n_fits`` fits, fit ``owner[i]`` owning
    subject i, each the best of ``config.restarts`` starts."""
    design = episodes.design
    model.check(design)
    r, p = config.restarts, len(model.parameters)
    starts = np.repeat(model.unsquash(model.defaults)[None, None], n_fits, axis=0)
    starts = np.repeat(starts, r, axis=1)  # (F, R, P)
    draws = rng(config.seed, "fit-starts", model.name).normal(0.0, config.spread, (n_fits, r, p))
    starts[:, 1:] = draws[:, 1:]
    # problem j = fit * R + start; data row i of copy k belongs to problem owner[i] * R + k
    problem_of_row = (owner[None, :] * r + np.arange(r)[:, None]).ravel()  # (R * S,)
    copies = np.tile(np.arange(episodes.n_subjects), r)
    choices = episodes.choices[copies]
    outcomes = (episodes.outcomes / design.outcome_scale)[copies]
    mask = episodes.mask[copies]

    def objective(points: FloatArray, problems: IntArray) -> FloatArray:
        position = np.full(n_fits * r, -1)
        position[problems] = np.arange(len(problems))
        rows = np.flatnonzero(position[problem_of_row] >= 0)
        slot = position[problem_of_row[rows]]
        n_points = points.shape[1]
        params = model.squash(points[slot]).reshape(-1, p)
        pick = np.repeat(rows, n_points)
        log_lik, _ = run_arrays(
            model,
            params,
            design,
            choices=choices[pick],
            outcomes=outcomes[pick],
            mask=mask[pick],
            hits=False,
        )
        nll = -log_lik.sum(axis=1).reshape(len(rows), n_points)
        out = np.zeros((len(problems), n_points))
        np.add.at(out, slot, nll)
        return out

    found = minimise(objective, starts.reshape(-1, p), max_iter=config.max_iter, gtol=config.gtol)
    fun = np.where(np.isfinite(found.fun), found.fun, np.inf).reshape(n_fits, r)
    best = fun.argmin(axis=1)
    pick = np.arange(n_fits) * r + best
    return found.x[pick], found.fun[pick], found.converged[pick]
