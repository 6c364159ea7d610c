"""The declared column mapping of a trial-by-trial choice file.

A :class:`ChoiceMapping` says which column holds what: the subject, the trial order, the
choice(s), the outcome (one reward column, or a gain and a loss column) and optional extras. A
task of a shape Noetik has not seen needs only a mapping, written in Python or in a small JSON or
TOML file whose keys are the fields below (read by :func:`load_mapping`):

.. code-block:: toml

    # reversal.toml: a probabilistic reversal-learning file with columns subjID, trial,
    # choice (1/2), outcome (1 = reward, -1 = loss)
    task = "reversal"
    trial = "trial"
    reward = "outcome"

>>> from noetik.data.choices import ChoiceMapping, load_mapping
>>> restless = ChoiceMapping(task="restless4arm", n_options=(4,), reward="outcome")
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from noetik.data.choices.design import TaskDesign
from noetik.errors import ConfigError
from noetik.utils.config import from_json, read_config_file

__all__ = ["ChoiceMapping", "load_mapping"]


@dataclass(frozen=True)
class ChoiceMapping:
    """Which columns of a choice file hold what (every ``str`` field is a column name)."""

    task: str
    """Name of the task (kept in the episodes' design)."""
    subject: str = "subjID"
    """Column of subject ids (any text or numbers; subjects keep their first-appearance order)."""
    choices: tuple[str, ...] = ("choice",)
    """Choice columns, one per choice level (two-step: ``("level1_choice", "level2_choice")``)."""
    n_options: tuple[int, ...] = (2,)
    """Options per choice column, over all of its states (two-step: ``(2, 4)``)."""
    states: tuple[int, ...] = ()
    """States per choice column (two-step: ``(1, 2)``); empty: one state per level."""
    choice_base: int = 1
    """Code of the first option in the file (1 for hBayesDM's 1-based choices)."""
    trial: str | None = None
    """Column of trial numbers (gaps allowed, duplicates not); None: the rows' order in the file."""
    reward: str | None = None
    """Column of the trial's reward (any real number); give it, or ``gain`` and ``loss``."""
    gain: str | None = None
    """Column of the trial's gain (>= 0), with ``loss``; instead of ``reward``."""
    loss: str | None = None
    """Column of the trial's loss, with ``gain``; negative or zero unless ``losses_are_negative``
    is False (then positive magnitudes, negated on reading)."""
    losses_are_negative: bool = True
    """Whether the loss column holds losses as numbers <= 0 (hBayesDM) or as magnitudes >= 0."""
    reaction_time: str | None = None
    """Optional column of reaction times (any unit)."""
    block: str | None = None
    """Optional column of integer block numbers."""
    option_values: tuple[str, ...] = ()
    """Optional per-trial values of the options (two-step: ``A1prob, A2prob, B1prob, B2prob``)."""
    outcome_scale: float = 1.0
    """Models divide outcomes by this before learning (hBayesDM's IGT models use 100)."""
    separator: str = "\t"
    """Field separator of the file (one character; hBayesDM files are tab-separated)."""
    min_trials: int = 10
    """Fewest trials a subject may have; a subject with fewer is an error."""

    def __post_init__(self) -> None:
        if not self.choices:
            raise ConfigError(f"mapping '{self.task}': at least one choice column is needed")
        if len(self.n_options) != len(self.choices):
            raise ConfigError(
                f"mapping '{self.task}': n_options has {len(self.n_options)} entries for "
                f"{len(self.choices)} choice column(s)"
            )
        has_reward = self.reward is not None
        has_gain_loss = (self.gain is not None, self.loss is not None)
        if has_reward == any(has_gain_loss) or (not has_reward and not all(has_gain_loss)):
            raise ConfigError(
                f"mapping '{self.task}': give either 'reward' or both 'gain' and 'loss'"
            )
        if len(self.separator) != 1:
            raise ConfigError(
                f"mapping '{self.task}': separator must be one character, got {self.separator!r}"
            )
        if self.min_trials < 1:
            raise ConfigError(
                f"mapping '{self.task}': min_trials must be >= 1, got {self.min_trials}"
            )
        names = self.columns()
        repeated = sorted({c for c in names.values() if list(names.values()).count(c) > 1})
        if repeated:
            raise ConfigError(f"mapping '{self.task}': column '{repeated[0]}' is mapped twice")
        self.design()  # checks n_options, states and outcome_scale

    def design(self) -> TaskDesign:
        """The task design these columns describe."""
        outcomes = ("reward",) if self.reward is not None else ("gain", "loss")
        states = self.states or (1,) * len(self.choices)
        return TaskDesign(self.task, self.n_options, states, outcomes, self.outcome_scale)

    def columns(self) -> dict[str, str]:
        """``{field: column}`` of every mapped column (tuples as ``field[i]``)."""
        out: dict[str, str] = {"subject": self.subject}
        out.update({f"choices[{i}]": c for i, c in enumerate(self.choices)})
        for name in ("trial", "reward", "gain", "loss", "reaction_time", "block"):
            column = getattr(self, name)
            if column is not None:
                out[name] = column
        out.update({f"option_values[{i}]": c for i, c in enumerate(self.option_values)})
        return out

    def to_json(self) -> dict[str, Any]:
        """The fields as JSON values (tuples as lists); :func:`load_mapping` reads them back."""
        return {
            name: list(value) if isinstance(value, tuple) else value
            for name, value in self.__dict__.items()
        }


def load_mapping(path: Path | str) -> ChoiceMapping:
    """The mapping declared in a ``.json`` or ``.toml`` file (keys: the fields of
    :class:`ChoiceMapping`); a mistyped or unknown key is a one-line ConfigError naming it."""
    path = Path(path)
    data = read_config_file(path, "mapping")
    return from_json(ChoiceMapping, data, str(path))
