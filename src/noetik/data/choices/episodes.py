"""Trial-by-trial choices of S subjects as padded arrays: the form every model of choice reads.

Subject ``s`` has ``n_trials[s]`` trials, stored in rows ``s`` of the arrays at positions
``0 .. n_trials[s] - 1`` in trial order; later positions are padding (``mask`` False, choices
and outcomes 0). Choices are 0-based option indices over all of a level's states (see
:class:`~noetik.data.choices.design.TaskDesign`); outcomes are raw (not divided by the design's
``outcome_scale``).

>>> import numpy as np
>>> from noetik.data.choices import ChoiceEpisodes, TaskDesign
>>> design = TaskDesign("bandit2arm", n_options=(2,), states=(1,), outcomes=("reward",))
>>> choices = np.array([[[0], [1], [1]]])           # one subject, three trials, one level
>>> outcomes = np.array([[[1.0], [-1.0], [1.0]]])
>>> episodes = ChoiceEpisodes.from_arrays(design, ("s1",), choices, outcomes)
>>> episodes.n_trials
array([3])
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from noetik.data.choices.design import TaskDesign
from noetik.errors import ConfigError

__all__ = ["BoolArray", "ChoiceEpisodes", "FloatArray", "IntArray"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, eq=False)
class ChoiceEpisodes:
    """One episode of trials per subject, padded to the longest (S subjects, T trials)."""

    design: TaskDesign
    """The task: choice levels, options, states and outcome columns."""
    subjects: tuple[str, ...]
    """(S,) subject ids as text, in first-appearance order of the source."""
    choices: IntArray
    """(S, T, L) int64: 0-based option of each of a trial's L choice levels (0 in padding)."""
    outcomes: FloatArray
    """(S, T, O) float64: the trial's outcome columns, ``design.outcomes`` (0 in padding)."""
    mask: BoolArray
    """(S, T) bool: True on a real trial; each row is True on a prefix, then False."""
    trial: IntArray
    """(S, T) int64: trial number from the source (1-based file order without a trial column;
    numbers may skip where trials were missed); 0 in padding."""
    reaction_time: FloatArray | None = None
    """(S, T) float64 reaction times (NaN in padding), when the source has them."""
    block: IntArray | None = None
    """(S, T) int64 block numbers (0 in padding), when the source has them."""
    option_values: FloatArray | None = None
    """(S, T, V) float64 per-trial values of the options (two-step: reward probabilities of the
    four second-stage options), NaN in padding, when the source has them."""
    option_value_names: tuple[str, ...] = ()
    """(V,) names of the ``option_values`` columns."""
    source: str = ""
    """Where the episodes come from (a file path, or the simulation that made them)."""

    def __post_init__(self) -> None:
        s, t = self.mask.shape
        levels, outs = self.design.n_levels, len(self.design.outcomes)
        expected = {
            "choices": (self.choices, (s, t, levels), np.int64),
            "outcomes": (self.outcomes, (s, t, outs), np.float64),
            "trial": (self.trial, (s, t), np.int64),
        }
        for name, (array, shape, dtype) in expected.items():
            if array.shape != shape or array.dtype != dtype:
                raise ConfigError(
                    f"ChoiceEpisodes.{name} must be {np.dtype(dtype)} {shape}, "
                    f"got {array.dtype} {array.shape}"
                )
        optional = {
            "reaction_time": (self.reaction_time, (s, t)),
            "block": (self.block, (s, t)),
            "option_values": (self.option_values, (s, t, len(self.option_value_names))),
        }
        for name, (extra, shape) in optional.items():
            if extra is not None and extra.shape != shape:
                raise ConfigError(f"ChoiceEpisodes.{name} must be {shape}, got {extra.shape}")
        if len(self.subjects) != s:
            raise ConfigError(f"ChoiceEpisodes: {len(self.subjects)} subject ids for {s} rows")
        if self.mask.dtype != np.bool_ or np.any(self.mask[:, 1:] & ~self.mask[:, :-1]):
            raise ConfigError("ChoiceEpisodes.mask must be bool and True on a prefix of each row")
        limits = np.asarray(self.design.n_options)
        if np.any((self.choices < 0) | (self.choices >= limits)):
            raise ConfigError(f"ChoiceEpisodes.choices must lie in [0, {self.design.n_options})")

    @classmethod
    def from_arrays(
        cls,
        design: TaskDesign,
        subjects: tuple[str, ...],
        choices: npt.ArrayLike,
        outcomes: npt.ArrayLike,
        n_trials: npt.ArrayLike | None = None,
        *,
        option_values: npt.ArrayLike | None = None,
        option_value_names: tuple[str, ...] = (),
        source: str = "",
    ) -> ChoiceEpisodes:
        """Episodes from (S, T, L) choices and (S, T, O) outcomes (and optional (S, T, V)
        option values); ``n_trials`` (S,) gives each subject's length (default: all T), trial
        numbers count 1.. per subject, padding is zeroed (NaN for option values)."""
        c = np.asarray(choices, dtype=np.int64)
        o = np.asarray(outcomes, dtype=np.float64)
        s, t = c.shape[:2]
        lengths = np.full(s, t) if n_trials is None else np.asarray(n_trials, dtype=np.int64)
        mask = np.arange(t)[None, :] < lengths[:, None]
        trial = np.where(mask, np.arange(1, t + 1)[None, :], 0).astype(np.int64)
        values = None
        if option_values is not None:
            values = np.where(mask[:, :, None], np.asarray(option_values, np.float64), np.nan)
        return cls(
            design,
            subjects,
            np.where(mask[:, :, None], c, 0),
            np.where(mask[:, :, None], o, 0.0),
            mask,
            trial,
            option_values=values,
            option_value_names=option_value_names,
            source=source,
        )

    @property
    def n_subjects(self) -> int:
        """S."""
        return int(self.mask.shape[0])

    @property
    def max_trials(self) -> int:
        """T, the longest episode."""
        return int(self.mask.shape[1])

    @property
    def n_trials(self) -> IntArray:
        """(S,) int64 trials of each subject."""
        out: IntArray = self.mask.sum(axis=1).astype(np.int64)
        return out

    @property
    def reward(self) -> FloatArray:
        """(S, T) float64 net outcome of each trial (reward, or gain + loss), raw."""
        out: FloatArray = self.outcomes.sum(axis=2)
        return out

    def select(self, rows: npt.ArrayLike) -> ChoiceEpisodes:
        """The episodes of subjects ``rows`` (indices or a bool mask over S), in that order."""
        index = np.arange(self.n_subjects)[np.asarray(rows)]
        return replace(
            self,
            subjects=tuple(self.subjects[i] for i in index),
            choices=self.choices[index],
            outcomes=self.outcomes[index],
            mask=self.mask[index],
            trial=self.trial[index],
            reaction_time=None if self.reaction_time is None else self.reaction_time[index],
            block=None if self.block is None else self.block[index],
            option_values=None if self.option_values is None else self.option_values[index],
        )

    def first_trials(self, counts: npt.ArrayLike) -> ChoiceEpisodes:
        """The same subjects with only their first ``counts`` (S,) trials (fewer if they have
        fewer); arrays keep their width T, the later trials become padding."""
        keep = np.arange(self.max_trials)[None, :] < np.asarray(counts, dtype=np.int64)[:, None]
        mask = self.mask & keep
        return replace(
            self,
            choices=np.where(mask[:, :, None], self.choices, 0),
            outcomes=np.where(mask[:, :, None], self.outcomes, 0.0),
            mask=mask,
            trial=np.where(mask, self.trial, 0),
            reaction_time=None
            if self.reaction_time is None
            else np.where(mask, self.reaction_time, np.nan),
            block=None if self.block is None else np.where(mask, self.block, 0),
            option_values=None
            if self.option_values is None
            else np.where(mask[:, :, None], self.option_values, np.nan),
        )
