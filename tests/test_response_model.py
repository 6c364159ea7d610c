"""The KuaiRand response model: recovery of a known truth, debiasing, API, storage, speed."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch

from noetik.data.dataset import load_kuairand
from noetik.data.synthetic import SynthConfig, SyntheticWorld, load_config, synthesize
from noetik.errors import ConfigError
from noetik.simulators.kuairand import (
    HEADS,
    FittedSimulator,
    ResponseModelConfig,
    fit_response_model,
    load_simulator,
    validate,
)
from noetik.simulators.kuairand.examples import (
    Examples,
    build_examples,
    parse_user_spec,
    read_log,
    split_random_users,
    write_random_rows,
)
from noetik.simulators.kuairand.validate import auc, network_predictions, validation_examples

REAL_SAMPLE = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "kuairand-pure-sample"
)


def _synth(directory: Path, users: int, videos: int, seed: int = 1) -> Path:
    synthesize(directory, SynthConfig.for_release("pure", users=users, videos=videos, seed=seed))
    return directory


def _fit(data: Path, cache: Path, **overrides: object) -> FittedSimulator:
    config = ResponseModelConfig(**overrides)  # type: ignore[arg-type]
    return fit_response_model(load_kuairand(data, cache_dir=cache), config)


@pytest.fixture(scope="module")
def synth_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, FittedSimulator, Path]:
    """A small synthetic dataset, a simulator fitted on it and its held-out random log."""
    root = tmp_path_factory.mktemp("sim")
    data = _synth(root / "data", users=500, videos=400)
    sim = _fit(data, root / "cache", epochs=4)
    holdout = root / "holdout.csv"
    ds = load_kuairand(data, cache_dir=root / "cache")
    write_random_rows(ds, np.asarray(sim.meta["heldout_random_users"]), holdout)
    return data, sim, holdout


def recovery(data: Path, sim: FittedSimulator, holdout: Path) -> dict[str, float]:
    """Learned vs TRUE click probabilities on the held-out users' random exposures."""
    ex: Examples = validation_examples(sim, holdout)
    world = SyntheticWorld.from_config(load_config(data))
    truth = world.click_probability(ex.user_id, sim.vocab.decode(ex.item), ex.hour, ex.tab)
    assert sim.uncorrected is not None
    ours = network_predictions(sim.model, ex, 1.0)[:, 0]
    unc = network_predictions(sim.uncorrected, ex, 0.0)[:, 0]
    draws = np.random.default_rng(0).random((10, len(truth))) < truth
    return {
        "truth_mean": float(truth.mean()),
        "ours_mean": float(ours.mean()),
        "uncorrected_mean": float(unc.mean()),
        "corr": float(np.corrcoef(ours, truth)[0, 1]),
        "auc": float(np.mean([auc(ours, d) for d in draws])),
        "oracle_auc": float(np.mean([auc(truth, d) for d in draws])),
    }


def test_recovers_the_true_click_model_and_debiases(
    synth_run: tuple[Path, FittedSimulator, Path],
) -> None:
    r = recovery(*synth_run)
    assert r["corr"] > 0.3, r
    assert r["auc"] > 0.55 and r["auc"] <= r["oracle_auc"] + 0.01, r
    assert abs(r["ours_mean"] - r["truth_mean"]) < 0.02, r
    assert r["uncorrected_mean"] - r["truth_mean"] > 0.1, r  # the biased model overshoots


def test_validate_reports_every_signal_and_baseline(
    synth_run: tuple[Path, FittedSimulator, Path],
) -> None:
    _, sim, holdout = synth_run
    result = validate(sim, holdout)
    assert list(result) == list(HEADS)
    click = result["is_click"]
    assert {"auc", "mean_pred", "mean_true", "baselines"} <= set(click)
    assert set(click["baselines"]) == {"popularity", "uncorrected"}
    assert {"rmse", "corr", "mean_pred", "mean_true"} <= set(result["watch_ratio"])
    assert click["auc"] > click["baselines"]["popularity"]["auc"]
    ours_gap = abs(click["mean_pred"] - click["mean_true"])
    assert ours_gap < abs(click["baselines"]["uncorrected"]["mean_pred"] - click["mean_true"])


def test_validation_examples_read_only_their_users_standard_rows_and_lose_nothing(
    synth_run: tuple[Path, FittedSimulator, Path],
) -> None:
    data, sim, holdout = synth_run
    ds = load_kuairand(data, cache_dir=Path(sim.meta["cache_dir"]))
    log = read_log(ds, holdout)
    fast = build_examples(ds, sim.vocab, log, only_extra=True)  # the held-out users' rows only
    every = build_examples(ds, sim.vocab, log)  # every user's standard rows, then the log's
    extra = every.subset(every.exposure == 1)  # the random rows: the log's, in the same order
    assert len(fast) == len(extra) > 0
    for name, value in vars(fast).items():
        np.testing.assert_array_equal(value, getattr(extra, name), err_msg=name)


