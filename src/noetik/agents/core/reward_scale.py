"""Reward scaling shared by the offline value-based agents (DQN, CQL; IQL's same option).

Rewards are multiplied by a constant ``c`` computed from the training log, never shifted (a
shift would change the optimal policy whenever episodes end at different lengths):

* ``"none"``: ``c = 1``.
* ``"std"``: ``c = 1 / std(r)``, the population standard deviation over all logged rows.
* ``"return_range"``: ``c = 1000 / (max_e R_e - min_e R_e)`` with ``R_e`` the undiscounted
  return of episode ``e`` (IQL's normalisation for locomotion, Kostrikov et al. 2022).

A degenerate statistic (zero spread, or an empty log) gives ``c = 1``. :class:`RewardScale`
keeps ``c`` as a buffer, fitted by the agent's ``make_source`` on its first training log, so
checkpoints hold it and a loaded agent keeps the units it was trained in. Agents learn Q in
scaled units and report ``scores`` in raw reward units (divided by ``c``).
"""

from __future__ import annotations

from typing import Literal, get_args

import torch
from torch import Tensor, nn

from noetik.data.ondisk import DiskTransitions
from noetik.data.transitions import Transitions
from noetik.errors import ConfigError

__all__ = ["RewardScale", "RewardScaleMode", "check_reward_scale_mode", "reward_scale"]

RewardScaleMode = Literal["none", "std", "return_range"]
"""How rewards are scaled before the Bellman backup."""


def check_reward_scale_mode(mode: str) -> None:
    """Raise :class:`ConfigError` unless ``mode`` is a :data:`RewardScaleMode`."""
    if mode not in get_args(RewardScaleMode):
        raise ConfigError(
            f"reward_scale_mode must be one of {get_args(RewardScaleMode)}, got {mode!r}"
        )


def reward_scale(t: Transitions | DiskTransitions, mode: RewardScaleMode) -> float:
    """The constant ``c`` of ``r' = c * r`` for the log ``t`` (see the module docstring)."""
    check_reward_scale_mode(mode)
    stats = t.stats
    if mode == "none" or stats.rows == 0:
        return 1.0
    if mode == "std":
        spread = stats.reward_std
        return 1.0 / spread if spread > 0 else 1.0
    spread = stats.return_max - stats.return_min
    return 1000.0 / spread if spread > 0 else 1.0


class RewardScale(nn.Module):
    """``forward(r (B,) float32) -> c * r (B,) float32``, with ``c`` a checkpointed buffer."""

    scale: Tensor
    """() float32, the multiplier ``c`` (1 until fitted)."""
    fitted: Tensor
    """() bool, true once :meth:`fit` has set ``scale`` (it is then kept)."""

    def __init__(self, mode: RewardScaleMode = "std") -> None:
        super().__init__()
        check_reward_scale_mode(mode)
        self.mode = mode
        self.register_buffer("scale", torch.ones((), dtype=torch.float32))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def fit(self, transitions: Transitions | DiskTransitions, refit: bool = False) -> None:
        """Set ``c`` from ``transitions``; a no-op when already fitted (a loaded or resumed
        agent keeps its training scale) unless ``refit``. One host sync, not per step."""
        if bool(self.fitted) and not refit:
            return
        self.scale.fill_(reward_scale(transitions, self.mode))
        self.fitted.fill_(True)

    def forward(self, reward: Tensor) -> Tensor:
        return reward * self.scale

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"
