"""The part every neural network of choice shares: per-level output heads and the
log-probabilities of observed choices.

A :class:`ChoiceNet` maps (B, T + 1, F) input rows (:mod:`~noetik.agents.choice_nets.inputs`)
to (B, T + 1, H) features, row ``t`` depending only on rows ``0 .. t`` (trials before trial
``t``). Choice level ``l`` then has a linear head over the features and the one-hot of the
predicted trial's earlier-level choices (``current``'s first ``sum(n_options[:l])`` columns),
giving logits of all ``n_options[l]`` options of the level; the options of the state the trial
reached (``state * k .. state * k + k - 1``, ``k`` options per state) are softmaxed among
themselves, as the cognitive models do.
"""

from __future__ import annotations

from abc import abstractmethod

import torch
from torch import Tensor, nn

from noetik.data.choices import TaskDesign

__all__ = ["ChoiceNet", "observed_log_probs", "state_logits"]


class ChoiceNet(nn.Module):
    """Base class: ``features`` (subclasses) + one linear head per choice level."""

    def __init__(self, design: TaskDesign, hidden: int) -> None:
        super().__init__()
        self.design = design
        self.heads = nn.ModuleList(
            nn.Linear(hidden + sum(design.n_options[:level]), n)
            for level, n in enumerate(design.n_options)
        )

    @abstractmethod
    def features(self, rows: Tensor) -> Tensor:
        """(B, T + 1, H) float32 features of (B, T + 1, F) rows; row t sees rows <= t only."""

    def level_logits(self, features: Tensor, current: Tensor, level: int) -> Tensor:
        """(B, T + 1, n_options[level]) logits of choice ``level`` from (B, T + 1, H)
        ``features`` and (B, T + 1, C) ``current``."""
        width = sum(self.design.n_options[:level])
        head_in = torch.cat([features, current[..., :width]], dim=-1) if width else features
        out: Tensor = self.heads[level](head_in)
        return out

    def forward(self, rows: Tensor, current: Tensor) -> list[Tensor]:
        """Per level, the (B, T + 1, n_options[level]) logits."""
        h = self.features(rows)
        return [self.level_logits(h, current, lv) for lv in range(self.design.n_levels)]


def state_logits(logits: Tensor, choices: Tensor, design: TaskDesign, level: int) -> Tensor:
    """(B, T, k) logits of the options of the state each trial reached at ``level``, from
    (B, T, n_options[level]) ``logits`` and (B, T) int64 full option indices ``choices``."""
    k = design.options_per_state(level)
    if k == design.n_options[level]:
        return logits
    start = (choices // k) * k
    index = start.unsqueeze(-1) + torch.arange(k, device=choices.device)
    return logits.gather(-1, index)


def observed_log_probs(
    net: ChoiceNet, rows: Tensor, current: Tensor, choices: Tensor
) -> tuple[Tensor, list[Tensor]]:
    """``(log_p (B, T, L), logits)``: log-probability of each observed choice (float32; the
    values in padding trials are meaningless) and, per level, the (B, T, k) state logits, from
    (B, T + 1, F) ``rows``, (B, T + 1, C) ``current`` and (B, T, L) int64 ``choices``."""
    design = net.design
    t = choices.shape[1]
    h = net.features(rows)[:, :t]
    cur = current[:, :t]
    out, per_level = [], []
    for level in range(design.n_levels):
        k = design.options_per_state(level)
        logits = state_logits(net.level_logits(h, cur, level), choices[..., level], design, level)
        option = (choices[..., level] % k).unsqueeze(-1)
        out.append(torch.log_softmax(logits, dim=-1).gather(-1, option).squeeze(-1))
        per_level.append(logits)
    return torch.stack(out, dim=-1), per_level
