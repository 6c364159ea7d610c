"""The percentile bootstrap every stage uses, and the printed form of its estimates.

One resampling scheme serves every interval of Noetik: a resample draws the N units (sessions,
users, episodes, decisions) with replacement from a seeded ``numpy`` generator
(:func:`resample_indices`); most statistics only need how often each unit was drawn
(:func:`resample_counts`), so a mean over a resample is ``counts @ values / N`` and a resample
of a cluster (a user's rows) is a resample of the per-cluster sums. :func:`replicates` applies
a statistic to blocks of resample counts, :func:`percentile_interval` turns the replicates into
an interval, and :func:`bootstrap_means` does both for NaN-aware means (or a ratio of means) of
several columns at once, all from the same resamples.

:class:`Estimate` holds a mean and its interval; :func:`format_estimate` prints them with as
many decimals as the interval's width needs, so the printed mean never lies outside the
printed interval (``0.00750 [0.00750, 0.00750]``, not ``0.007 [0.008, 0.008]``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from noetik.errors import ConfigError

__all__ = [
    "DEFAULT_BLOCK",
    "Estimate",
    "bootstrap_means",
    "check_bootstrap",
    "format_estimate",
    "mean_replicates",
    "nan_means",
    "percentile_interval",
    "replicates",
    "resample_counts",
    "resample_indices",
]

#: Resamples drawn per block by :func:`replicates` (bounds the (block, N) counts in memory).
DEFAULT_BLOCK = 128

#: Most decimals :func:`format_estimate` prints.
_MAX_DECIMALS = 12


@dataclass(frozen=True)
class Estimate:
    """A mean with its bootstrap (percentile) interval."""

    mean: float
    """Point estimate on all the data (NaN when undefined)."""
    low: float
    """Lower end of the interval (NaN when no resample was defined)."""
    high: float
    """Upper end of the interval (NaN when no resample was defined)."""

    def as_dict(self) -> dict[str, float]:
        """``{"mean", "low", "high"}``, as the leaderboard JSON stores an estimate."""
        return {"mean": self.mean, "low": self.low, "high": self.high}

    def format(self, digits: int = 2) -> str:
        """``"mean [low, high]"`` by :func:`format_estimate`."""
        return format_estimate(self.mean, self.low, self.high, digits)


def format_estimate(mean: float, low: float, high: float, digits: int = 2) -> str:
    """``"mean [low, high]"`` with the same decimals for all three.

    The decimals show ``digits`` significant digits of the interval's width (of the mean's
    magnitude, plus one, when the interval has no width); ``low`` is rounded down and ``high``
    up, so whenever ``low <= mean <= high`` the printed numbers keep that order:
    ``format_estimate(0.0075, 0.0075, 0.0075)`` is ``"0.00750 [0.00750, 0.00750]"``.
    Non-finite values print as ``nan`` / ``inf``.
    """
    if digits < 1:
        raise ConfigError(f"digits must be >= 1, got {digits}")
    values = (float(mean), float(low), float(high))
    m, lo, hi = (_decimal(v) for v in values)
    if lo is not None and hi is not None and hi > lo:
        decimals = digits - 1 - (hi - lo).adjusted()
    else:
        scale = max((abs(d) for d in (m, lo, hi) if d is not None and d != 0), default=None)
        decimals = digits + 1 if scale is None else digits - scale.adjusted()
    decimals = min(max(decimals, 0), _MAX_DECIMALS)
    unit = Decimal(1).scaleb(-decimals)
    if lo is not None:
        lo = (lo / unit).to_integral_value(rounding="ROUND_FLOOR") * unit
    if hi is not None:
        hi = (hi / unit).to_integral_value(rounding="ROUND_CEILING") * unit
    if m is not None:
        m = m.quantize(unit, rounding="ROUND_HALF_EVEN")
        if lo is not None and values[1] <= values[0]:
            lo = min(lo, m)
        if hi is not None and values[0] <= values[2]:
            hi = max(hi, m)
    printed = zip(values, (m, lo, hi), strict=True)
    text = [str(v) if d is None else f"{d:.{decimals}f}" for v, d in printed]
    return f"{text[0]} [{text[1]}, {text[2]}]"


def _decimal(value: float) -> Decimal | None:
    """``value`` as the Decimal of its shortest repr (``0.0075``, not the binary
    ``0.00749999...``; the order of floats is kept); None when not finite."""
    return Decimal(repr(value)) if math.isfinite(value) else None


def check_bootstrap(n_boot: int, level: float, *, min_boot: int = 1) -> None:
    """Raise ConfigError unless ``n_boot >= min_boot`` and ``0 < level < 1``."""
    if n_boot < min_boot:
        raise ConfigError(f"n_boot must be >= {min_boot}, got {n_boot}")
    if not 0.0 < level < 1.0:
        raise ConfigError(f"the confidence level must be in (0, 1), got {level}")


def _generator(seed: int | np.random.Generator | tuple[int, ...]) -> np.random.Generator:
    """``seed`` itself when it is a generator, else ``numpy.random.default_rng(seed)``."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def resample_indices(rng: np.random.Generator, n_boot: int, n: int) -> np.ndarray:
    """(n_boot, n) draws of ``n`` units with replacement (int32 when ``n_boot * n < 2**31``,
    faster to draw and count; else int64), one row per resample."""
    small = n_boot * n < 2**31
    out: np.ndarray = rng.integers(0, n, size=(n_boot, n), dtype=np.int32 if small else np.int64)
    return out


