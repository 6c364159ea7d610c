"""Batch-first recommender simulators composed of swappable parts (see ``core``)."""

from __future__ import annotations

from noetik.simulators.core import (
    ChoiceModel,
    ItemModel,
    Items,
    Observer,
    Reporter,
    RewardFunction,
    Simulator,
    StepResult,
    Termination,
    UserModel,
    Users,
    UserSampler,
)

__all__ = [
    "ChoiceModel",
    "ItemModel",
    "Items",
    "Observer",
    "Reporter",
    "RewardFunction",
    "Simulator",
    "StepResult",
    "Termination",
    "UserModel",
    "UserSampler",
    "Users",
]
