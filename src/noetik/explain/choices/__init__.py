"""Explanations of people's choices by the neural models of choice."""

from __future__ import annotations

from noetik.explain.choices.attributions import (
    HistoryAttribution,
    LagProfile,
    attribute_history,
    lag_profile,
)

__all__ = ["HistoryAttribution", "LagProfile", "attribute_history", "lag_profile"]
