"""Behavioural analysis of people's trial-by-trial choices, each measure a mean over subjects
with a 95 % bootstrap interval (resampling subjects; the project's one bootstrap).

* :func:`win_stay_lose_shift`: P(repeat | win), P(switch | no win), P(repeat).
* :func:`learning_curve`: P(best option) and P(win) by trial bin.
* :func:`perseveration`: repeat rate against the subject's own choice frequencies, by lag.
* :func:`gain_loss_sensitivity`: stay after gains versus losses, and slopes of stay on their
  magnitudes.
* :func:`two_step_stays`: the two-step task's reward x transition stay analysis.
* :func:`analyse_choices`: all of them (:class:`ChoiceBehaviour`), :func:`behaviour_lines`
  and :func:`behaviour_figure` in words and in a figure.
* :mod:`~noetik.analysis.choices.kuairand_tags`: the same question about KuaiRand users: does
  a user's long view of a tag follow their recent outcomes on it the way a Rescorla-Wagner
  learner predicts?

Every measure works for any task read through a mapping (presets or custom).

>>> from noetik.analysis.choices import analyse_choices, behaviour_lines
>>> from noetik.data.choices import read_choices
>>> episodes = read_choices("../shared/data/decision-tasks/igt_exampleData.txt", "igt")
>>> print("\\n".join(behaviour_lines(analyse_choices(episodes).as_dict())))
"""

from __future__ import annotations

from noetik.analysis.choices.behaviour import ChoiceBehaviour, analyse_choices
from noetik.analysis.choices.config import ChoiceAnalysisConfig, WinRule
from noetik.analysis.choices.figures import behaviour_figure
from noetik.analysis.choices.learning_curve import LearningCurve, best_options, learning_curve
from noetik.analysis.choices.perseveration import Perseveration, perseveration
from noetik.analysis.choices.rates import over_subjects, subject_rate
from noetik.analysis.choices.sensitivity import (
    CASES,
    Sensitivity,
    gain_loss_sensitivity,
    stay_slopes,
)
from noetik.analysis.choices.text import behaviour_lines, estimate_text
from noetik.analysis.choices.trials import Trials, win_rule
from noetik.analysis.choices.two_step import (
    TWO_STEP_CELLS,
    TwoStepStays,
    is_two_step,
    two_step_stays,
)
from noetik.analysis.choices.win_stay import WinStay, win_stay_lose_shift

__all__ = [
    "CASES",
    "TWO_STEP_CELLS",
    "ChoiceAnalysisConfig",
    "ChoiceBehaviour",
    "LearningCurve",
    "Perseveration",
    "Sensitivity",
    "Trials",
    "TwoStepStays",
    "WinRule",
    "WinStay",
    "analyse_choices",
    "behaviour_figure",
    "behaviour_lines",
    "best_options",
    "estimate_text",
    "gain_loss_sensitivity",
    "is_two_step",
    "learning_curve",
    "over_subjects",
    "perseveration",
    "stay_slopes",
    "subject_rate",
    "two_step_stays",
    "win_rule",
    "win_stay_lose_shift",
]
