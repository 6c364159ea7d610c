"""Calibration of the ensemble's sigma against the TRUE error (synthetic data)."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from noetik.data.dataset import KuaiRandDataset, load_kuairand
from noetik.data.schema import FileKind
from noetik.data.synthetic import SynthConfig, synthesize
from noetik.errors import ConfigError
from noetik.simulators.kuairand import ResponseModelConfig, fit_response_model
from noetik.simulators.kuairand.calibration import (
    KINDS,
    CalibrationConfig,
    calibrate,
    calibration_pairs,
    correlations,
    exposure_bin,
    exposure_labels,
    format_report,
    heldout_contexts,
    sigma_quantile_bins,
    spearman,
    synthetic_world,
    training_contexts,
    weighted_pearson,
    weighted_spearman,
)
from noetik.simulators.kuairand.ensemble import EnsembleConfig
from noetik.simulators.kuairand.model import FittedSimulator

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


# ------------------------------------------------------------------------------------------
# A small synthetic dataset and a simulator with 3 members
# ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[KuaiRandDataset, FittedSimulator]:
    """600 users, 800 videos of which 300 form the random pool (the others appear in the
    standard log only, some never), a 2 x 64 simulator with 3 members (about 15 s)."""
    root = tmp_path_factory.mktemp("calib")
    synth = SynthConfig.for_release("pure", users=600, videos=800, seed=1, pool_size=300)
    synthesize(root / "data", synth)
    ds = load_kuairand(root / "data", cache_dir=root / "cache")
    model = ResponseModelConfig(hidden=64, epochs=3, fit_uncorrected=False)
    sim = fit_response_model(ds, model, device=torch.device("cpu"), ensemble=EnsembleConfig(3))
    return ds, sim


def test_sigma_ranks_the_true_error(fitted: tuple[KuaiRandDataset, FittedSimulator]) -> None:
    ds, sim = fitted
    report = calibrate(ds, sim, CONFIG)
    assert report.spearman.low > 0.05 and report.pearson.low > 0.05, format_report(report)
    # the errors grow over the sigma deciles (first vs last)
    assert report.deciles[-1].mean_abs_error > 1.3 * report.deciles[0].mean_abs_error
    assert sum(r.n for r in report.deciles) == report.n_pairs
    assert sum(r.n for r in report.by_exposure) == report.n_pairs
    assert [r.label for r in report.by_kind] == list(KINDS[:2])
    assert report.by_kind[0].n == report.by_kind[1].n == report.n_pairs // 2
    assert report.by_exposure[0].n > 0  # videos the training rows never show
    assert report.n_users == len(sim.meta["heldout_random_users"])


def test_pairs_are_the_truth_and_the_members(
    fitted: tuple[KuaiRandDataset, FittedSimulator],
) -> None:
    ds, sim = fitted
    contexts = heldout_contexts(ds, sim)
    world = synthetic_world(ds)
    pairs = calibration_pairs(world, sim, contexts, CalibrationConfig(uniform_per_context=2))
    n = len(contexts)
    assert len(pairs) == 3 * n
    np.testing.assert_array_equal(pairs.item[:n], contexts.item)
    np.testing.assert_array_equal(pairs.kind, np.repeat([0, 1, 1], n))
    assert np.all(np.isin(pairs.user_id, sim.meta["heldout_random_users"]))
    rows = np.arange(3 * n) % n
    videos = sim.vocab.decode(pairs.item)
    truth = world.click_probability(pairs.user_id, videos, contexts.hour[rows], contexts.tab[rows])
    np.testing.assert_allclose(pairs.truth, truth)
    some = np.arange(0, 3 * n, 97)
    obs = torch.as_tensor(contexts.obs[rows[some]].astype(np.float32))
    probs = sim.predict_members_torch(obs, torch.as_tensor(pairs.item[some]))[:, :, 0].double()
    np.testing.assert_allclose(pairs.mean[some], probs.mean(0).numpy(), rtol=1e-6)
    np.testing.assert_allclose(pairs.sigma[some], probs.std(0, correction=0).numpy(), atol=1e-7)
    # videos outside the random pool: training exposures = their standard-log rows
    counts = ds.scan(FileKind.LOG_STANDARD).group_by("video_id").agg(pl.len().alias("n")).collect()
    shown = dict(zip(counts["video_id"].to_list(), counts["n"].to_list(), strict=True))
    outside = videos >= 300
    expected = [shown.get(int(v), 0) for v in videos[outside]]
    np.testing.assert_array_equal(pairs.exposures[outside], expected)


def test_training_users_only_add_their_kinds(
    fitted: tuple[KuaiRandDataset, FittedSimulator],
) -> None:
    ds, sim = fitted
    plain = calibrate(ds, sim, CONFIG)
    more = calibrate(ds, sim, dataclasses.replace(CONFIG, train_users=40))
    assert [r.label for r in more.by_kind] == list(KINDS)
    assert more.by_kind[:2] == plain.by_kind and more.spearman == plain.spearman
    assert more.by_exposure == plain.by_exposure and more.n_users == plain.n_users
    assert more.by_kind[2].n == more.by_kind[3].n > 0
    contexts = training_contexts(ds, sim, 40, CONFIG.seed)
    users = np.unique(contexts.user_id)
    assert len(users) == 40 and np.all(np.isin(users, sim.meta["train_random_users"]))
    assert more.by_kind[2].n == len(contexts)


def test_deterministic_given_the_seed(fitted: tuple[KuaiRandDataset, FittedSimulator]) -> None:
    ds, sim = fitted
    first = calibrate(ds, sim, CONFIG).to_dict()
    assert calibrate(ds, sim, CONFIG).to_dict() == first
    other = calibrate(ds, sim, dataclasses.replace(CONFIG, seed=1)).to_dict()
    assert other["by_kind"][0] == first["by_kind"][0]  # the logged pairs do not depend on it
    assert other["by_kind"][1] != first["by_kind"][1]  # the uniform videos do


def test_input_errors_are_one_line(
    fitted: tuple[KuaiRandDataset, FittedSimulator], tmp_path: Path
) -> None:
    ds, sim = fitted
    bare = dataclasses.replace(sim, members=())
    no_heldout = dataclasses.replace(sim, meta={**sim.meta, "heldout_random_users": []})
    real = tmp_path / "real"
    shutil.copytree(ds.root, real)
    (real / "noetik_synth.json").unlink()
    cases = [
        (ds, bare, "no ensemble members"),
        (ds, no_heldout, "holds out no random-log users"),
        (load_kuairand(real, cache_dir=tmp_path / "cache"), sim, "not a synthetic dataset"),
    ]
    for data, simulator, message in cases:
        with pytest.raises(ConfigError, match=message) as err:
            calibrate(data, simulator, CONFIG)
        assert "\n" not in str(err.value)
