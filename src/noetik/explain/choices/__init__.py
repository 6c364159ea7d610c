"""Explanations of people's choices, from the neural models of choice and beside the cognitive
models.

* :func:`attribute_history`: integrated gradients (Captum) of a predicted choice over the
  earlier trials' input rows, per trial and per part (choice vs outcome), with the
  completeness error; :func:`lag_profile` averages them by lag over many trials.
* :func:`history_attention`: the history Transformer's attention over the earlier trials.
* :func:`cognitive_view`: a fitted cognitive model's state (Q-values) and choice
  probabilities at the trial.
* :func:`explain_choice`: all of it for one trial, with a plain-word explanation.

>>> from noetik.explain.choices import explain_choice
>>> print(explain_choice(gru, episodes, subject=0, trial=37, cognitive=rw).text)
"""

from __future__ import annotations

from noetik.explain.choices.attention import HistoryAttention, history_attention
from noetik.explain.choices.attributions import (
    HistoryAttribution,
    LagProfile,
    attribute_history,
    lag_profile,
)
from noetik.explain.choices.cognitive import CognitiveView, cognitive_view
from noetik.explain.choices.explanation import ChoiceExplanation, describe_trial, explain_choice

__all__ = [
    "ChoiceExplanation",
    "CognitiveView",
    "HistoryAttention",
    "HistoryAttribution",
    "LagProfile",
    "attribute_history",
    "cognitive_view",
    "describe_trial",
    "explain_choice",
    "history_attention",
    "lag_profile",
]
