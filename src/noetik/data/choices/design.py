"""The shape of a decision task: how many choices a trial has, among how many options, in which
states, and which outcome columns follow them.

A trial makes one choice per *level* (one for a bandit, two for the two-step task). Level
``l`` offers ``n_options[l]`` options in all, split evenly over ``states[l]`` states: option
``c`` (0-based) belongs to state ``c // options_per_state(l)`` and is option
``c % options_per_state(l)`` there. The first level has one state. For the two-step task
(Daw et al., 2011) ``n_options == (2, 4)`` and ``states == (1, 2)``: second-stage options 0-1
are in state A, 2-3 in state B.

>>> from noetik.data.choices import TaskDesign
>>> two_step = TaskDesign("two-step", n_options=(2, 4), states=(1, 2), outcomes=("reward",))
>>> two_step.options_per_state(1)
2
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from noetik.errors import ConfigError

__all__ = ["OUTCOME_NAMES", "TaskDesign"]

#: The two outcome layouts: one reward column, or a gain and a loss column.
OUTCOME_NAMES: tuple[tuple[str, ...], ...] = (("reward",), ("gain", "loss"))


@dataclass(frozen=True)
class TaskDesign:
    """What a task asks of a participant on each trial and what it pays back."""

    task: str
    """Name of the task (``"bandit2arm"``, ``"two-step"``, ...)."""
    n_options: tuple[int, ...]
    """Options per choice level, over all of the level's states (each >= 2 per state)."""
    states: tuple[int, ...]
    """States per level (the first is 1); each divides the level's ``n_options``."""
    outcomes: tuple[str, ...]
    """Outcome columns of a trial: ``("reward",)`` or ``("gain", "loss")`` (loss <= 0)."""
    outcome_scale: float = 1.0
    """Models divide outcomes by this before learning from them (hBayesDM's IGT uses 100)."""

    def __post_init__(self) -> None:
        if not self.n_options:
            raise ConfigError(f"task '{self.task}': at least one choice level is needed")
        if len(self.states) != len(self.n_options):
            raise ConfigError(
                f"task '{self.task}': states has {len(self.states)} entries for "
                f"{len(self.n_options)} choice levels"
            )
        if self.states[0] != 1:
            raise ConfigError(f"task '{self.task}': the first choice level has one state")
        for level, (n, s) in enumerate(zip(self.n_options, self.states, strict=True)):
            if s < 1 or n % s or n // s < 2:
                raise ConfigError(
                    f"task '{self.task}': level {level + 1} needs at least 2 options in each of "
                    f"its {s} state(s), got n_options={n}"
                )
        if self.outcomes not in OUTCOME_NAMES:
            raise ConfigError(
                f"task '{self.task}': outcomes must be ('reward',) or ('gain', 'loss'), "
                f"got {self.outcomes}"
            )
        if not (math.isfinite(self.outcome_scale) and self.outcome_scale > 0):
            raise ConfigError(
                f"task '{self.task}': outcome_scale must be a positive number, "
                f"got {self.outcome_scale}"
            )

    @property
    def n_levels(self) -> int:
        """Choices per trial."""
        return len(self.n_options)

    def options_per_state(self, level: int) -> int:
        """Options offered in each state of choice ``level`` (0-based)."""
        return self.n_options[level] // self.states[level]

    @property
    def chance_log_likelihood(self) -> float:
        """Log-probability of one trial's choices under uniform guessing (sum over levels)."""
        return -sum(math.log(self.options_per_state(lv)) for lv in range(self.n_levels))
