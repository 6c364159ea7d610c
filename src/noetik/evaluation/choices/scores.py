"""Held-out choice prediction scores with bootstrap intervals over subjects.

From per-trial log-likelihoods and hits of any model of choice (cognitive or neural), on the
trials a scheme holds out:

* ``nll``: negative log-likelihood per decision (nats; a decision is one choice, two per
  two-step trial), the ratio of the subjects' summed NLL to their summed decisions;
* ``normalised_likelihood``: ``exp(-nll)``, the geometric mean probability given to each
  observed choice (chance: one over the options of a decision);
* ``accuracy``: the share of decisions whose observed choice was the model's most likely
  option (a tie of m options counts 1/m).

Each is an :class:`~noetik.utils.bootstrap.Estimate` (``{"mean", "low", "high"}``) with a
percentile interval over resamples of subjects (the project's one bootstrap). The normalised
likelihood's interval is the NLL's, mapped through ``exp(-x)`` (percentile intervals follow
monotone maps exactly).

>>> from noetik.agents.cognitive import predict
>>> from noetik.evaluation.choices import score_predictions
>>> predictions = predict(model, params, episodes)
>>> scores = score_predictions(predictions, episodes.design, held_out=episodes.mask)
>>> scores.as_dict()["normalised_likelihood"]      # {"mean": ..., "low": ..., "high": ...}
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from noetik.agents.cognitive import ChoicePredictions
from noetik.data.choices import BoolArray, TaskDesign
from noetik.errors import ConfigError
from noetik.utils.bootstrap import Estimate, bootstrap_means

__all__ = ["ChoiceScores", "chance_likelihood", "score_predictions"]


@dataclass(frozen=True)
class ChoiceScores:
    """How well a model predicted held-out choices, each figure with its interval."""

    nll: Estimate
    """Negative log-likelihood per decision (nats)."""
    normalised_likelihood: Estimate
    """``exp(-nll)``: geometric-mean probability of an observed choice."""
    accuracy: Estimate
    """Share of decisions where the observed choice was the most likely one."""
    chance: float
    """Normalised likelihood of guessing uniformly."""
    n_subjects: int
    """Subjects with held-out decisions (the bootstrap's units)."""
    n_decisions: int
    """Held-out decisions scored."""

    def as_dict(self) -> dict[str, object]:
        """JSON form: each estimate as ``{"mean", "low", "high"}``."""
        return {
            "nll": self.nll.as_dict(),
            "normalised_likelihood": self.normalised_likelihood.as_dict(),
            "accuracy": self.accuracy.as_dict(),
            "chance": self.chance,
            "n_subjects": self.n_subjects,
            "n_decisions": self.n_decisions,
        }


def chance_likelihood(design: TaskDesign) -> float:
    """Normalised likelihood of uniform guessing: the geometric mean of ``1 / options`` over a
    trial's decisions."""
    return math.exp(design.chance_log_likelihood / design.n_levels)


def score_predictions(
    predictions: ChoicePredictions,
    design: TaskDesign,
    held_out: BoolArray,
    *,
    n_boot: int = 2_000,
    level: float = 0.95,
    seed: int = 0,
) -> ChoiceScores:
    """Scores of ``predictions`` on the (S, T) ``held_out`` trials (a subset of real trials),
    with ``level`` percentile intervals from ``n_boot`` resamples of subjects (seeded)."""
    scored = held_out & predictions.mask
    if held_out.shape != predictions.mask.shape:
        raise ConfigError(f"held_out must be {predictions.mask.shape}, got {held_out.shape}")
    decisions = scored.sum(axis=1) * predictions.levels
    keep = decisions > 0
    if not keep.any():
        raise ConfigError("no held-out decisions to score")
    nll = -np.where(scored, predictions.log_lik, 0.0).sum(axis=1)[keep]
    hits = np.where(scored, predictions.hits, 0.0).sum(axis=1)[keep]
    n = decisions[keep].astype(np.float64)
    est = bootstrap_means(
        {"nll": nll, "accuracy": hits},
        {"nll": n, "accuracy": n},
        n_boot=n_boot,
        level=level,
        seed=seed,
    )
    per = est["nll"]
    normalised = Estimate(math.exp(-per.mean), math.exp(-per.high), math.exp(-per.low))
    return ChoiceScores(
        nll=per,
        normalised_likelihood=normalised,
        accuracy=est["accuracy"],
        chance=chance_likelihood(design),
        n_subjects=int(keep.sum()),
        n_decisions=int(n.sum()),
    )
