"""The trial-level view every behavioural measure reads: what was chosen, whether it was a
repeat, and what the previous trial paid (wins, gains and losses).

For S subjects and T trials (padded episodes), ``Trials`` holds (S, T) arrays aligned on trial
t: the choice at the analysed level, whether trial t repeats trial t-1's choice (``stay``) and
the previous trial's outcome (``win``, ``gain``, ``loss``). ``pair`` marks the trials that have
a real previous trial (every real trial but the first of each subject).

Gains and losses are magnitudes in units of the design's ``outcome_scale``: a task with gain
and loss columns gives ``gain`` and ``-loss``; a task with one reward column gives its
positive and negative parts.

>>> from noetik.analysis.choices import ChoiceAnalysisConfig, Trials
>>> trials = Trials.of(episodes, ChoiceAnalysisConfig())
>>> trials.stay.shape == episodes.mask.shape
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from noetik.analysis.choices.config import ChoiceAnalysisConfig
from noetik.data.choices import BoolArray, ChoiceEpisodes, FloatArray, IntArray
from noetik.errors import ConfigError

__all__ = ["Trials", "win_rule"]


def win_rule(episodes: ChoiceEpisodes, config: ChoiceAnalysisConfig) -> str:
    """The win rule in effect: ``config.win``, with ``"auto"`` resolved on the data."""
    if config.win != "auto":
        return config.win
    net = episodes.reward[episodes.mask]
    both_signs = bool((net > 0).any() and (net <= 0).any())
    return "positive" if both_signs else "above_median"


@dataclass(frozen=True, eq=False)
class Trials:
    """Per-trial choices, repeats and previous outcomes of S subjects (T trial positions)."""

    choice: IntArray
    """(S, T) int64 option chosen at the analysed level (0 in padding)."""
    mask: BoolArray
    """(S, T) bool real trials."""
    pair: BoolArray
    """(S, T) bool: trial t and trial t-1 are both real (False at t = 0 and in padding)."""
    stay: BoolArray
    """(S, T) bool: trial t repeats trial t-1's choice (False where ``pair`` is False)."""
    won: BoolArray
    """(S, T) bool: trial t itself counted a win (False in padding)."""
    win: BoolArray
    """(S, T) bool: trial t-1 counted a win (False where ``pair`` is False)."""
    gain: FloatArray
    """(S, T) float64 gain magnitude (>= 0, scaled) of trial t-1 (0 where ``pair`` is False)."""
    loss: FloatArray
    """(S, T) float64 loss magnitude (>= 0, scaled) of trial t-1 (0 where ``pair`` is False)."""
    net: FloatArray
    """(S, T) float64 net outcome of trial t itself (raw; 0 in padding)."""
    n_options: int
    """Options of the analysed level (all states together)."""
    win_rule: str
    """The win rule used (``"positive"`` or ``"above_median"``)."""

    @classmethod
    def of(cls, episodes: ChoiceEpisodes, config: ChoiceAnalysisConfig) -> Trials:
        """The trial view of ``episodes`` at ``config.level``."""
        design = episodes.design
        if config.level >= design.n_levels:
            raise ConfigError(
                f"level {config.level} does not exist: task '{design.task}' has "
                f"{design.n_levels} choice level(s)"
            )
        mask = episodes.mask
        choice = np.where(mask, episodes.choices[:, :, config.level], 0)
        net = np.where(mask, episodes.reward, 0.0)
        rule = win_rule(episodes, config)
        if rule == "positive":
            won = net > 0
        else:
            median = np.array(
                [np.median(row[m]) if m.any() else 0.0 for row, m in zip(net, mask, strict=True)]
            )
            won = net > median[:, None]
        if design.outcomes == ("gain", "loss"):
            gain, loss = episodes.outcomes[:, :, 0], -episodes.outcomes[:, :, 1]
        else:
            gain, loss = np.maximum(net, 0.0), np.maximum(-net, 0.0)
        scale = design.outcome_scale
        pair = np.zeros_like(mask)
        pair[:, 1:] = mask[:, 1:] & mask[:, :-1]
        stay = np.zeros_like(mask)
        stay[:, 1:] = choice[:, 1:] == choice[:, :-1]
        return cls(
            choice=choice.astype(np.int64),
            mask=mask,
            pair=pair,
            stay=stay & pair,
            won=won & mask,
            win=_previous(won & mask) & pair,
            gain=np.where(pair, _previous(gain / scale), 0.0),
            loss=np.where(pair, _previous(loss / scale), 0.0),
            net=net,
            n_options=design.n_options[config.level],
            win_rule=rule,
        )


def _previous(values: np.ndarray) -> np.ndarray:
    """(S, T) values of trial t-1 at position t (position 0 gets zero/False)."""
    out = np.zeros_like(values)
    out[:, 1:] = values[:, :-1]
    return out
