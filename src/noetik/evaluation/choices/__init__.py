"""Evaluation of models of human choice: held-out prediction and parameter recovery.

* :func:`leave_subjects_out` and :func:`later_trials`: the two held-out schemes, each giving
  :class:`ChoiceScores` (NLL per decision, normalised likelihood ``exp(-NLL / decisions)``
  against its chance level, accuracy; each ``{"mean", "low", "high"}`` with a 95 % bootstrap
  interval over subjects). :func:`score_predictions` scores any model's per-trial predictions
  the same way.
  Both take a cognitive model or any :class:`~noetik.agents.choice_nets.ChoiceModel` (the
  neural models of choice), through one implementation of the folds and the scoring.
* :func:`parameter_recovery`: simulate participants with known parameters in the task
  environment, refit, correlate.

>>> from noetik.agents.cognitive import models_for
>>> from noetik.evaluation.choices import later_trials, leave_subjects_out
>>> for model in models_for(episodes.design):
...     for scheme in (leave_subjects_out, later_trials):
...         print(model.name, scheme(model, episodes).scores.as_dict())
"""

from __future__ import annotations

from noetik.evaluation.choices.heldout import (
    HeldOut,
    HeldOutConfig,
    as_choice_model,
    later_trials,
    leave_subjects_out,
    subject_folds,
    training_trials,
)
from noetik.evaluation.choices.recovery import (
    RECOVERY_ENVS,
    Recovery,
    parameter_recovery,
    sample_parameters,
)
from noetik.evaluation.choices.scores import ChoiceScores, chance_likelihood, score_predictions

__all__ = [
    "RECOVERY_ENVS",
    "ChoiceScores",
    "HeldOut",
    "HeldOutConfig",
    "Recovery",
    "as_choice_model",
    "chance_likelihood",
    "later_trials",
    "leave_subjects_out",
    "parameter_recovery",
    "sample_parameters",
    "score_predictions",
    "subject_folds",
    "training_trials",
]
