"""Win-stay and lose-shift rates.

Per subject: ``win_stay = P(c_t = c_{t-1} | trial t-1 won)``, ``lose_shift = P(c_t != c_{t-1} |
trial t-1 did not win)`` and the overall ``stay`` rate; each a mean over subjects with its 95 %
interval. A win-stay/lose-shift player with ``p_stay_win`` and ``p_shift_lose`` has these
rates in expectation (:class:`~noetik.agents.cognitive.WinStayLoseShift`); a player who
ignores outcomes has ``win_stay = 1 - lose_shift``.

>>> from noetik.analysis.choices import ChoiceAnalysisConfig, Trials, win_stay_lose_shift
>>> result = win_stay_lose_shift(Trials.of(episodes, config), config)
>>> result.win_stay.format(), result.lose_shift.format()
"""

from __future__ import annotations

from dataclasses import dataclass

from noetik.analysis.choices.config import ChoiceAnalysisConfig
from noetik.analysis.choices.rates import over_subjects, subject_rate
from noetik.analysis.choices.trials import Trials
from noetik.data.choices import FloatArray
from noetik.utils.bootstrap import Estimate

__all__ = ["WinStay", "win_stay_lose_shift"]


@dataclass(frozen=True, eq=False)
class WinStay:
    """Win-stay, lose-shift and stay rates, means over subjects with intervals."""

    win_stay: Estimate
    """P(repeat | previous trial won)."""
    lose_shift: Estimate
    """P(switch | previous trial did not win)."""
    stay: Estimate
    """P(repeat), whatever the outcome."""
    per_subject: dict[str, FloatArray]
    """``{"win_stay", "lose_shift", "stay"}``: (S,) float64 per-subject rates (NaN where a
    subject had no such trial)."""

    def as_dict(self) -> dict[str, dict[str, float]]:
        """``{measure: {"mean", "low", "high"}}``."""
        return {
            "win_stay": self.win_stay.as_dict(),
            "lose_shift": self.lose_shift.as_dict(),
            "stay": self.stay.as_dict(),
        }


def win_stay_lose_shift(trials: Trials, config: ChoiceAnalysisConfig) -> WinStay:
    """The three rates of ``trials``."""
    per = {
        "win_stay": subject_rate(trials.stay, trials.pair & trials.win),
        "lose_shift": subject_rate(~trials.stay, trials.pair & ~trials.win),
        "stay": subject_rate(trials.stay, trials.pair),
    }
    est = over_subjects(per, config)
    return WinStay(est["win_stay"], est["lose_shift"], est["stay"], per)
