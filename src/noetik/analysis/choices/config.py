"""Settings of the behavioural analysis of choices (one frozen dataclass for all analyses).

>>> from noetik.analysis.choices import ChoiceAnalysisConfig
>>> config = ChoiceAnalysisConfig(bins=5, n_boot=1_000, seed=1)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from noetik.errors import ConfigError
from noetik.utils.bootstrap import check_bootstrap

__all__ = ["ChoiceAnalysisConfig", "WinRule"]

#: How a trial counts as a win: ``"positive"`` net outcome > 0; ``"above_median"`` net outcome
#: above the subject's median (tasks whose outcomes are all positive, e.g. restless bandits
#: with continuous payoffs); ``"auto"``: ``"positive"`` when the data hold both net outcomes
#: > 0 and <= 0, else ``"above_median"``.
WinRule = Literal["auto", "positive", "above_median"]


@dataclass(frozen=True)
class ChoiceAnalysisConfig:
    """How the behavioural analysis of choice episodes is computed."""

    level: int = 0
    """Choice level analysed (0: the first, or only, choice of a trial)."""
    win: WinRule = "auto"
    """What counts as a win (see :data:`WinRule`)."""
    bins: int = 10
    """Trial bins of the learning curves (equal widths over trial positions 1..T)."""
    best_by: Literal["data", "subject"] = "data"
    """Learning curves: the best option is the one with the highest mean net outcome over
    all subjects' trials (``"data"``, for tasks whose options pay alike for everyone) or over
    each subject's own trials (``"subject"``)."""
    max_lag: int = 5
    """Perseveration: lags k of the repeat profile P(c_t = c_{t-k})."""
    n_boot: int = 2_000
    """Bootstrap resamples of subjects for every interval."""
    level_ci: float = 0.95
    """Confidence level of the intervals."""
    seed: int = 0
    """Seed of the bootstrap (every estimate sees the same resamples)."""

    def __post_init__(self) -> None:
        if self.level < 0:
            raise ConfigError(f"level must be >= 0, got {self.level}")
        if self.win not in ("auto", "positive", "above_median"):
            raise ConfigError(f"win must be auto, positive or above_median, got {self.win!r}")
        if self.best_by not in ("data", "subject"):
            raise ConfigError(f"best_by must be data or subject, got {self.best_by!r}")
        if self.bins < 1 or self.max_lag < 1:
            raise ConfigError(f"bins and max_lag must be >= 1, got {self.bins}, {self.max_lag}")
        check_bootstrap(self.n_boot, self.level_ci, min_boot=2)
