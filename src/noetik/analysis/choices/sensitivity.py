"""Sensitivity to gains versus losses: how the previous trial's gain and loss move the next
choice.

Two views, each a mean over subjects with its 95 % interval:

* **Stay probability by what the previous trial brought**: P(c_t = c_{t-1}) after a trial with
  a gain only, a loss only, both, or neither (NaN where no subject met the case: a two-armed
  bandit paying +1 or -1 has only "gain only" and "loss only"; every Iowa Gambling Task card
  pays a gain, so there the cases are "gain only" and "both"). ``gain_minus_loss`` is the
  paired difference of stay after a gain only and after a loss only.
* **Regression of stay on magnitudes**: per subject, the least-squares line
  ``stay_t = b0 + b_gain * gain_{t-1} + b_loss * loss_{t-1}`` with gain and loss as magnitudes
  (>= 0) in units of the task's ``outcome_scale``. A regressor that does not vary for a subject
  is left out (its slope NaN); a subject whose regressors are collinear (every trial brings
  exactly one of a fixed gain and a fixed loss, as in a +1/-1 bandit) has no slopes.
  ``b_gain > 0``: gains make a repeat likelier; ``b_loss < 0``: losses make it less likely;
  ``asymmetry = -b_loss - b_gain`` > 0 when a unit of loss moves choices more than a unit of
  gain.

>>> from noetik.analysis.choices import gain_loss_sensitivity
>>> result = gain_loss_sensitivity(Trials.of(episodes, config), config)
>>> result.stay["loss_only"].format(), result.slopes["loss"].format()
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from noetik.analysis.choices.config import ChoiceAnalysisConfig
from noetik.analysis.choices.rates import estimate_dicts, over_subjects, subject_rate
from noetik.analysis.choices.trials import Trials
from noetik.data.choices import BoolArray, FloatArray
from noetik.utils.bootstrap import Estimate

__all__ = ["CASES", "Sensitivity", "gain_loss_sensitivity", "stay_slopes"]

#: The cases of the previous trial's outcome, in display order.
CASES: tuple[str, ...] = ("gain_only", "loss_only", "both", "neither")


@dataclass(frozen=True, eq=False)
class Sensitivity:
    """Stay probabilities by the previous outcome and regression slopes of stay."""

    stay: dict[str, Estimate]
    """``{case: P(stay | previous trial's case)}`` for :data:`CASES`, plus
    ``"gain_minus_loss"`` (paired: gain only minus loss only)."""
    slopes: dict[str, Estimate]
    """``{"gain", "loss", "asymmetry"}``: mean per-subject slopes of stay on the previous
    trial's gain and loss magnitudes, and ``-b_loss - b_gain``."""
    n_regressed: int
    """Subjects with at least one slope (the others' regressors did not vary or were
    collinear)."""

    def as_dict(self) -> dict[str, object]:
        """JSON form: estimates as ``{"mean", "low", "high"}``."""
        return {
            "stay": estimate_dicts(self.stay),
            "slopes": estimate_dicts(self.slopes),
            "n_regressed": self.n_regressed,
        }


def gain_loss_sensitivity(trials: Trials, config: ChoiceAnalysisConfig) -> Sensitivity:
    """Both views of ``trials``."""
    gained, lost = trials.gain > 0, trials.loss > 0
    cases: dict[str, BoolArray] = {
        "gain_only": gained & ~lost,
        "loss_only": lost & ~gained,
        "both": gained & lost,
        "neither": ~gained & ~lost,
    }
    columns: dict[str, FloatArray] = {
        name: subject_rate(trials.stay, trials.pair & case) for name, case in cases.items()
    }
    columns["gain_minus_loss"] = columns["gain_only"] - columns["loss_only"]
    slopes = stay_slopes(trials)
    columns["slope_gain"] = slopes[:, 0]
    columns["slope_loss"] = slopes[:, 1]
    columns["slope_asymmetry"] = -slopes[:, 1] - slopes[:, 0]
    est = over_subjects(columns, config)
    return Sensitivity(
        stay={name: est[name] for name in (*CASES, "gain_minus_loss")},
        slopes={name: est[f"slope_{name}"] for name in ("gain", "loss", "asymmetry")},
        n_regressed=int(np.isfinite(slopes).any(axis=1).sum()),
    )


def stay_slopes(trials: Trials) -> FloatArray:
    """(S, 2) float64 least-squares slopes ``(b_gain, b_loss)`` of stay on the previous
    trial's gain and loss magnitudes, per subject (NaN where not identified)."""
    s = trials.mask.shape[0]
    out: FloatArray = np.full((s, 2), np.nan)
    for i in range(s):
        rows = trials.pair[i]
        if rows.sum() < 3:
            continue
        y = trials.stay[i, rows].astype(np.float64)
        x = np.column_stack([trials.gain[i, rows], trials.loss[i, rows]])
        varies = np.flatnonzero(x.std(axis=0) > 0)
        if not len(varies):
            continue
        design = np.column_stack([np.ones(len(y)), x[:, varies]])
        if np.linalg.matrix_rank(design) < design.shape[1]:
            continue
        coef = np.linalg.lstsq(design, y, rcond=None)[0]
        out[i, varies] = coef[1:]
    return out
