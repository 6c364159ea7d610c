"""Calibration of the ensemble's sigma against the TRUE error (synthetic data)."""

from __future__ import annotations

import numpy as np
import pytest

from noetik.errors import ConfigError
from noetik.simulators.kuairand.calibration import (
    CalibrationConfig,
    correlations,
    exposure_bin,
    exposure_labels,
    sigma_quantile_bins,
    spearman,
    weighted_pearson,
    weighted_spearman,
)

CONFIG = CalibrationConfig(n_boot=200, seed=0)


# ------------------------------------------------------------------------------------------
# Known answers on hand-made arrays
# ------------------------------------------------------------------------------------------


def test_spearman_and_pearson_known_answers() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert spearman(x, x**3) == pytest.approx(1.0)
    assert spearman(x, -np.exp(x)) == pytest.approx(-1.0)
    # ties take mid-ranks: ranks (1.5, 1.5, 3, 4) against (1, 2, 3, 4) -> 3 / sqrt(10)
    assert spearman(np.array([1.0, 1.0, 2.0, 3.0]), x) == pytest.approx(3 / np.sqrt(10))
    assert np.isnan(spearman(np.ones(4), x))
    # a weighted sample is the sample that repeats each row that many times
    y = np.array([0.3, 0.1, 0.2, 0.9])
    weights = np.array([[2.0, 0.0, 1.0, 1.0], [1.0, 3.0, 1.0, 2.0]])
    for w, got in zip(weights, weighted_spearman(x, y, weights), strict=True):
        rx, ry = np.repeat(x, w.astype(int)), np.repeat(y, w.astype(int))
        assert got == pytest.approx(spearman(rx, ry))
    for w, got in zip(weights, weighted_pearson(x, y, weights), strict=True):
        rx, ry = np.repeat(x, w.astype(int)), np.repeat(y, w.astype(int))
        assert got == pytest.approx(np.corrcoef(rx, ry)[0, 1])


def test_bins_known_answers() -> None:
    sigma = np.arange(100) / 100.0
    error = -2.0 * sigma  # signed: mean |error| and RMSE use its size only
    rows = sigma_quantile_bins(sigma, error, 10)
    assert [r.n for r in rows] == [10] * 10
    first, last = rows[0], rows[-1]
    assert first.mean_sigma == pytest.approx(0.045) and first.mean_abs_error == pytest.approx(0.09)
    assert first.rmse == pytest.approx(np.sqrt(np.mean((2 * np.arange(10) / 100) ** 2)))
    assert last.mean_sigma == pytest.approx(0.945) and first.spearman == pytest.approx(1.0)
    assert first.label == "0-0.09"
    assert exposure_labels((1, 3, 11, 101)) == ("0", "1-2", "3-10", "11-100", ">100")
    assert exposure_labels((2,)) == ("0-1", ">1")
    exposures = np.array([0, 1, 2, 3, 10, 11, 100, 101, 5000])
    np.testing.assert_array_equal(
        exposure_bin(exposures, (1, 3, 11, 101)), [0, 1, 1, 2, 2, 3, 3, 4, 4]
    )


def test_correlation_intervals_over_clusters() -> None:
    gen = np.random.default_rng(0)
    sigma = gen.random(300)
    users = np.repeat(np.arange(30), 10)
    exact = correlations(sigma, 3 * sigma**2, users, n_boot=100, level=0.9, seed=0)
    assert exact["spearman"].mean == exact["spearman"].low == pytest.approx(1.0)
    noisy = sigma + gen.normal(0, 0.3, 300)
    est = correlations(sigma, noisy, users, n_boot=300, level=0.9, seed=0)
    assert 0.4 < est["pearson"].low < est["pearson"].mean < est["pearson"].high < 1.0
    assert est == correlations(sigma, noisy, users, n_boot=300, level=0.9, seed=0)
    assert est != correlations(sigma, noisy, users, n_boot=300, level=0.9, seed=1)
    unrelated = correlations(sigma, gen.random(300), users, n_boot=300, level=0.9, seed=0)
    assert unrelated["spearman"].low < 0 < unrelated["spearman"].high


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("head", "like"),
        ("uniform_per_context", -1),
        ("sigma_bins", 1),
        ("n_boot", 5),
        ("seed", -1),
        ("exposure_edges", (3, 1)),
        ("exposure_edges", (0, 2)),
        ("exposure_edges", ()),
        ("level", 1.0),
    ],
)
def test_config_errors_are_one_line(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"calibration: {field}") as err:
        CalibrationConfig(**{field: value})  # type: ignore[arg-type]
    assert "\n" not in str(err.value)
