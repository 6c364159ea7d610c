"""Per-subject rates and their means over subjects with the project's bootstrap.

Every behavioural measure is computed per subject first (a rate over that subject's trials,
NaN where the subject has no trial to count), then averaged over subjects, with a percentile
interval from resampling subjects (:func:`noetik.utils.bootstrap.bootstrap_means`: one set of
resamples for all the measures of one call, so the same seed gives the same intervals).

>>> from noetik.analysis.choices.rates import over_subjects, subject_rate
>>> rate = subject_rate(trials.stay, trials.pair & trials.win)     # (S,) win-stay per subject
>>> over_subjects({"win_stay": rate}, config)["win_stay"].format()
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from noetik.analysis.choices.config import ChoiceAnalysisConfig
from noetik.data.choices import FloatArray
from noetik.utils.bootstrap import Estimate, bootstrap_means

__all__ = ["estimate_dicts", "over_subjects", "subject_rate"]


def subject_rate(hit: npt.ArrayLike, where: npt.ArrayLike) -> FloatArray:
    """(S,) float64 mean of (S, T) ``hit`` over each subject's trials where (S, T) ``where``
    is True; NaN for a subject without such a trial."""
    h = np.asarray(hit, dtype=np.float64)
    w = np.asarray(where, dtype=bool)
    counts = w.sum(axis=1)
    sums = np.where(w, h, 0.0).sum(axis=1)
    out: FloatArray = np.full(len(counts), np.nan)
    np.divide(sums, counts, out=out, where=counts > 0)
    return out


def over_subjects(
    values: Mapping[str, FloatArray], config: ChoiceAnalysisConfig
) -> dict[str, Estimate]:
    """``{name: Estimate}``: the mean over subjects of each (S,) column (NaN subjects left
    out) with its interval over resamples of subjects."""
    return bootstrap_means(values, n_boot=config.n_boot, level=config.level_ci, seed=config.seed)


def estimate_dicts(estimates: Mapping[str, Estimate]) -> dict[str, dict[str, float]]:
    """``{name: {"mean", "low", "high"}}``."""
    return {name: e.as_dict() for name, e in estimates.items()}
