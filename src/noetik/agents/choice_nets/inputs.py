"""What a neural model of choice reads: each trial's choices and outcomes, one row per trial.

For episodes of S subjects and T trials, :func:`encode_inputs` builds (S, T + 1, F) float32
rows, row ``t`` describing trial ``t - 1`` (0-based), the trial *before* the decision that the
network's output at row ``t`` predicts; row 0 (nothing seen yet) and rows past a subject's last
trial are all zeros. Row ``n_trials[s]`` describes the subject's last trial, so the output
there predicts the next, unseen trial (what :meth:`act` samples). The F features, in order:

* ``choice``: one-hot of the trial's choice at each level, ``sum(design.n_options)`` columns
  (the two-step task: 2 first-stage, then 4 second-stage columns, whose index also names the
  second-stage state reached);
* ``outcome``: the trial's outcome columns (``reward``, or ``gain`` and ``loss``) divided by the
  design's ``outcome_scale`` and put through ``sign(x) log1p(|x|)`` (0 stays 0).

All-zero rows are the "nothing happened" baseline of the attributions
(:mod:`noetik.explain.choices`): an input row's attribution is what that trial contributed.

Tasks with several choice levels also need what was chosen earlier *in the predicted trial*:
``current`` (S, T + 1, C) holds the one-hot of the predicted trial's choices at levels
``0 .. L - 2`` (C = ``sum(n_options[:-1])``; zeros in row ``n_trials`` and in padding); the
level-``l`` head reads its first ``sum(n_options[:l])`` columns.

>>> from noetik.agents.choice_nets import encode_inputs
>>> inputs = encode_inputs(episodes)
>>> inputs.rows.shape, inputs.parts["outcome"]          # (S, T + 1, F), slice(...)
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from noetik.data.choices import ChoiceEpisodes, TaskDesign

__all__ = ["ChoiceInputs", "Float32Array", "encode_inputs", "input_parts", "symlog"]

Float32Array = npt.NDArray[np.float32]


def input_parts(design: TaskDesign) -> MappingProxyType[str, slice]:
    """Columns of the ``choice`` and ``outcome`` parts of an input row for ``design``."""
    n_choice = sum(design.n_options)
    return MappingProxyType(
        {
            "choice": slice(0, n_choice),
            "outcome": slice(n_choice, n_choice + len(design.outcomes)),
        }
    )


def n_features(design: TaskDesign) -> int:
    """F, the width of an input row."""
    return sum(design.n_options) + len(design.outcomes)


def n_current(design: TaskDesign) -> int:
    """C, the width of the ``current`` conditioning of the later choice levels."""
    return sum(design.n_options[:-1])


def symlog(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``sign(x) log1p(|x|)``: outcomes of any size on a scale a network reads well."""
    out: npt.NDArray[np.float64] = np.sign(x) * np.log1p(np.abs(x))
    return out


@dataclass(frozen=True, eq=False)
class ChoiceInputs:
    """The encoded trials of S subjects (see the module docstring)."""

    rows: Float32Array
    """(S, T + 1, F) float32: row t describes trial t - 1 (row 0 and padding rows zero)."""
    current: Float32Array
    """(S, T + 1, C) float32: one-hot of the predicted trial's choices at the earlier levels."""
    parts: MappingProxyType[str, slice]
    """Columns of each part (``choice``, ``outcome``) of a row."""


def encode_inputs(episodes: ChoiceEpisodes) -> ChoiceInputs:
    """The input rows and level conditioning of ``episodes`` (module docstring)."""
    design = episodes.design
    s, t = episodes.mask.shape
    f = n_features(design)
    rows = np.zeros((s, t + 1, f), dtype=np.float32)
    offsets = np.concatenate([[0], np.cumsum(design.n_options)]).astype(np.int64)
    mask = episodes.mask
    subj, trial = np.nonzero(mask)
    for level in range(design.n_levels):
        column = offsets[level] + episodes.choices[subj, trial, level]
        rows[subj, trial + 1, column] = 1.0
    outcome = symlog(episodes.outcomes / design.outcome_scale)
    parts = input_parts(design)
    rows[:, 1:, parts["outcome"]] = np.where(mask[:, :, None], outcome, 0.0)
    current = np.zeros((s, t + 1, n_current(design)), dtype=np.float32)
    for level in range(design.n_levels - 1):
        column = offsets[level] + episodes.choices[subj, trial, level]
        current[subj, trial, column] = 1.0
    return ChoiceInputs(rows, current, parts)
