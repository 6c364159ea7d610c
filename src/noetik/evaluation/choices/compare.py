"""Paired comparison of two models' held-out predictions of the same choices, and the chance
model's predictions, so that "which model wins, and by how much" has an interval.

* :func:`paired_difference`: the difference of two models' NLL per decision on the same
  held-out trials, ``nll_a - nll_b`` (negative: ``a`` predicts better), as a ratio of sums over
  subjects with a percentile interval over resamples of subjects (the project's bootstrap),
  and the ratio of their normalised likelihoods ``exp(-(nll_a - nll_b))`` with the interval
  mapped through the same monotone function.
* :func:`chance_predictions`: uniform guessing as :class:`ChoicePredictions`, scored like any
  model (:func:`~noetik.evaluation.choices.scores.score_predictions`).

>>> from noetik.evaluation.choices.compare import paired_difference
>>> diff = paired_difference(rw.predictions, wsls.predictions, rw.held_out)
>>> diff.nll.format(), diff.likelihood_ratio.format()
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from noetik.agents.cognitive import ChoicePredictions
from noetik.data.choices import BoolArray, ChoiceEpisodes
from noetik.errors import ConfigError
from noetik.utils.bootstrap import Estimate, bootstrap_means

__all__ = ["PairedDifference", "chance_predictions", "paired_difference"]


@dataclass(frozen=True)
class PairedDifference:
    """Model a against model b on the same held-out decisions."""

    nll: Estimate
    """NLL per decision of a minus b (negative: a is better)."""
    likelihood_ratio: Estimate
    """Normalised likelihood of a over b, ``exp(-(nll_a - nll_b))`` (> 1: a is better)."""

    def as_dict(self) -> dict[str, dict[str, float]]:
        """``{"nll", "likelihood_ratio"}``, each ``{"mean", "low", "high"}``."""
        return {"nll": self.nll.as_dict(), "likelihood_ratio": self.likelihood_ratio.as_dict()}


def paired_difference(
    a: ChoicePredictions,
    b: ChoicePredictions,
    held_out: BoolArray,
    *,
    n_boot: int = 2_000,
    level: float = 0.95,
    seed: int = 0,
) -> PairedDifference:
    """The difference of ``a`` and ``b`` on the (S, T) ``held_out`` trials."""
    if a.mask.shape != b.mask.shape or held_out.shape != a.mask.shape:
        raise ConfigError("paired predictions must cover the same (S, T) trials")
    scored = held_out & a.mask & b.mask
    decisions = scored.sum(axis=1) * a.levels
    keep = decisions > 0
    if not keep.any():
        raise ConfigError("no held-out decisions to compare")
    diff = -np.where(scored, a.log_lik - b.log_lik, 0.0).sum(axis=1)[keep]
    est = bootstrap_means(
        {"nll": diff},
        {"nll": decisions[keep].astype(np.float64)},
        n_boot=n_boot,
        level=level,
        seed=seed,
    )["nll"]
    ratio = Estimate(math.exp(-est.mean), math.exp(-est.high), math.exp(-est.low))
    return PairedDifference(est, ratio)


def chance_predictions(episodes: ChoiceEpisodes) -> ChoicePredictions:
    """Uniform guessing: each trial's log-probability is the design's chance log-likelihood,
    and each of its L choices a tie of all the state's options (a hit of 1 / options)."""
    design = episodes.design
    hit = sum(1.0 / design.options_per_state(lv) for lv in range(design.n_levels))
    mask = episodes.mask
    return ChoicePredictions(
        log_lik=np.where(mask, design.chance_log_likelihood, 0.0),
        hits=np.where(mask, hit, 0.0),
        mask=mask,
        levels=design.n_levels,
    )
