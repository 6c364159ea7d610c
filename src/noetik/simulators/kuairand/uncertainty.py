"""What ``noetik/KuaiRand-v0`` reads from the ensemble: the answer, its spread, the reward's doubt.

Given the K members' predictions ``p`` (K, B, 9) of one step (one batched call per member,
:meth:`FittedSimulator.predict_members_torch`), :func:`ensemble_answer` returns

* the predictions the signals are drawn from: the base model's (``ensemble="off"``), the
  members' mean (``"mean"``) or each user's own member (``"sample"``);
* the spread of each head over the members (population std, ``ddof = 0``);
* ``sigma`` (B,), the std over members of the expected reward ``sum_j w_j p_kj`` with ``w``
  the reward's weights on the heads (:meth:`RewardConfig.weights_for`): the uncertainty the
  MOPO penalty ``r - kappa * sigma`` subtracts (Yu et al. 2020).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from noetik.data.rewards import RewardConfig
from noetik.simulators.kuairand.env_config import EnsembleMode
from noetik.simulators.kuairand.examples import HEADS


@dataclass(frozen=True, eq=False)
class EnsembleAnswer:
    """One step's predictions with their uncertainty, for B users."""

    predicted: np.ndarray
    """(B, 9) float32 the predictions the signals are drawn from."""
    pred_std: np.ndarray
    """(B, 9) float32 std over the members of each head."""
    reward_sigma: np.ndarray
    """(B,) float64 std over the members of the expected reward."""


def head_weights(reward: RewardConfig, device: torch.device) -> torch.Tensor:
    """(9,) float64 tensor: the reward's weight on each head (0 for heads it ignores)."""
    return torch.as_tensor(reward.weights_for(HEADS), dtype=torch.float64, device=device)


def ensemble_answer(
    members: torch.Tensor,
    base: torch.Tensor | None,
    mode: EnsembleMode,
    member: torch.Tensor,
    weights: torch.Tensor,
) -> EnsembleAnswer:
    """Summarise ``members`` (K, B, 9) float32 predictions. ``base`` (B, 9) float32: the base
    model's (needed for ``mode="off"`` only); ``member`` (B,) int64: each user's member
    (``mode="sample"``); ``weights`` (9,) float64 from :func:`head_weights`."""
    if mode == "mean":
        predicted = members.mean(dim=0)
    elif mode == "sample":
        predicted = members[member, torch.arange(members.shape[1], device=members.device)]
    elif base is not None:
        predicted = base
    else:
        raise ValueError("ensemble_answer: mode 'off' needs the base model's predictions")
    expected = members.double() @ weights  # (K, B)
    return EnsembleAnswer(
        predicted=predicted.cpu().numpy(),
        pred_std=members.std(dim=0, correction=0).cpu().numpy(),
        reward_sigma=expected.std(dim=0, correction=0).cpu().numpy(),
    )