def test_predict_api(synth_run: tuple[Path, FittedSimulator, Path]) -> None:
    _, sim, _ = synth_run
    rng = np.random.default_rng(0)
    obs = rng.random((64, 128)).astype(np.float32)
    items = rng.integers(0, len(sim.vocab), 64)
    out = sim.predict(obs, items)
    assert list(out) == list(HEADS)
    for values in out.values():
        assert values.shape == (64,) and values.dtype == np.float32
        assert np.all((values >= 0) & (values <= 1))
    torch_out = sim.predict_torch(torch.from_numpy(obs), torch.from_numpy(items))
    np.testing.assert_allclose(torch_out[:, 0].numpy(), out["is_click"], rtol=1e-6)


def test_save_and_load_round_trip(
    synth_run: tuple[Path, FittedSimulator, Path], tmp_path: Path
) -> None:
    _, sim, _ = synth_run
    sim.save(tmp_path / "run")
    assert (tmp_path / "run" / "model.safetensors").is_file()
    loaded = load_simulator(tmp_path / "run", device="cpu")
    obs = np.random.default_rng(1).random((32, 128)).astype(np.float32)
    items = np.arange(32) % len(sim.vocab)
    for head in HEADS:
        np.testing.assert_array_equal(
            loaded.predict(obs, items)[head], sim.predict(obs, items)[head]
        )
    assert loaded.config == sim.config
    assert loaded.meta["heldout_random_users"] == sim.meta["heldout_random_users"]
    with pytest.raises(ConfigError):
        load_simulator(tmp_path / "missing")


@pytest.mark.slow  # a speed figure: benchmarks/bench_envs.py measures it
def test_batched_forward_is_fast(synth_run: tuple[Path, FittedSimulator, Path]) -> None:
    _, sim, _ = synth_run
    obs = torch.rand(4096, 128)
    items = torch.randint(0, len(sim.vocab), (4096,))
    for _ in range(3):
        sim.predict_torch(obs, items)
    times = []
    for _ in range(15):
        start = time.perf_counter()
        sim.predict_torch(obs, items)
        times.append(time.perf_counter() - start)
    assert float(np.median(times)) < 0.040


def test_same_seed_same_weights(tmp_path: Path) -> None:
    data = _synth(tmp_path / "data", users=120, videos=100, seed=3)
    fits = [_fit(data, tmp_path / "cache", epochs=1, seed=s) for s in (5, 5, 6)]
    states = [f.model.state_dict() for f in fits]
    for name in states[0]:
        torch.testing.assert_close(states[0][name], states[1][name], rtol=0, atol=0)
    assert any(not torch.equal(states[0][n], states[2][n]) for n in states[0])


def test_user_selection() -> None:
    assert parse_user_spec("0.7") == 0.7
    assert parse_user_spec("1") == 1.0
    assert parse_user_spec("0-3,7") == (0, 1, 2, 3, 7)
    with pytest.raises(ConfigError):
        parse_user_spec("a-b")
    with pytest.raises(ConfigError):
        parse_user_spec("1.5")
    train, held = split_random_users(np.arange(500), 0.7)
    assert train.tolist() == list(range(350)) and held.tolist() == list(range(350, 500))
    train, held = split_random_users(np.array([3, 1, 2]), (1, 3))
    assert train.tolist() == [1, 3] and held.tolist() == [2]


def test_auc_matches_pairwise_definition() -> None:
    rng = np.random.default_rng(0)
    scores = np.round(rng.random(200), 1)  # many ties
    labels = rng.random(200) < 0.3
    pos, neg = scores[labels], scores[~labels]
    pairs = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
    assert auc(scores, labels) == pytest.approx(pairs.mean())
    assert np.isnan(auc(scores, np.zeros(200)))


@pytest.mark.slow
def test_recovery_on_a_larger_synthetic_dataset(tmp_path: Path) -> None:
    data = _synth(tmp_path / "data", users=3000, videos=1500, seed=2)
    sim = _fit(data, tmp_path / "cache")
    holdout = tmp_path / "holdout.csv"
    ds = load_kuairand(data, cache_dir=tmp_path / "cache")
    write_random_rows(ds, np.asarray(sim.meta["heldout_random_users"]), holdout)
    r = recovery(data, sim, holdout)
    print(r)
    assert r["corr"] > 0.4, r
    assert abs(r["ours_mean"] - r["truth_mean"]) < 0.01, r
    assert r["uncorrected_mean"] - r["truth_mean"] > 0.15, r


@pytest.mark.slow
def test_real_sample_held_out_random_exposure(tmp_path: Path) -> None:
    if not (REAL_SAMPLE / "log_random_4_22_to_5_08_pure.csv").is_file():
        pytest.skip(f"real KuaiRand sample not found at {REAL_SAMPLE}")
    sim = _fit(REAL_SAMPLE, tmp_path / "cache", random_users=tuple(range(350)))
    holdout = tmp_path / "holdout.csv"
    ds = load_kuairand(REAL_SAMPLE, cache_dir=tmp_path / "cache")
    write_random_rows(ds, np.arange(350, 500), holdout)
    click = validate(sim, holdout)["is_click"]
    print(click)
    base = click["baselines"]
    assert click["auc"] >= 0.68
    assert abs(click["mean_pred"] - click["mean_true"]) <= 0.02
    assert click["auc"] > base["popularity"]["auc"] and click["auc"] > base["uncorrected"]["auc"]
    for name in ("popularity", "uncorrected"):
        gap = abs(base[name]["mean_pred"] - click["mean_true"])
        assert abs(click["mean_pred"] - click["mean_true"]) < gap
