"""Held-out choice prediction of models of choice, cognitive or neural, under the field's two
schemes.

* **Leave subjects out** (:func:`leave_subjects_out`): subjects are split into ``folds``
  seeded folds (at most one per subject); for each fold the model is fitted pooled (one
  parameter set, or one network) on the other subjects and predicts every trial of the fold's
  subjects.
* **Later trials** (:func:`later_trials`): each subject's first ``train_fraction`` of trials
  fits that subject's own parameters (a network, which has none, is trained on every
  subject's first trials together); the model then runs through all the subject's trials,
  its latent values (or the network's state) carried through the early ones, and predicts the
  rest.

A model is a :class:`~noetik.agents.cognitive.CognitiveModel` (fitted by maximum likelihood
with ``config.fit``, through :class:`~noetik.agents.choice_nets.CognitiveChoiceModel`) or any
:class:`~noetik.agents.choice_nets.ChoiceModel` (a
:class:`~noetik.agents.choice_nets.NeuralChoiceModel`, trained by its own config): the folds,
the fits' scopes and the scoring are the same for both.

Both return :class:`HeldOut`: the pooled predictions of every held-out trial and their
:class:`~noetik.evaluation.choices.scores.ChoiceScores`. :func:`subject_folds` and
:func:`training_trials` are the splits themselves, for other models to share.

>>> from noetik.agents.cognitive import RescorlaWagner
>>> from noetik.evaluation.choices import HeldOutConfig, later_trials, leave_subjects_out
>>> result = leave_subjects_out(RescorlaWagner(), episodes, HeldOutConfig(folds=5))
>>> result.scores.normalised_likelihood.format(), result.scores.chance
>>> from noetik.agents.choice_nets import NeuralChoiceConfig, NeuralChoiceModel
>>> later_trials(NeuralChoiceModel(NeuralChoiceConfig(kind="gru")), episodes).scores
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from noetik.agents.choice_nets import ChoiceModel, CognitiveChoiceModel
from noetik.agents.cognitive import ChoicePredictions, CognitiveModel, FitConfig
from noetik.data.choices import BoolArray, ChoiceEpisodes, FloatArray, IntArray
from noetik.errors import ConfigError
from noetik.evaluation.choices.scores import ChoiceScores, score_predictions
from noetik.utils.seeding import rng

__all__ = [
    "HeldOut",
    "HeldOutConfig",
    "as_choice_model",
    "later_trials",
    "leave_subjects_out",
    "subject_folds",
    "training_trials",
]


@dataclass(frozen=True)
class HeldOutConfig:
    """Settings of both held-out schemes."""

    folds: int = 5
    """Leave-subjects-out folds (fewer when there are fewer subjects: then one per subject)."""
    train_fraction: float = 0.5
    """Later-trials scheme: share of each subject's trials (rounded down) used to fit."""
    fit: FitConfig = field(default_factory=FitConfig)
    """How each maximum-likelihood fit of a cognitive model searches (networks train by
    their own config)."""
    n_boot: int = 2_000
    """Bootstrap resamples of subjects for the intervals."""
    level: float = 0.95
    """Confidence level of the intervals."""
    seed: int = 0
    """Seed of the folds and of the bootstrap."""

    def __post_init__(self) -> None:
        if self.folds < 2:
            raise ConfigError(f"folds must be >= 2, got {self.folds}")
        if not 0.0 < self.train_fraction < 1.0:
            raise ConfigError(f"train_fraction must lie in (0, 1), got {self.train_fraction}")


@dataclass(frozen=True, eq=False)
class HeldOut:
    """A model's predictions of held-out choices under one scheme."""

    model: str
    """Name of the model."""
    scheme: Literal["leave_subjects_out", "later_trials"]
    """The held-out scheme."""
    predictions: ChoicePredictions
    """(S, T) log-likelihoods and hits of every trial, each from the fit that held it out."""
    held_out: BoolArray
    """(S, T) bool trials scored."""
    params: FloatArray
    """Parameters of the fits: (folds, P) pooled sets, or (S, P) per subject (P = 0 for a
    network)."""
    scores: ChoiceScores
    """Scores on the held-out trials, with intervals over subjects."""
    seconds: float
    """Wall-clock time of the fits and predictions."""


