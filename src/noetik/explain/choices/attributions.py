"""Integrated-gradients attributions of a neural model's predicted choice to the trials before
it (Captum's :class:`~captum.attr.IntegratedGradients`, Sundararajan et al. 2017).

The network reads one input row per earlier trial (:mod:`noetik.agents.choice_nets.inputs`:
row ``j`` describes trial ``j - 1``, its ``choice`` one-hot and its ``outcome`` columns). The
explained output is the log-probability the network gives option ``option`` of choice
``level`` on trial ``t``. The baseline is the same input with the rows of the attributed trials
set to zero (the trials did not happen: no choice, no outcome); by default every earlier
trial, or the last ``window`` of them, the earlier ones kept as they were. Attributions are
shaped like the input rows; their sum over a trial's row is what that trial contributed, and
over a part's columns what its choice or its outcome contributed. Completeness:
``sum(attributions) = f(input) - f(baseline)`` up to the integral's error, reported as
``delta`` (Captum's convergence delta; the network runs in float64 for it).

>>> from noetik.explain.choices import attribute_history
>>> a = attribute_history(gru, episodes, subject=0, trial=37)
>>> a.per_trial.argmax(), a.parts["outcome"], a.delta        # most important earlier trial
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import torch
from captum.attr import IntegratedGradients  # type: ignore[import-untyped]
from torch import Tensor

from noetik.agents.choice_nets import ChoiceNet, NeuralChoiceModel, state_logits
from noetik.data.choices import ChoiceEpisodes, FloatArray, IntArray
from noetik.errors import ConfigError
from noetik.utils.seeding import rng

__all__ = ["HistoryAttribution", "LagProfile", "attribute_history", "lag_profile"]


@dataclass(frozen=True, eq=False)
class HistoryAttribution:
    """What each earlier trial contributed to one predicted choice (t earlier trials)."""

    subject: int
    """Row of the subject in the episodes."""
    trial: int
    """0-based index of the explained trial within the subject's episode."""
    level: int
    """Choice level explained (0: the first choice of the trial)."""
    option: int
    """Explained option (0-based, among the options of the state the trial reached)."""
    log_prob: float
    """log P(option) the network gives (the explained output)."""
    baseline_log_prob: float
    """log P(option) with the attributed trials zeroed (the baseline's output)."""
    rows: FloatArray
    """(t, F) float64 attribution of every input feature of each earlier trial (row ``i`` is
    trial ``i``; trials outside the window are 0)."""
    parts: MappingProxyType[str, FloatArray]
    """``choice`` and ``outcome``: (t,) float64 attribution of each part of each trial."""
    delta: float
    """Completeness error: ``rows.sum() - (log_prob - baseline_log_prob)``."""

    @property
    def per_trial(self) -> FloatArray:
        """(t,) float64 attribution of each earlier trial (its row's sum)."""
        out: FloatArray = self.rows.sum(axis=1)
        return out


@dataclass(frozen=True, eq=False)
class LagProfile:
    """Mean absolute attribution of earlier trials by lag (trials back), over many targets."""

    lags: IntArray
    """(K,) int64 lags 1 .. K."""
    parts: MappingProxyType[str, FloatArray]
    """``choice``, ``outcome`` and ``total``: (K,) float64 mean |attribution| at each lag."""
    n_targets: int
    """Trials explained (each has all K lags)."""
    max_abs_delta: float
    """Largest completeness error over the targets."""


class _Target(torch.nn.Module):
    """``f(rows) = log P(option)`` at row ``position`` of each sample (float64 copy of a net)."""

    def __init__(self, net: ChoiceNet, level: int) -> None:
        super().__init__()
        self.net = copy.deepcopy(net).double().eval()
        self.level = level

    def forward(
        self, rows: Tensor, current: Tensor, choices: Tensor, position: Tensor, option: Tensor
    ) -> Tensor:
        h = self.net.features(rows)
        index = torch.arange(len(position), device=rows.device)
        feats = h[index, position].unsqueeze(1)  # (N, 1, H)
        cur = current[index, position].unsqueeze(1)
        logits = self.net.level_logits(feats, cur, self.level)
        logits = state_logits(logits, choices.unsqueeze(1), self.net.design, self.level)
        out: Tensor = torch.log_softmax(logits[:, 0], -1).gather(1, option[:, None])[:, 0]
        return out


