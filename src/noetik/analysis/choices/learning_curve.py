"""Learning curves: the share of choices of the best option, and of wins, by trial bin.

Trial positions 1..T are cut into ``bins`` equal-width bins. Per subject and bin: the share
of trials whose choice (at the analysed level) was the best option, and the share that won.
The best option is the one with the highest mean net outcome over every subject's trials
(``best_by="data"``: tasks whose options pay alike for everyone, such as the Iowa Gambling
Task's decks) or over the subject's own trials (``"subject"``). Each bin is a mean over the
subjects with a trial in it, with a 95 % interval; ``improvement`` is the paired difference
of the last bin and the first.

>>> from noetik.analysis.choices import learning_curve
>>> curve = learning_curve(Trials.of(episodes, config), config)
>>> curve.best[-1].format(), curve.improvement.format()
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from noetik.analysis.choices.config import ChoiceAnalysisConfig
from noetik.analysis.choices.rates import over_subjects, subject_rate
from noetik.analysis.choices.trials import Trials
from noetik.data.choices import FloatArray, IntArray
from noetik.utils.bootstrap import Estimate

__all__ = ["LearningCurve", "best_options", "learning_curve"]


@dataclass(frozen=True, eq=False)
class LearningCurve:
    """P(best option) and P(win) per trial bin, means over subjects with intervals."""

    edges: IntArray
    """(bins + 1,) int64 trial-position edges: bin b holds trials edges[b] + 1 .. edges[b+1]."""
    best: tuple[Estimate, ...]
    """(bins,) share of choices of the best option, per bin."""
    wins: tuple[Estimate, ...]
    """(bins,) share of winning trials, per bin."""
    improvement: Estimate
    """P(best) in the last bin minus the first (paired per subject)."""
    best_option: IntArray
    """(S,) int64 the best option of each subject (the same for all with ``best_by="data"``)."""
    chance: float
    """P(best) of uniform guessing (1 / options)."""

    def as_dict(self) -> dict[str, object]:
        """JSON form: estimates as ``{"mean", "low", "high"}``."""
        return {
            "edges": self.edges.tolist(),
            "best": [e.as_dict() for e in self.best],
            "wins": [e.as_dict() for e in self.wins],
            "improvement": self.improvement.as_dict(),
            "best_option": self.best_option.tolist(),
            "chance": self.chance,
        }


def best_options(trials: Trials, by: str) -> IntArray:
    """(S,) int64 option with the highest mean net outcome, over all subjects (``by="data"``)
    or each subject's own trials (``"subject"``); options never chosen do not count."""
    s, k = trials.choice.shape[0], trials.n_options
    onehot = (trials.choice[:, :, None] == np.arange(k)) & trials.mask[:, :, None]  # (S, T, k)
    sums = np.where(onehot, trials.net[:, :, None], 0.0).sum(axis=1)  # (S, k)
    counts = onehot.sum(axis=1).astype(np.float64)
    if by == "data":
        sums, counts = sums.sum(axis=0, keepdims=True), counts.sum(axis=0, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counts > 0, sums / np.maximum(counts, 1.0), -np.inf)
    best = np.argmax(means, axis=1).astype(np.int64)
    out: IntArray = np.broadcast_to(best, (s,)).copy()
    return out


def learning_curve(trials: Trials, config: ChoiceAnalysisConfig) -> LearningCurve:
    """The learning curves of ``trials`` in ``config.bins`` bins."""
    t_max = trials.mask.shape[1]
    bins = min(config.bins, t_max)
    edges = np.round(np.linspace(0, t_max, bins + 1)).astype(np.int64)
    best_option = best_options(trials, config.best_by)
    chose_best = trials.choice == best_option[:, None]
    position = np.arange(t_max)
    columns: dict[str, FloatArray] = {}
    for b in range(bins):
        inside = trials.mask & (position >= edges[b]) & (position < edges[b + 1])
        columns[f"best{b}"] = subject_rate(chose_best, inside)
        columns[f"wins{b}"] = subject_rate(trials.won, inside)
    columns["improvement"] = columns[f"best{bins - 1}"] - columns["best0"]
    est = over_subjects(columns, config)
    return LearningCurve(
        edges=edges,
        best=tuple(est[f"best{b}"] for b in range(bins)),
        wins=tuple(est[f"wins{b}"] for b in range(bins)),
        improvement=est["improvement"],
        best_option=best_option,
        chance=1.0 / trials.n_options,
    )