def subject_folds(n_subjects: int, folds: int, seed: int = 0) -> IntArray:
    """(S,) int64 fold of each subject: a seeded shuffle dealt into ``min(folds, S)`` folds."""
    k = min(folds, n_subjects)
    order = rng(seed, "subject-folds").permutation(n_subjects)
    out = np.empty(n_subjects, dtype=np.int64)
    out[order] = np.arange(n_subjects) % k
    return out


def training_trials(episodes: ChoiceEpisodes, fraction: float) -> IntArray:
    """(S,) int64 trials each subject fits on in the later-trials scheme (its first
    ``floor(fraction * n_trials)``, at least 1 and at most ``n_trials - 1``)."""
    n = episodes.n_trials
    out: IntArray = np.clip(np.floor(fraction * n).astype(np.int64), 1, np.maximum(n - 1, 1))
    return out


def as_choice_model(
    model: CognitiveModel | ChoiceModel, config: HeldOutConfig | None = None
) -> ChoiceModel:
    """``model`` as a :class:`ChoiceModel`: a cognitive model's equations with
    ``config.fit``'s search, or the model itself."""
    if isinstance(model, CognitiveModel):
        return CognitiveChoiceModel(model, (config or HeldOutConfig()).fit)
    return model


def leave_subjects_out(
    model: CognitiveModel | ChoiceModel,
    episodes: ChoiceEpisodes,
    config: HeldOutConfig | None = None,
) -> HeldOut:
    """Pooled fits on the other folds' subjects predict each fold's subjects."""
    config = config or HeldOutConfig()
    chooser = as_choice_model(model, config)
    if episodes.n_subjects < 2:
        raise ConfigError("leaving subjects out needs at least 2 subjects")
    start = time.perf_counter()
    fold = subject_folds(episodes.n_subjects, config.folds, config.seed)
    log_lik = np.zeros(episodes.mask.shape)
    hits = np.zeros(episodes.mask.shape)
    params = []
    for k in range(int(fold.max()) + 1):
        fitted = chooser.fit(episodes.select(fold != k), scope="pooled")
        test = np.flatnonzero(fold == k)
        predicted = fitted.predict(episodes.select(test))
        log_lik[test], hits[test] = predicted.log_lik, predicted.hits
        params.append(fitted.fitted_params)
    return _result(
        chooser.name,
        "leave_subjects_out",
        episodes,
        log_lik=log_lik,
        hits=hits,
        held_out=episodes.mask,
        params=np.stack(params),
        config=config,
        start=start,
    )


def later_trials(
    model: CognitiveModel | ChoiceModel,
    episodes: ChoiceEpisodes,
    config: HeldOutConfig | None = None,
) -> HeldOut:
    """Each subject's fit on their first trials predicts their later trials."""
    config = config or HeldOutConfig()
    chooser = as_choice_model(model, config)
    start = time.perf_counter()
    counts = training_trials(episodes, config.train_fraction)
    early = episodes.first_trials(counts)
    fitted = chooser.fit(early, scope="subjects")
    predicted = fitted.predict(episodes)
    held_out = episodes.mask & ~early.mask
    return _result(
        chooser.name,
        "later_trials",
        episodes,
        log_lik=predicted.log_lik,
        hits=predicted.hits,
        held_out=held_out,
        params=fitted.fitted_params,
        config=config,
        start=start,
    )


def _result(
    name: str,
    scheme: Literal["leave_subjects_out", "later_trials"],
    episodes: ChoiceEpisodes,
    *,
    log_lik: FloatArray,
    hits: FloatArray,
    held_out: BoolArray,
    params: FloatArray,
    config: HeldOutConfig,
    start: float,
) -> HeldOut:
    predictions = ChoicePredictions(log_lik, hits, episodes.mask, episodes.design.n_levels)
    scores = score_predictions(
        predictions,
        episodes.design,
        held_out,
        n_boot=config.n_boot,
        level=config.level,
        seed=config.seed,
    )
    seconds = time.perf_counter() - start
    return HeldOut(name, scheme, predictions, held_out, params, scores, seconds)