def resample_counts(rng: np.random.Generator, n_boot: int, n: int) -> np.ndarray:
    """(n_boot, n) float64: how often each of ``n`` units is drawn in each resample (the
    :func:`resample_indices` of the same generator, counted)."""
    draws = resample_indices(rng, n_boot, n)
    draws += (np.arange(n_boot) * n).astype(draws.dtype)[:, None]
    return np.bincount(draws.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)


def replicates(
    statistic: Callable[[np.ndarray], np.ndarray],
    n_units: int,
    *,
    n_boot: int,
    seed: int | np.random.Generator | tuple[int, ...] = 0,
    block: int = DEFAULT_BLOCK,
) -> np.ndarray:
    """(n_boot, ...) values of ``statistic`` on ``n_boot`` resamples of ``n_units`` units.

    ``statistic`` maps the counts (b, n_units) float64 of a block of ``b`` resamples
    (:func:`resample_counts`, drawn in blocks of ``block`` from one generator seeded by
    ``seed``) to (b, ...) values; same seed -> same replicates.
    """
    if n_units < 1:
        raise ConfigError(f"the bootstrap needs at least one unit, got n_units={n_units}")
    if n_boot < 1:
        raise ConfigError(f"n_boot must be >= 1, got {n_boot}")
    rng = _generator(seed)
    parts = [
        np.asarray(statistic(resample_counts(rng, min(block, n_boot - start), n_units)))
        for start in range(0, n_boot, block)
    ]
    return np.concatenate(parts)


def percentile_interval(
    values: np.ndarray, level: float = 0.95, *, outward: bool = False
) -> tuple[float, float]:
    """The ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of the (B,) replicate
    ``values``, NaN replicates (statistic undefined) left out; ``(nan, nan)`` if none is left.

    ``outward``: no interpolation, the replicate at or just outside each quantile (so infinite
    replicates, e.g. a lift over a zero rate, keep the interval valid); else linear.
    """
    check_bootstrap(1, level)
    reps = np.asarray(values, dtype=np.float64)
    reps = reps[~np.isnan(reps)]
    if not len(reps):
        return float("nan"), float("nan")
    tail = (1.0 - level) / 2.0
    if outward:
        low = np.quantile(reps, tail, method="lower")
        high = np.quantile(reps, 1.0 - tail, method="higher")
    else:
        low, high = np.quantile(reps, [tail, 1.0 - tail])
    return float(low), float(high)


def nan_means(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(means (M,), defined (N, M) bool)`` of the columns of ``values`` (N, M) float64 over
    their finite entries (NaN for a column without one)."""
    defined = np.isfinite(values)
    counted = defined.sum(axis=0)
    sums = np.where(defined, values, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(counted > 0, sums / np.maximum(counted, 1), np.nan)
    return means, defined


def mean_replicates(values: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The statistic ``counts (b, N) -> (b, M)`` of the NaN-aware column means of ``values``
    (N, M) float64 over each resample's drawn rows (NaN where a resample drew no defined row).

    Computed as the mean plus the resampled mean deviation from it, so a constant column
    resamples exactly to its value.
    """
    means, defined = nan_means(values)
    centre = np.where(np.isnan(means), 0.0, means)
    deviations = np.where(defined, values - centre, 0.0)
    weights = defined.astype(np.float64)

    def statistic(counts: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            out: np.ndarray = centre + (counts @ deviations) / (counts @ weights)
        return out

    return statistic


def bootstrap_means(
    values: Mapping[str, np.ndarray],
    den: Mapping[str, np.ndarray] | None = None,
    *,
    n_boot: int = 2_000,
    level: float = 0.95,
    seed: int | np.random.Generator | tuple[int, ...] = 0,
) -> dict[str, Estimate]:
    """``{name: Estimate}``: the NaN-aware mean of each (N,) column of ``values`` and its
    percentile interval over resamples of the N rows (one set of resamples for all columns).

    With ``den`` (the same names, (N,) each) each estimate is the ratio of means
    ``mean(values[name]) / mean(den[name])`` (each mean over its finite entries), resampled
    as a ratio (a replicate whose ratio is 0 / 0 is left out of the interval).
    """
    check_bootstrap(n_boot, level)
    names = list(values)
    columns = [np.asarray(values[k], dtype=np.float64) for k in names]
    if den is not None:
        columns += [np.asarray(den[k], dtype=np.float64) for k in names]
    if not names or len(columns[0]) < 1:
        raise ConfigError("bootstrap_means: no rows to summarise")
    table = np.column_stack(columns)
    means = nan_means(table)[0]
    reps = replicates(mean_replicates(table), len(table), n_boot=n_boot, seed=seed)
    m = len(names)
    if den is not None:
        with np.errstate(invalid="ignore", divide="ignore"):
            means = means[:m] / means[m:]
            reps = reps[:, :m] / reps[:, m:]
    out: dict[str, Estimate] = {}
    for j, name in enumerate(names):
        out[name] = Estimate(float(means[j]), *percentile_interval(reps[:, j], level))
    return out