def _integrate(
    model: NeuralChoiceModel,
    episodes: ChoiceEpisodes,
    subjects: IntArray,
    trials: IntArray,
    options: IntArray | None,
    *,
    level: int,
    window: int | None,
    n_steps: int,
    internal_batch_size: int | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, IntArray]:
    """``(attr (N, t_max + 1, F), f (N,), f_baseline (N,), delta (N,), options (N,))`` for
    the N (subject, trial) targets, all rows up to the latest target."""
    net = model.net
    if net is None:
        raise ConfigError(f"the {model.name} model of choice is not fitted yet")
    if not 0 <= level < episodes.design.n_levels:
        raise ConfigError(f"level must lie in [0, {episodes.design.n_levels}), got {level}")
    if np.any(trials < 0) or np.any(trials >= episodes.n_trials[subjects]):
        raise ConfigError("each explained trial must be one of its subject's trials")
    _, rows_all, current_all = model.tensors(episodes)
    device = rows_all.device
    t_max = int(trials.max())
    index = torch.as_tensor(subjects, device=device)
    rows = rows_all[index, : t_max + 1].double()
    current = current_all[index, : t_max + 1].double()
    choices = torch.as_tensor(episodes.choices[subjects, trials, level], device=device)
    position = torch.as_tensor(trials, device=device)
    target = _Target(net, level)
    with torch.no_grad():
        if options is None:
            feats = target.net.features(rows)[torch.arange(len(trials), device=device), position]
            cur = current[torch.arange(len(trials), device=device), position]
            logits = target.net.level_logits(feats[:, None], cur[:, None], level)
            logits = state_logits(logits, choices[:, None], episodes.design, level)
            options = logits[:, 0].argmax(-1).cpu().numpy().astype(np.int64)
    option = torch.as_tensor(options, device=device)
    # rows 1 .. t of target t are its earlier trials; the window keeps the last `window`
    row = torch.arange(t_max + 1, device=device)[None, :]
    first = 1 if window is None else torch.clamp(position[:, None] - window + 1, min=1)
    attributed = (row >= first) & (row <= position[:, None])
    baseline = rows * ~attributed[..., None]
    args = (current, choices, position, option)
    ig = IntegratedGradients(target)
    attr, delta = ig.attribute(
        rows,
        baselines=baseline,
        additional_forward_args=args,
        n_steps=n_steps,
        method="gausslegendre",
        internal_batch_size=internal_batch_size,
        return_convergence_delta=True,
    )
    with torch.no_grad():
        f = target(rows, *args)
        f0 = target(baseline, *args)
    as_np = [z.detach().double().cpu().numpy() for z in (attr, f, f0, delta)]
    return as_np[0], as_np[1], as_np[2], as_np[3], np.asarray(options, dtype=np.int64)


def attribute_history(
    model: NeuralChoiceModel,
    episodes: ChoiceEpisodes,
    subject: int,
    trial: int,
    *,
    option: int | None = None,
    level: int = 0,
    window: int | None = None,
    n_steps: int = 64,
) -> HistoryAttribution:
    """Attributions of ``log P(option)`` (default: the network's most likely option) of
    choice ``level`` on ``trial`` (0-based) of subject row ``subject`` to the earlier trials
    (the last ``window`` of them, default all)."""
    if not 0 <= subject < episodes.n_subjects:
        raise ConfigError(f"subject must lie in [0, {episodes.n_subjects}), got {subject}")
    attr, f, f0, delta, options = _integrate(
        model,
        episodes,
        np.array([subject]),
        np.array([trial]),
        None if option is None else np.array([option]),
        level=level,
        window=window,
        n_steps=n_steps,
    )
    rows = attr[0, 1 : trial + 1]  # row j + 1 is trial j
    parts = model.tensors(episodes.select([subject]))[0].parts
    return HistoryAttribution(
        subject=subject,
        trial=trial,
        level=level,
        option=int(options[0]),
        log_prob=float(f[0]),
        baseline_log_prob=float(f0[0]),
        rows=rows,
        parts=MappingProxyType({name: rows[:, cols].sum(axis=1) for name, cols in parts.items()}),
        delta=float(delta[0]),
    )


def lag_profile(
    model: NeuralChoiceModel,
    episodes: ChoiceEpisodes,
    *,
    lags: int = 10,
    targets_per_subject: int = 10,
    n_steps: int = 32,
    batch: int = 64,
    seed: int = 0,
) -> LagProfile:
    """Mean |attribution| of the trials 1 .. ``lags`` back, per part, over
    ``targets_per_subject`` seeded random trials of every subject (trials with at least
    ``lags`` earlier ones; the option explained is the network's most likely), each
    attributed over its last ``lags`` trials (the earlier ones kept)."""
    draw = rng(seed, "lag-profile")
    subjects, trials = [], []
    for row, n in enumerate(episodes.n_trials):
        candidates = np.arange(lags, int(n))
        if len(candidates):
            k = min(targets_per_subject, len(candidates))
            trials.append(np.sort(draw.choice(candidates, size=k, replace=False)))
            subjects.append(np.full(k, row))
    if not subjects:
        raise ConfigError(f"no subject has more than {lags} trials")
    all_s, all_t = np.concatenate(subjects), np.concatenate(trials)
    parts = model.tensors(episodes.select([0]))[0].parts
    sums = {name: np.zeros(lags) for name in (*parts, "total")}
    worst = 0.0
    for lo in range(0, len(all_s), batch):
        who, t = all_s[lo : lo + batch], all_t[lo : lo + batch]
        attr, _, _, delta, _ = _integrate(
            model, episodes, who, t, None, level=0, window=lags, n_steps=n_steps
        )
        # lag k of target t is row t - k + 1
        rows = t[:, None] - np.arange(1, lags + 1)[None, :] + 1  # (N, lags)
        picked = np.take_along_axis(attr, rows[:, :, None], axis=1)  # (N, lags, F)
        for name, cols in parts.items():
            sums[name] += np.abs(picked[:, :, cols].sum(axis=2)).sum(axis=0)
        sums["total"] += np.abs(picked.sum(axis=2)).sum(axis=0)
        worst = max(worst, float(np.abs(delta).max()))
    n = len(all_s)
    return LagProfile(
        lags=np.arange(1, lags + 1, dtype=np.int64),
        parts=MappingProxyType({name: total / n for name, total in sums.items()}),
        n_targets=n,
        max_abs_delta=worst,
    )
