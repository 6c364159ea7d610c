"""What the history Transformer's prediction of a trial attended to among the earlier trials.

The weights are the exact softmax weights of
:meth:`~noetik.agents.choice_nets.ChoiceTransformer.attention`: the prediction of trial ``t``
is the output of input row ``t`` (trial ``t - 1``), which attends to rows ``0 .. t``: row 0,
the "nothing yet" row, and each earlier trial ``i`` as row ``i + 1``.

>>> from noetik.explain.choices import history_attention
>>> att = history_attention(transformer, episodes, subject=0, trial=37)
>>> att.per_trial.argmax()                 # the earlier trial most attended to (last layer)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from noetik.agents.choice_nets import ChoiceTransformer, NeuralChoiceModel
from noetik.data.choices import ChoiceEpisodes, FloatArray
from noetik.errors import ConfigError

__all__ = ["HistoryAttention", "history_attention"]


@dataclass(frozen=True, eq=False)
class HistoryAttention:
    """Attention of one trial's prediction over the t earlier trials."""

    subject: int
    """Row of the subject in the episodes."""
    trial: int
    """0-based index of the explained trial."""
    weights: FloatArray
    """(L, heads, t + 1) float64 weights of every layer and head over row 0 (nothing yet) and
    the t earlier trials (index ``i + 1`` is trial ``i``); each (layer, head) sums to 1."""

    @property
    def per_trial(self) -> FloatArray:
        """(t,) float64 weight of each earlier trial in the last layer, mean over heads."""
        out: FloatArray = self.weights[-1].mean(axis=0)[1:]
        return out

    @property
    def start(self) -> float:
        """Last layer's mean weight on row 0 (the "nothing yet" row)."""
        return float(self.weights[-1].mean(axis=0)[0])


def history_attention(
    model: NeuralChoiceModel, episodes: ChoiceEpisodes, subject: int, trial: int
) -> HistoryAttention:
    """The attention of the prediction of ``trial`` (0-based) of subject row ``subject``."""
    net = model.net
    if not isinstance(net, ChoiceTransformer):
        raise ConfigError(f"attention needs the transformer model of choice, not {model.name}")
    if not 0 <= subject < episodes.n_subjects:
        raise ConfigError(f"subject must lie in [0, {episodes.n_subjects}), got {subject}")
    if not 0 <= trial < int(episodes.n_trials[subject]):
        raise ConfigError(f"trial must lie in [0, {int(episodes.n_trials[subject])}), got {trial}")
    _, rows, _ = model.tensors(episodes.select([subject]))
    with torch.no_grad():
        weights = net.attention(rows[:, : trial + 1])  # (L, 1, heads, t + 1, t + 1)
    out: FloatArray = weights[:, 0, :, trial].double().cpu().numpy()
    return HistoryAttention(subject, trial, np.ascontiguousarray(out))
