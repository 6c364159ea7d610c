"""Cognitive models: likelihoods worked out by hand on three trials, simulation and batched
maximum-likelihood fits (parameter recovery: tests/test_choices_evaluation.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from noetik.agents.cognitive import (
    FitConfig,
    GainLossRW,
    HybridMBMF,
    PVLDelta,
    RescorlaWagner,
    WinStayLoseShift,
    fit_pooled,
    fit_subjects,
    minimise,
    models_for,
    predict,
    simulate,
    trial_log_likelihood,
)
from noetik.data.choices import PRESETS, ChoiceEpisodes, TaskDesign
from noetik.errors import ConfigError

BANDIT2 = TaskDesign("bandit2arm", (2,), (1,), ("reward",))
GAIN_LOSS2 = TaskDesign("gl", (2,), (1,), ("gain", "loss"))
IGT = TaskDesign("igt", (4,), (1,), ("gain", "loss"), outcome_scale=100.0)
TWO_STEP = TaskDesign("two-step", (2, 4), (1, 2), ("reward",))


def _one(
    design: TaskDesign, choices: list[list[int]], outcomes: list[list[float]]
) -> ChoiceEpisodes:
    return ChoiceEpisodes.from_arrays(design, ("s",), [choices], [outcomes])


def _log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def test_rescorla_wagner_by_hand() -> None:
    """alpha 0.5, beta 2; choices 1, 1, 2; rewards 1, -1, 1.
    Q = (0, 0): p = 1/2.  Q1 = 0 + 0.5 (1 - 0) = 0.5: p(1) = sigmoid(2 * 0.5).
    Q1 = 0.5 + 0.5 (-1 - 0.5) = -0.25: p(2) = sigmoid(2 * (0 - -0.25))."""
    episodes = _one(BANDIT2, [[0], [0], [1]], [[1.0], [-1.0], [1.0]])
    ll = trial_log_likelihood(RescorlaWagner(), [0.5, 2.0], episodes)[0]
    np.testing.assert_allclose(ll, [math.log(0.5), _log_sigmoid(1.0), _log_sigmoid(0.5)])


def test_gain_loss_learning_rates_by_hand() -> None:
    """alpha_gain 0.5, alpha_loss 0.25, beta 1; choices 1, 1, 2; (gain, loss) (1, 0), (1, -1),
    (0, -1).  G = L = 0: p = 1/2.  G1 = 0.5: p(1) = sigmoid(0.5).
    G1 = 0.5 + 0.5 (1 - 0.5) = 0.75, L1 = 0.25 (-1) = -0.25: V1 = 0.5, p(2) = sigmoid(-0.5)."""
    episodes = _one(GAIN_LOSS2, [[0], [0], [1]], [[1.0, 0.0], [1.0, -1.0], [0.0, -1.0]])
    ll = trial_log_likelihood(GainLossRW(), [0.5, 0.25, 1.0], episodes)[0]
    np.testing.assert_allclose(ll, [math.log(0.5), _log_sigmoid(0.5), _log_sigmoid(-0.5)])
    # one reward column splits into its positive and negative parts: rewards 1, -1, 1 give
    # G1 = 0.5; then p(1) = sigmoid(0.5), G1 = 0.5 + 0.5 (0 - 0.5) = 0.25, L1 = -0.25: V1 = 0
    single = _one(BANDIT2, [[0], [0], [1]], [[1.0], [-1.0], [1.0]])
    ll = trial_log_likelihood(GainLossRW(), [0.5, 0.25, 1.0], single)[0]
    np.testing.assert_allclose(ll, [math.log(0.5), _log_sigmoid(0.5), math.log(0.5)])


def test_win_stay_lose_shift_by_hand() -> None:
    """p_stay_win 0.8, p_shift_lose 0.6, three options; choices 1, 1, 3; rewards 1, -1, 1.
    First trial 1/3; after a win staying has 0.8; after a loss shifting to one of the two
    others has 0.6 / 2."""
    design = TaskDesign("b3", (3,), (1,), ("reward",))
    episodes = _one(design, [[0], [0], [2]], [[1.0], [-1.0], [1.0]])
    ll = trial_log_likelihood(WinStayLoseShift(), [0.8, 0.6], episodes)[0]
    np.testing.assert_allclose(ll, np.log([1 / 3, 0.8, 0.3]))


def test_pvl_delta_by_hand() -> None:
    """A 0.5, alpha 0.5, c 1 (theta = 3 - 1 = 2), lambda 2; decks A, A, C; nets +100, -400,
    +50 (outcome scale 100).  E = 0: p = 1/4.  u = 1^0.5 = 1, E_A = 0.5: p(A) = e^1 / (e^1 + 3).
    u = -2 * 4^0.5 = -4, E_A = 0.5 + 0.5 (-4 - 0.5) = -1.75: p(C) = 1 / (e^-3.5 + 3)."""
    episodes = _one(IGT, [[0], [0], [2]], [[100.0, 0.0], [100.0, -500.0], [50.0, 0.0]])
    ll = trial_log_likelihood(PVLDelta(), [0.5, 0.5, 1.0, 2.0], episodes)[0]
    e = math.e
    np.testing.assert_allclose(ll, np.log([1 / 4, e / (e + 3), 1 / (math.exp(-3.5) + 3)]))


def test_hybrid_model_by_hand() -> None:
    """alpha1 = alpha2 = 0.5, beta1 1, beta2 2, lambda 0.5, w 0.5, p 1, common 0.7.
    Trial 1: a=1 -> A, b=A1, r=1. All values 0: p = 1/2 at both stages. Then
    delta1 = 0, delta2 = 1: Q_MF(1) = 0.5 * 0.5 * 1 = 0.25, Q2(A1) = 0.5.
    Trial 2: a=1 -> B (rare), b=B1, r=0. Q_MB = (0.7 * 0.5, 0.3 * 0.5) = (0.35, 0.15),
    Q_net = (0.5 * 0.35 + 0.5 * 0.25, 0.5 * 0.15) = (0.3, 0.075), logits (0.3 + 1, 0.075):
    p(1) = sigmoid(1.225); in B both values 0: 1/2. Then delta1 = 0 - 0.25, delta2 = 0:
    Q_MF(1) = 0.125.
    Trial 3: a=2 -> B, b=B2, r=1. Q_net = (0.175 + 0.0625, 0.075), logits (1.2375, 0.075):
    p(2) = sigmoid(-1.1625); in B 1/2."""
    choices = [[0, 0], [0, 2], [1, 3]]
    episodes = _one(TWO_STEP, choices, [[1.0], [0.0], [1.0]])
    params = [0.5, 0.5, 1.0, 2.0, 0.5, 0.5, 1.0]
    ll = trial_log_likelihood(HybridMBMF(), params, episodes)[0]
    half = math.log(0.5)
    expected = [2 * half, _log_sigmoid(1.225) + half, _log_sigmoid(-1.1625) + half]
    np.testing.assert_allclose(ll, expected)


def test_likelihoods_are_vectorised_over_subjects() -> None:
    rng = np.random.default_rng(0)
    choices = rng.integers(0, 4, (3, 12, 1))
    outcomes = np.stack([rng.choice([0, 50, 100], (3, 12)), -rng.choice([0, 250], (3, 12))], 2)
    episodes = ChoiceEpisodes.from_arrays(IGT, ("a", "b", "c"), choices, outcomes, [12, 7, 10])
    model = PVLDelta()
    params = np.array([[0.2, 0.5, 1.0, 2.0], [0.6, 0.9, 0.5, 1.0], [0.1, 0.3, 2.0, 4.0]])
    together = trial_log_likelihood(model, params, episodes)
    for s in range(3):
        alone = trial_log_likelihood(model, params[s], episodes.select([s]))
        np.testing.assert_allclose(together[s], alone[0])
    assert np.all(together[1, 7:] == 0) and np.all(together[1, :7] < 0)
    with pytest.raises(ConfigError, match=r"takes \(4,\) or \(3, 4\) parameters"):
        trial_log_likelihood(model, [0.1, 0.2], episodes)
    with pytest.raises(ConfigError, match="does not apply to task 'igt'"):
        trial_log_likelihood(HybridMBMF(), np.zeros(7), episodes)


def test_predict_scores_the_most_likely_option() -> None:
    episodes = _one(BANDIT2, [[0], [0], [1]], [[1.0], [-1.0], [1.0]])
    predicted = predict(RescorlaWagner(), [0.5, 2.0], episodes)
    # trial 1 is a tie (half a hit); trial 2 prefers option 1 (chosen); trial 3 option 2
    assert predicted.hits[0].tolist() == [0.5, 1.0, 1.0]
    np.testing.assert_allclose(
        predicted.log_lik, trial_log_likelihood(RescorlaWagner(), [0.5, 2.0], episodes)
    )


def test_models_for_each_task() -> None:
    names = {task: {m.name for m in models_for(m.design())} for task, m in PRESETS.items()}
    assert names["two-step"] == {"hybrid", "wsls"}
    assert names["igt"] == {"rw", "rw_gain_loss", "wsls", "pvl_delta"}
    assert names["bandit2arm"] == names["bandit4arm"] == names["igt"]


def test_simulation_is_seeded_and_follows_the_model() -> None:
    params = np.array([[0.3, 2.0], [0.7, 5.0]])
    first = simulate(RescorlaWagner(), params, "noetik/Bandit4Arm-v0", seed=3, n_trials=40)
    again = simulate(RescorlaWagner(), params, "noetik/Bandit4Arm-v0", seed=3, n_trials=40)
    other = simulate(RescorlaWagner(), params, "noetik/Bandit4Arm-v0", seed=4, n_trials=40)
    assert first.choices.shape == (2, 40, 1) and first.outcomes.shape == (2, 40, 2)
    assert np.array_equal(first.choices, again.choices)
    assert np.array_equal(first.outcomes, again.outcomes)
    assert not np.array_equal(first.choices, other.choices)
    assert first.option_values is not None and first.option_values.shape == (2, 40, 8)
    # a perfect win-stay/lose-shift player in the two-step task: stays exactly after a win
    wsls = simulate(WinStayLoseShift(), [[1.0, 1.0]], "noetik/TwoStep-v0", seed=0, n_trials=200)
    first_stage, won = wsls.choices[0, :, 0], wsls.outcomes[0, :, 0] > 0
    stayed = first_stage[1:] == first_stage[:-1]
    assert np.array_equal(stayed, won[:-1])
    assert wsls.option_value_names == ("A1prob", "A2prob", "B1prob", "B2prob")


def test_minimise_solves_a_batch_of_problems() -> None:
    centres = np.array([[1.0, -2.0, 0.5], [3.0, 0.0, -1.0], [-4.0, 2.0, 2.0]])
    scale = np.array([1.0, 10.0, 0.1])

    def bowls(points: np.ndarray, rows: np.ndarray) -> np.ndarray:
        d = points - centres[rows, None, :]
        return (scale * d**2).sum(axis=2) + (d[..., 0] * d[..., 1]) ** 2

    found = minimise(bowls, np.zeros((3, 3)), gtol=1e-6)
    np.testing.assert_allclose(found.x, centres, atol=1e-4)
    assert found.converged.all() and np.all(found.iterations < 100)


def test_fits_recover_the_generating_parameters_of_pooled_data() -> None:
    """Fifty subjects share one parameter set: the pooled fit recovers it; per-subject fits
    are at least as likely; the information criteria follow their formulas."""
    true = np.array([0.35, 4.0])
    episodes = simulate(RescorlaWagner(), np.tile(true, (50, 1)), "noetik/Bandit2Arm-v0", seed=1)
    pooled = fit_pooled(RescorlaWagner(), episodes)
    np.testing.assert_allclose(pooled.params, true, rtol=0.15)
    ll = trial_log_likelihood(RescorlaWagner(), pooled.params, episodes).sum()
    assert pooled.nll == pytest.approx(-ll)
    assert pooled.aic == pytest.approx(2 * 2 + 2 * pooled.nll)
    assert pooled.bic == pytest.approx(2 * math.log(5_000) + 2 * pooled.nll)
    subjects = fit_subjects(RescorlaWagner(), episodes, FitConfig(restarts=2))
    assert subjects.nll.sum() <= pooled.nll + 1e-6
    assert subjects.converged.all()
    np.testing.assert_allclose(subjects.bic, 2 * np.log(100) + 2 * subjects.nll)
    ll = trial_log_likelihood(RescorlaWagner(), subjects.params, episodes).sum(axis=1)
    np.testing.assert_allclose(subjects.nll, -ll)
