"""The whole behavioural analysis of one choice data set, and its JSON form.

>>> from noetik.analysis.choices import ChoiceAnalysisConfig, analyse_choices
>>> behaviour = analyse_choices(episodes, ChoiceAnalysisConfig(seed=0))
>>> behaviour.win_stay.win_stay.format()
>>> behaviour.as_dict()        # what ``noetik choices analyse --json`` prints
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from noetik.analysis.choices.config import ChoiceAnalysisConfig
from noetik.analysis.choices.learning_curve import LearningCurve, learning_curve
from noetik.analysis.choices.perseveration import Perseveration, perseveration
from noetik.analysis.choices.sensitivity import Sensitivity, gain_loss_sensitivity
from noetik.analysis.choices.trials import Trials
from noetik.analysis.choices.two_step import TwoStepStays, is_two_step, two_step_stays
from noetik.analysis.choices.win_stay import WinStay, win_stay_lose_shift
from noetik.data.choices import ChoiceEpisodes

__all__ = ["ChoiceBehaviour", "analyse_choices"]


@dataclass(frozen=True, eq=False)
class ChoiceBehaviour:
    """Every behavioural measure of one data set, each with its interval over subjects."""

    task: str
    """Name of the task."""
    n_subjects: int
    """Subjects analysed (the bootstrap's units)."""
    n_trials: int
    """Trials of all subjects."""
    n_options: int
    """Options of the analysed choice level."""
    config: ChoiceAnalysisConfig
    """How the measures were computed."""
    win_rule: str
    """What counted as a win (``"positive"`` or ``"above_median"``)."""
    win_stay: WinStay
    """Win-stay, lose-shift and stay rates."""
    curve: LearningCurve
    """P(best option) and P(win) by trial bin."""
    perseveration: Perseveration
    """Repeat rates beyond the subjects' choice frequencies."""
    sensitivity: Sensitivity
    """Stay after gains versus losses, and slopes of stay on their magnitudes."""
    two_step: TwoStepStays | None
    """Stay by reward and transition (two-step tasks only)."""

    def as_dict(self) -> dict[str, object]:
        """JSON form (estimates as ``{"mean", "low", "high"}``)."""
        return {
            "task": self.task,
            "n_subjects": self.n_subjects,
            "n_trials": self.n_trials,
            "n_options": self.n_options,
            "config": asdict(self.config),
            "win_rule": self.win_rule,
            "win_stay": self.win_stay.as_dict(),
            "learning_curve": self.curve.as_dict(),
            "perseveration": self.perseveration.as_dict(),
            "sensitivity": self.sensitivity.as_dict(),
            "two_step": None if self.two_step is None else self.two_step.as_dict(),
        }


def analyse_choices(
    episodes: ChoiceEpisodes, config: ChoiceAnalysisConfig | None = None
) -> ChoiceBehaviour:
    """Win-stay/lose-shift, learning curves, perseveration, gain/loss sensitivity (and the
    two-step analysis on two-step tasks) of ``episodes``."""
    config = config or ChoiceAnalysisConfig()
    trials = Trials.of(episodes, config)
    design = episodes.design
    return ChoiceBehaviour(
        task=design.task,
        n_subjects=episodes.n_subjects,
        n_trials=int(np.sum(episodes.n_trials)),
        n_options=trials.n_options,
        config=config,
        win_rule=trials.win_rule,
        win_stay=win_stay_lose_shift(trials, config),
        curve=learning_curve(trials, config),
        perseveration=perseveration(trials, config),
        sensitivity=gain_loss_sensitivity(trials, config),
        two_step=two_step_stays(episodes, config) if is_two_step(design) else None,
    )
