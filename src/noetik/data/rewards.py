"""The 12 feedback signals of a KuaiRand interaction and the scalar reward built from them.

Every part of Noetik (transitions, agents, evaluation, explanations) speaks about feedback in
terms of :data:`SIGNALS`, in this order:

========================  ==========================================================  ========
signal                    definition (from an interactions frame)                      range
========================  ==========================================================  ========
``is_click``              ``is_click``                                                 {0, 1}
``is_like``               ``is_like``                                                  {0, 1}
``is_follow``             ``is_follow``                                                {0, 1}
``is_comment``            ``is_comment``                                               {0, 1}
``is_forward``            ``is_forward``                                               {0, 1}
``is_hate``               ``is_hate``                                                  {0, 1}
``long_view``             ``long_view``                                                {0, 1}
``is_profile_enter``      ``is_profile_enter``                                         {0, 1}
``watch_ratio``           clipped watch ratio; **0 when unknown** (duration unknown)   [0, 1]
``play_time_s``           ``play_time_ms / 1000``                                      >= 0
``profile_stay_s``        ``profile_stay_time / 1000`` (the column is in ms)           >= 0
``comment_stay_s``        ``comment_stay_time / 1000`` (the column is in ms)           >= 0
========================  ==========================================================  ========

``watch_ratio`` is null in :meth:`KuaiRandDataset.interactions` when neither the log nor the
video features give a positive duration (1.6 % of real standard rows); as a signal it counts as
0 (nothing known to have been watched), so rewards are always finite.

The reward is a weighted sum of signals, configured by :class:`RewardConfig`; the default is
:data:`DEFAULT_REWARD_WEIGHTS`, ``0.5 * is_click + 0.5 * watch_ratio``. This module is the one
place the sum is written: :func:`reward_from_signals` (numpy: a signals array or
``{signal: column}``, e.g. the simulator's), :func:`reward_expr` (polars) and
:meth:`RewardConfig.weights_for` (the weights of any list of signals, e.g. model heads).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from noetik.data.schema import BINARY_SIGNALS
from noetik.errors import ConfigError

#: The feedback signals, in the column order of every ``signals`` array (N, 12).
SIGNALS: tuple[str, ...] = (
    *BINARY_SIGNALS,  # is_click ... long_view, is_profile_enter, as in the log schema
    "watch_ratio",
    "play_time_s",
    "profile_stay_s",
    "comment_stay_s",
)

N_SIGNALS = len(SIGNALS)

#: The default reward, ``0.5 * is_click + 0.5 * watch_ratio``, as ``(signal, weight)`` pairs.
DEFAULT_REWARD_WEIGHTS: tuple[tuple[str, float], ...] = (("is_click", 0.5), ("watch_ratio", 0.5))

#: Raw log columns the signals are computed from.
SIGNAL_SOURCE_COLUMNS: tuple[str, ...] = (
    *SIGNALS[:8],
    "watch_ratio",
    "play_time_ms",
    "profile_stay_time",
    "comment_stay_time",
)

_MS_SIGNALS: dict[str, str] = {
    "play_time_s": "play_time_ms",
    "profile_stay_s": "profile_stay_time",
    "comment_stay_s": "comment_stay_time",
}


def signal_expr(name: str) -> pl.Expr:
    """Float32 expression computing signal ``name`` from an interactions frame (aliased ``name``).

    Raises ConfigError for a name that is not in :data:`SIGNALS`.
    """
    if name not in SIGNALS:
        raise ConfigError(f"unknown reward signal '{name}' (known: {', '.join(SIGNALS)})")
    if name == "watch_ratio":
        expr = pl.col("watch_ratio").fill_null(0.0).fill_nan(0.0)
    elif name in _MS_SIGNALS:
        expr = pl.col(_MS_SIGNALS[name]) / 1000.0
    else:
        expr = pl.col(name)
    return expr.cast(pl.Float32).alias(name)


def signals_expr(prefix: str = "") -> list[pl.Expr]:
    """The 12 signal expressions in :data:`SIGNALS` order, aliased ``prefix + name``.

    With the default empty prefix, ``frame.with_columns(signals_expr())`` replaces the raw
    binary columns and ``watch_ratio`` by their Float32 signal versions (nulls filled with 0).
    """
    return [signal_expr(name).alias(prefix + name) for name in SIGNALS]


def _normalise(weights: object) -> tuple[tuple[str, float], ...]:
    if isinstance(weights, Mapping):
        items: list[object] = list(weights.items())
    elif isinstance(weights, Iterable) and not isinstance(weights, str):
        items = list(weights)
    else:
        raise ConfigError(f"reward.weights: expected (signal, weight) pairs, got {weights!r}")
    out: list[tuple[str, float]] = []
    seen: set[str] = set()
    for item in items:
        if not (isinstance(item, tuple | list) and len(item) == 2):
            raise ConfigError(f"reward.weights: expected (signal, weight) pairs, got {item!r}")
        name, weight = str(item[0]), float(item[1])
        if name not in SIGNALS:
            raise ConfigError(
                f"reward.weights: unknown signal '{name}' (known: {', '.join(SIGNALS)})"
            )
        if name in seen:
            raise ConfigError(f"reward.weights: signal '{name}' given twice")
        if not math.isfinite(weight):
            raise ConfigError(f"reward.weights: weight of '{name}' is not finite ({weight})")
        seen.add(name)
        out.append((name, weight))
    if not out:
        raise ConfigError("reward.weights: at least one signal weight is required")
    return tuple(out)


@dataclass(frozen=True)
class RewardConfig:
    """A reward as a weighted sum of feedback signals.

    >>> RewardConfig()                                          # 0.5*is_click + 0.5*watch_ratio
    >>> RewardConfig((("long_view", 1.0), ("is_hate", -2.0)))
    >>> RewardConfig.from_mapping({"is_like": 1.0, "watch_ratio": 0.5})
    """

    weights: tuple[tuple[str, float], ...] = DEFAULT_REWARD_WEIGHTS
    """``(signal, weight)`` pairs; signals from :data:`SIGNALS`, each at most once, weights
    finite (negative weights penalise, e.g. ``is_hate``). A mapping is accepted too and is
    stored as pairs in its iteration order."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", _normalise(self.weights))

    @classmethod
    def from_mapping(cls, weights: Mapping[str, float]) -> RewardConfig:
        """A config from ``{signal: weight}``."""
        return cls(tuple(weights.items()))

    def as_dict(self) -> dict[str, float]:
        """The weights as ``{signal: weight}``."""
        return dict(self.weights)

    def weights_for(self, names: Sequence[str]) -> np.ndarray:
        """(len(names),) float64 weight of each of ``names`` (0 for a signal not in the
        reward); e.g. the heads of a response model, whose predictions it weighs."""
        weights = dict(self.weights)
        return np.array([weights.get(name, 0.0) for name in names], dtype=np.float64)

    def weight_vector(self) -> np.ndarray:
        """Float32 vector (12,) of weights in :data:`SIGNALS` order (0 for unused signals)."""
        return self.weights_for(SIGNALS).astype(np.float32)

    def describe(self) -> str:
        """Human-readable formula, e.g. ``0.5*is_click + 0.5*watch_ratio``."""
        terms = [f"{weight:g}*{name}" for name, weight in self.weights]
        return " + ".join(terms).replace("+ -", "- ")


def reward_expr(config: RewardConfig | None = None) -> pl.Expr:
    """Float32 expression of the reward of each interaction row (aliased ``reward``)."""
    config = config or RewardConfig()
    terms = [signal_expr(name) * weight for name, weight in config.weights]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total.cast(pl.Float32).alias("reward")


def reward_from_signals(
    signals: np.ndarray | Mapping[str, np.ndarray],
    config: RewardConfig | None = None,
    dtype: type[np.floating] = np.float32,
) -> np.ndarray:
    """Rewards (N,) of ``dtype`` (float32 by default) from the signals of N interactions: an
    array (N, 12) in :data:`SIGNALS` order, or ``{signal: (N,) column}``.

    Accumulates one used signal column at a time in float64 (no (N, 12) float64 copy).
    """
    config = config or RewardConfig()

    def column(name: str) -> np.ndarray:
        if isinstance(signals, Mapping):
            return np.asarray(signals[name], dtype=np.float64)
        return np.asarray(signals[:, SIGNALS.index(name)], dtype=np.float64)

    total = np.zeros(len(column(config.weights[0][0])), dtype=np.float64)
    for name, weight in config.weights:
        total += weight * column(name)
    return total.astype(dtype, copy=False)
