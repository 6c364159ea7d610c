"""Behaviour propensities: temperature scaling, ECE, flooring, the BC-based model end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from noetik.data.dataset import load_kuairand
from noetik.data.transitions import Transitions, build_transitions
from noetik.errors import ConfigError
from noetik.evaluation.ope.propensity import (
    PropensityConfig,
    PropensityModel,
    calibration_split,
    expected_calibration_error,
    fit_propensity,
    fit_temperature,
    subset_episodes,
    uniform_propensity,
)

TINY = PropensityConfig(steps=60, batch_size=128, hidden=(32,), lr=3e-3, min_prob=1e-5)


@pytest.fixture(scope="module")
def train() -> Transitions:
    """The first 400 episodes of the built-in synthetic training split."""
    t = build_transitions(load_kuairand(None), split="train")
    ids = np.unique(t.episode_id)
    return subset_episodes(t, t.episode_id < ids[400])


@pytest.mark.parametrize("t0", [0.5, 2.5])
def test_temperature_scaling_recovers_a_known_temperature(t0: float) -> None:
    # Actions drawn from softmax(z / T0): the NLL minimiser is T0 up to sampling noise. With
    # 20k draws over 20 actions the standard error of 1/T is ~1 %, so 5 % is a safe bound.
    gen = torch.Generator().manual_seed(0)
    logits = 2.0 * torch.randn(20_000, 20, generator=gen)
    actions = torch.multinomial(torch.softmax(logits / t0, dim=-1), 1, generator=gen)[:, 0]
    assert fit_temperature(logits, actions) == pytest.approx(t0, rel=0.05)


def _reference_temperature(logits: torch.Tensor, actions: torch.Tensor) -> float:
    """fit_temperature as first written: 100 bisection steps, each a full (M, A) softmax."""

    def grad(beta: float) -> float:
        p = torch.softmax(beta * z, dim=-1)
        return float(((p * z).sum(-1) - z.gather(1, actions[:, None])[:, 0]).mean())

    z = logits.double()
    z = z - z.max(dim=-1, keepdim=True).values
    lo, hi = np.log(1.0 / 1e3), np.log(1.0 / 1e-3)
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if grad(float(np.exp(mid))) < 0.0 else (lo, mid)
    return float(np.exp(-0.5 * (lo + hi)))


def test_temperature_equals_the_plain_bisection_bit_for_bit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the row blocks and the memo of repeated midpoints change the cost, not one bit of T
    from noetik.evaluation.ope import propensity

    monkeypatch.setattr(propensity, "_GRAD_ROWS", 7)  # several blocks, a ragged last one
    calls: list[float] = []
    grad = propensity._nll_grad
    monkeypatch.setattr(
        propensity, "_nll_grad", lambda z, a, beta: calls.append(beta) or grad(z, a, beta)
    )
    gen = torch.Generator().manual_seed(1)
    logits = 3.0 * torch.randn(300, 50, generator=gen)
    actions = torch.multinomial(torch.softmax(logits / 1.7, dim=-1), 1, generator=gen)[:, 0]
    assert fit_temperature(logits, actions) == _reference_temperature(logits, actions)
    assert len(calls) == len(set(calls)) < 70  # each midpoint once; 102 passes before


def test_temperature_hits_the_bound_when_the_argmax_is_always_logged() -> None:
    # NLL decreases for ever as T -> 0 when every logged action is the top logit.
    logits = torch.tensor([[3.0, 1.0, 0.0], [0.0, 2.0, -1.0]])
    assert fit_temperature(logits, torch.tensor([0, 1]), bounds=(0.01, 10.0)) == 0.01


def test_ece_by_hand() -> None:
    # confidences 0.9 (right), 0.8 (wrong), 0.6 (right) in bins 9, 8, 6 of 10:
    # (|1 - .9| + |0 - .8| + |1 - .6|) / 3 = 1.3 / 3
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4]])
    ece = expected_calibration_error(probs, np.array([0, 1, 0]), bins=10)
    assert ece == pytest.approx(1.3 / 3)


def test_ece_of_a_calibrated_model_is_near_zero_and_of_a_sharpened_one_is_not() -> None:
    # Sampling noise of the ECE is about sqrt(bins * 0.25 / M) = 0.006 for M = 100k, 15 bins.
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.full(5, 0.7), size=100_000)
    actions = (probs.cumsum(1) < rng.random((len(probs), 1))).sum(1)
    assert expected_calibration_error(probs, actions) < 0.015
    sharp = probs**3 / (probs**3).sum(1, keepdims=True)
    assert expected_calibration_error(sharp, actions) > 0.05


def test_uniform_propensity_is_one_over_the_pool() -> None:
    mu = uniform_propensity(250).prob_of(np.zeros((3, 4)), np.array([0, 7, 249]))
    np.testing.assert_array_equal(mu, np.full(3, 1 / 250))
    with pytest.raises(ConfigError):
        uniform_propensity(0)


def test_calibration_split_holds_out_the_latest_whole_episodes(train: Transitions) -> None:
    fit, calib = calibration_split(train, 0.25)
    assert len(fit) + len(calib) == len(train)
    assert not set(fit.episode_id) & set(calib.episode_id)
    first_fit = fit.time_ms[np.r_[True, fit.episode_id[1:] != fit.episode_id[:-1]]]
    first_cal = calib.time_ms[np.r_[True, calib.episode_id[1:] != calib.episode_id[:-1]]]
    assert first_fit.max() < first_cal.min()
    assert 0.2 < len(first_cal) / (len(first_fit) + len(first_cal)) <= 0.25
    # episode links are rebuilt: the last row of every episode is done and points at itself
    last = np.r_[calib.episode_id[1:] != calib.episode_id[:-1], True]
    np.testing.assert_array_equal(calib.done, last)
    np.testing.assert_array_equal(calib.next_index[~last], np.flatnonzero(~last) + 1)


def test_fitted_propensities_are_calibrated_floored_and_reproducible(
    train: Transitions, tmp_path: Path
) -> None:
    fit, calib = calibration_split(train, 0.2)
    model = fit_propensity(fit, calib, TINY)
    d = model.diagnostics
    assert d["nll_after"] <= d["nll_before"] + 1e-9  # T = 1 is inside the searched bracket
    assert d["calib_rows"] == len(calib) and d["temperature"] > 0
    probs = model.probs(calib.obs)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)
    assert probs.min() >= TINY.min_prob * (1 - 1e-6)
    np.testing.assert_allclose(
        model.prob_of(calib.obs, calib.action),
        probs[np.arange(len(calib)), calib.action],
        rtol=1e-6,
    )
    nll = -np.log(probs[np.arange(len(calib)), calib.action]).mean()
    assert nll == pytest.approx(d["nll_after"], rel=1e-5)
    again = fit_propensity(fit, calib, TINY)
    assert again.diagnostics == d
    np.testing.assert_array_equal(again.probs(calib.obs[:50]), probs[:50])
    other = fit_propensity(fit, calib, PropensityConfig(**{**TINY.__dict__, "seed": 1}))
    assert not np.array_equal(other.probs(calib.obs[:50]), probs[:50])
    loaded = PropensityModel.load(model.save(tmp_path / "mu"))
    np.testing.assert_array_equal(loaded.probs(calib.obs[:50]), probs[:50])
    assert loaded.diagnostics == d


def test_propensities_stay_positive_when_the_softmax_underflows(train: Transitions) -> None:
    fit, calib = calibration_split(train, 0.2)
    model = fit_propensity(fit, calib, TINY)
    # T = 1e-4 multiplies logits by 1e4: float32 softmax is exactly 0 almost everywhere
    cold = PropensityModel(model.agent, 1e-4, TINY.min_prob, {})
    raw = torch.softmax(model.agent.scores(torch.as_tensor(calib.obs[:20]).float()) / 1e-4, -1)
    assert (raw == 0).float().mean() > 0.9
    probs = cold.probs(calib.obs[:20])
    assert probs.min() >= TINY.min_prob * (1 - 1e-6)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)
    every = np.tile(np.arange(train.n_actions), 2)
    assert cold.prob_of(np.repeat(calib.obs[:2], train.n_actions, 0), every).min() > 0.0


def test_bad_propensity_configs_are_rejected(train: Transitions) -> None:
    for bad in ({"min_prob": 0.0}, {"calib_fraction": 1.0}, {"calibration": "platt"}):
        with pytest.raises(ConfigError):
            PropensityConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="floor_mass"):
        PropensityConfig(floor_mass=1.0)
    # a floor too large for the action space is capped at floor_mass / A (A·m <= 1 % of μ)
    assert PropensityConfig(min_prob=0.01).floor(1_000) == pytest.approx(1e-5)
    assert PropensityConfig(min_prob=1e-6).floor(1_000) == 1e-6
    assert PropensityConfig().floor(4_369_953) * 4_369_953 == pytest.approx(0.01)
    fit, calib = calibration_split(train, 0.2)
    model = fit_propensity(fit, calib, PropensityConfig(steps=1, hidden=(8,), min_prob=0.01))
    assert model.min_prob == pytest.approx(0.01 / train.n_actions)
