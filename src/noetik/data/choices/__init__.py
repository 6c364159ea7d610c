"""Trial-by-trial choice data of people doing decision tasks, read through a declared mapping.

* :class:`TaskDesign`: a task's choice levels, options, states and outcome columns.
* :class:`ChoiceMapping`: which column of a file holds what; :func:`load_mapping` reads one from
  a small JSON or TOML file, so a new task of a known shape needs no code.
* :data:`PRESETS`: the mappings of the four hBayesDM example tasks (``bandit2arm``,
  ``bandit4arm``, ``igt``, ``two-step``; data by Ahn, Haines & Zhang, 2017), whose files are
  named in :data:`PRESET_FILES`.
* :func:`read_choices`: a file into :class:`ChoiceEpisodes`, padded (S, T) arrays with a mask,
  0-based choices and float outcomes; bad files raise one-line DataErrors.

>>> from noetik.data.choices import PRESET_FILES, read_choices
>>> folder = "../shared/data/decision-tasks/"
>>> episodes = read_choices(folder + PRESET_FILES["bandit2arm"], "bandit2arm")
>>> episodes.n_subjects, episodes.max_trials, episodes.design.n_options
(20, 100, (2,))
"""

from __future__ import annotations

from noetik.data.choices.design import OUTCOME_NAMES, TaskDesign
from noetik.data.choices.episodes import BoolArray, ChoiceEpisodes, FloatArray, IntArray
from noetik.data.choices.mapping import ChoiceMapping, load_mapping
from noetik.data.choices.presets import PRESET_FILES, PRESETS, preset
from noetik.data.choices.reader import read_choices

__all__ = [
    "OUTCOME_NAMES",
    "PRESETS",
    "PRESET_FILES",
    "BoolArray",
    "ChoiceEpisodes",
    "ChoiceMapping",
    "FloatArray",
    "IntArray",
    "TaskDesign",
    "load_mapping",
    "preset",
    "read_choices",
]
