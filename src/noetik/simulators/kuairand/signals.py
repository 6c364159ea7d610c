"""Sampling the 12 feedback signals from the response model's predictions, consistently.

The model predicts, per (state, video), the probability of each binary signal and the mean
watch ratio ``m`` (:data:`HEADS`). One step's signals are drawn as follows (``rng`` is the
environment's generator):

* ``is_click``, ``is_like``, ``is_follow``, ``is_comment``, ``is_forward``, ``is_hate``,
  ``is_profile_enter``: independent Bernoulli draws with the predicted probabilities (in the
  logs these happen without a click too, e.g. in the auto-playing single-column feed).
* ``long_view``: only with a click (the logs have almost none without one): drawn with the
  conditional probability ``min(1, p_long_view / p_click)`` given a click, so its marginal
  stays ``min(p_long_view, p_click)``.
* ``watch_ratio``: ``Beta(kappa * m, kappa * (1 - m))`` (mean ``m``; ``kappa`` is the
  ``watch_ratio_concentration`` option), 0 when the video's duration is unknown (as the data
  layer defines it); ``play_time_s = watch_ratio * duration_s``.
* ``profile_stay_s``: after a profile enter, positive with the logs' rate
  ``P(profile_stay > 0 | profile enter)``, exponential with the logs' mean positive stay.
* ``comment_stay_s``: positive with a comment, else with the logs' rate given click / no click
  (users open comments without writing); exponential with the logs' mean positive stay.

The stay statistics (:class:`StayModel`) are estimated on the standard and random logs
together.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from noetik.data.rewards import N_SIGNALS, SIGNALS
from noetik.simulators.core import FloatArray
from noetik.simulators.kuairand.world import LogArrays

_I = {name: j for j, name in enumerate(SIGNALS)}
_CLICK, _LONG, _COMMENT, _PROFILE = (
    _I["is_click"],
    _I["long_view"],
    _I["is_comment"],
    _I["is_profile_enter"],
)
_N_BINARY = 8


@dataclass(frozen=True)
class StayModel:
    """Logged statistics of the stay-time signals."""

    profile_rate: float
    """``P(profile_stay_s > 0 | is_profile_enter)``."""
    profile_mean_s: float
    """Mean positive ``profile_stay_s``."""
    comment_rate_click: float
    """``P(comment_stay_s > 0 | click, no comment)``."""
    comment_rate_no_click: float
    """``P(comment_stay_s > 0 | no click, no comment)``."""
    comment_mean_s: float
    """Mean positive ``comment_stay_s``."""

    @classmethod
    def from_logs(cls, *logs: LogArrays | None) -> StayModel:
        """Estimate from the signals of ``logs`` (None entries are skipped)."""
        parts = [log.signals for log in logs if log is not None and len(log.signals)]
        sig = np.concatenate(parts).astype(np.float64) if parts else np.zeros((0, N_SIGNALS))
        profile, comment = sig[:, _I["profile_stay_s"]], sig[:, _I["comment_stay_s"]]
        entered = sig[:, _PROFILE] > 0
        plain = sig[:, _COMMENT] == 0
        click = sig[:, _CLICK] > 0
        return cls(
            profile_rate=_rate(profile[entered] > 0),
            profile_mean_s=_mean(profile[profile > 0], 10.0),
            comment_rate_click=_rate(comment[plain & click] > 0),
            comment_rate_no_click=_rate(comment[plain & ~click] > 0),
            comment_mean_s=_mean(comment[comment > 0], 10.0),
        )


def _rate(flags: np.ndarray) -> float:
    return float(flags.mean()) if len(flags) else 0.0


def _mean(values: np.ndarray, default: float) -> float:
    return float(values.mean()) if len(values) else default


def sample_signals(
    rng: np.random.Generator,
    predicted: np.ndarray,
    duration_s: FloatArray,
    kappa: float,
    stay: StayModel,
) -> FloatArray:
    """(B, 12) float64 signals from ``predicted`` (B, 9) float32 heads and ``duration_s`` (B,)
    float64 (0 = unknown). Draws, in order: (B, 10) uniforms, B betas, (B, 2) exponentials."""
    b = len(predicted)
    p = predicted.astype(np.float64)
    u = rng.random((b, _N_BINARY + 2))
    out = np.zeros((b, N_SIGNALS), dtype=np.float64)
    binary = u[:, :_N_BINARY] < p[:, :_N_BINARY]
    click = binary[:, _CLICK]
    given_click = np.minimum(1.0, p[:, _LONG] / np.maximum(p[:, _CLICK], 1e-12))
    binary[:, _LONG] = click & (u[:, _LONG] < given_click)
    out[:, :_N_BINARY] = binary
    m = np.clip(p[:, _N_BINARY], 1e-4, 1.0 - 1e-4)
    ratio = rng.beta(kappa * m, kappa * (1.0 - m))
    ratio[duration_s <= 0] = 0.0
    out[:, _I["watch_ratio"]] = ratio
    out[:, _I["play_time_s"]] = ratio * duration_s
    stays = rng.exponential(1.0, size=(b, 2))
    profile = binary[:, _PROFILE] & (u[:, _N_BINARY] < stay.profile_rate)
    out[:, _I["profile_stay_s"]] = np.where(profile, stays[:, 0] * stay.profile_mean_s, 0.0)
    rate = np.where(click, stay.comment_rate_click, stay.comment_rate_no_click)
    opened = binary[:, _COMMENT] | (u[:, _N_BINARY + 1] < rate)
    out[:, _I["comment_stay_s"]] = np.where(opened, stays[:, 1] * stay.comment_mean_s, 0.0)
    return out
