"""The one bootstrap (noetik.utils.bootstrap): resamples, intervals, means, printed form."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from noetik.errors import ConfigError
from noetik.utils.bootstrap import (
    Estimate,
    bootstrap_means,
    format_estimate,
    percentile_interval,
    replicates,
    resample_counts,
    resample_indices,
)


def _printed(text: str) -> tuple[Decimal, Decimal, Decimal]:
    mean, rest = text.split(" [")
    low, high = rest.rstrip("]").split(", ")
    return Decimal(mean), Decimal(low), Decimal(high)


def test_counts_count_the_drawn_indices() -> None:
    idx = resample_indices(np.random.default_rng(4), 6, 9)
    counts = resample_counts(np.random.default_rng(4), 6, 9)
    assert counts.shape == (6, 9) and counts.dtype == np.float64
    for b in range(6):
        np.testing.assert_array_equal(counts[b], np.bincount(idx[b], minlength=9))
    assert (counts.sum(axis=1) == 9).all()


def test_replicates_are_seeded_and_blocks_see_every_resample() -> None:
    values = np.arange(10, dtype=float)

    def mean(counts: np.ndarray) -> np.ndarray:
        return counts @ values / 10

    reps = replicates(mean, 10, n_boot=300, seed=2, block=64)
    assert reps.shape == (300,)
    np.testing.assert_array_equal(reps, replicates(mean, 10, n_boot=300, seed=2, block=64))
    assert not np.array_equal(reps, replicates(mean, 10, n_boot=300, seed=3, block=64))
    assert abs(reps.mean() - 4.5) < 0.2
    with pytest.raises(ConfigError, match="n_boot"):
        replicates(mean, 10, n_boot=0)


def test_percentile_interval_skips_undefined_replicates() -> None:
    reps = np.r_[np.arange(101, dtype=float), np.nan]
    assert percentile_interval(reps, 0.9) == pytest.approx((5.0, 95.0))
    assert percentile_interval(np.array([0.0, 1.0, 2.0, np.inf]), 0.5, outward=True) == (
        0.0,
        np.inf,
    )
    low, high = percentile_interval(np.full(3, np.nan))
    assert np.isnan(low) and np.isnan(high)
    with pytest.raises(ConfigError, match="level"):
        percentile_interval(reps, 1.5)


def test_means_and_ratios_of_several_columns() -> None:
    x = np.random.default_rng(0).normal(2.0, 1.0, size=500)
    out = bootstrap_means({"x": x, "c": np.full(500, 3.0)}, n_boot=1000, seed=1)
    assert out["c"] == Estimate(3.0, 3.0, 3.0)
    half = 1.96 * x.std() / np.sqrt(500)
    assert out["x"].mean == pytest.approx(x.mean())
    assert out["x"].low == pytest.approx(x.mean() - half, abs=0.02)
    assert out["x"].high == pytest.approx(x.mean() + half, abs=0.02)
    ratio = bootstrap_means({"r": np.full(5, 2.0)}, {"r": np.full(5, 4.0)}, n_boot=50)
    assert ratio["r"] == Estimate(0.5, 0.5, 0.5)
    assert out["x"].as_dict() == {"mean": out["x"].mean, "low": out["x"].low, "high": out["x"].high}
    with pytest.raises(ConfigError, match="no rows"):
        bootstrap_means({"x": np.zeros(0)})


def test_format_keeps_the_mean_inside_its_interval() -> None:
    # the defect: coverage 0.0075 printed as "0.007 [0.008, 0.008]"
    assert Estimate(0.0075, 0.0075, 0.0075).format() == "0.00750 [0.00750, 0.00750]"
    assert format_estimate(0.0075, 0.00751, 0.00752) == "0.007500 [0.007510, 0.007520]"
    assert format_estimate(0.00751, 0.0075, 0.00752) == "0.007510 [0.007500, 0.007520]"
    assert format_estimate(0.0075, 0.0071, 0.0078) == "0.00750 [0.00710, 0.00780]"
    assert format_estimate(1.938, 1.901, 1.975) == "1.938 [1.901, 1.975]"
    assert format_estimate(0.0, 0.0, 0.0) == "0.000 [0.000, 0.000]"
    assert format_estimate(float("nan"), float("nan"), float("nan")) == "nan [nan, nan]"
    assert format_estimate(1234.0, 1100.0, 1400.0) == "1234 [1100, 1400]"
    with pytest.raises(ConfigError, match="digits"):
        format_estimate(1.0, 0.0, 2.0, digits=0)


@pytest.mark.parametrize("digits", [1, 2, 3])
def test_format_property_printed_low_le_mean_le_high(digits: int) -> None:
    rng = np.random.default_rng(digits)
    scale = 10.0 ** rng.integers(-6, 5, size=3000)
    a, b, c = np.sort(rng.random((3, 3000)) * scale, axis=0)
    a[::7] = b[::7]  # the mean at an end of the interval
    c[::11] = b[::11]
    a[::13] = c[::13] = b[::13]  # no width at all
    for low, mean, high in zip(a, b, c, strict=True):
        p_mean, p_low, p_high = _printed(format_estimate(mean, low, high, digits))
        assert p_low <= p_mean <= p_high, (low, mean, high)
        assert (
            p_low <= Decimal(repr(float(low))) and Decimal(repr(float(high))) <= p_high
        )  # outward rounding
