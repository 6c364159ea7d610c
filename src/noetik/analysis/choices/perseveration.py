"""Perseveration: repeating the last choice whatever it paid.

Per subject:

* ``repeat``: P(c_t = c_{t-1}), regardless of the outcome;
* ``expected``: the repeat rate of a player who draws each choice independently with the
  subject's own choice frequencies f_i, ``sum_i f_i^2`` (1 / k for uniform guessing);
* ``excess``: ``repeat - expected``, the repeating that the preference for some options does
  not explain (> 0: perseveration, < 0: alternation);
* ``lag_profile``: ``P(c_t = c_{t-k}) - expected`` for lags k = 1..``max_lag``, the shape of a
  choice kernel (a kernel that decays with lag gives a profile falling towards 0).

Each is a mean over subjects with its 95 % interval.

>>> from noetik.analysis.choices import perseveration
>>> result = perseveration(Trials.of(episodes, config), config)
>>> result.excess.format()
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from noetik.analysis.choices.config import ChoiceAnalysisConfig
from noetik.analysis.choices.rates import over_subjects, subject_rate
from noetik.analysis.choices.trials import Trials
from noetik.data.choices import FloatArray
from noetik.utils.bootstrap import Estimate

__all__ = ["Perseveration", "perseveration"]


@dataclass(frozen=True, eq=False)
class Perseveration:
    """Repeat rates and their excess over the subjects' own choice frequencies."""

    repeat: Estimate
    """P(c_t = c_{t-1})."""
    expected: Estimate
    """``sum_i f_i^2``: the repeat rate of independent choices with the subject's frequencies."""
    excess: Estimate
    """``repeat - expected``."""
    lag_profile: tuple[Estimate, ...]
    """(max_lag,) ``P(c_t = c_{t-k}) - expected`` for k = 1..max_lag."""
    per_subject: dict[str, FloatArray]
    """``{"repeat", "expected", "excess"}``: (S,) float64 per-subject values."""

    def as_dict(self) -> dict[str, object]:
        """JSON form: estimates as ``{"mean", "low", "high"}``."""
        return {
            "repeat": self.repeat.as_dict(),
            "expected": self.expected.as_dict(),
            "excess": self.excess.as_dict(),
            "lag_profile": [e.as_dict() for e in self.lag_profile],
        }


def perseveration(trials: Trials, config: ChoiceAnalysisConfig) -> Perseveration:
    """The repeat measures of ``trials``."""
    k = trials.n_options
    onehot = (trials.choice[:, :, None] == np.arange(k)) & trials.mask[:, :, None]
    n = trials.mask.sum(axis=1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        freq = onehot.sum(axis=1) / n[:, None]  # (S, k)
    expected = np.where(n > 0, (freq**2).sum(axis=1), np.nan)
    columns: dict[str, FloatArray] = {
        "repeat": subject_rate(trials.stay, trials.pair),
        "expected": expected,
    }
    columns["excess"] = columns["repeat"] - expected
    t_max = trials.mask.shape[1]
    for lag in range(1, config.max_lag + 1):
        if lag >= t_max:
            columns[f"lag{lag}"] = np.full(len(n), np.nan)
            continue
        both = trials.mask[:, lag:] & trials.mask[:, :-lag]
        same = trials.choice[:, lag:] == trials.choice[:, :-lag]
        columns[f"lag{lag}"] = subject_rate(same, both) - expected
    est = over_subjects(columns, config)
    per = {name: columns[name] for name in ("repeat", "expected", "excess")}
    lags = tuple(est[f"lag{lag}"] for lag in range(1, config.max_lag + 1))
    return Perseveration(est["repeat"], est["expected"], est["excess"], lags, per)
