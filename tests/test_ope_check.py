"""The OPE check: rollout truth, policy probabilities, the vectorised bootstrap, table rows."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from noetik.errors import ConfigError
from noetik.evaluation.ope.check import (
    ESTIMATORS,
    OPECheckConfig,
    default_check,
    format_table,
    run_ope_check,
)
from noetik.evaluation.ope.estimators import (
    LoggedEpisodes,
    direct_method,
    dr_estimate,
    is_estimate,
    pdis_estimate,
    wis_estimate,
    wpdis_estimate,
)
from noetik.evaluation.ope.fqe import FQEConfig
from noetik.evaluation.ope.simulated_logs import (
    Policies,
    PolicySpec,
    bootstrap_replicates,
    make_problem,
    policy_probs,
    rollout,
)
from noetik.utils.bootstrap import resample_indices

REC = "noetik/RECEnv-v0"
BEHAVIOUR = PolicySpec("behaviour", "linear", temperature=1.0, epsilon=0.1)


def tiny(**changes: object) -> OPECheckConfig:
    """A small RECEnv check: 5 items, 4 steps, 200 episodes, 6 datasets."""
    base = OPECheckConfig(
        env_id=REC,
        env_options={"n_items": 5, "reward_type": "binary"},
        horizon=4,
        n_episodes=200,
        n_datasets=6,
        n_boot=100,
        n_truth=2000,
        truth_batch=1000,
        targets=(
            PolicySpec("cooler", temperature=0.7, epsilon=0.1, close=True),
            PolicySpec("oracle-mix", "oracle", temperature=0.5, behaviour_weight=0.7),
        ),
        fqe=FQEConfig(kind="linear", time_feature=True, iterations=6, ridge=1.0),
    )
    return replace(base, **changes)


def test_policy_probs_by_hand() -> None:
    """Scores [0, 1] standardise to z = [-1, 1]; softmax(z / 1) = [1, e²] / (1 + e²)."""
    scores = np.array([[0.0, 1.0]])
    p = policy_probs(PolicySpec("p", temperature=1.0), scores)
    high = np.exp(2.0) / (1.0 + np.exp(2.0))
    np.testing.assert_allclose(p, [[1.0 - high, high]])
    p = policy_probs(PolicySpec("p", temperature=0.5, epsilon=0.2), scores)
    high = np.exp(4.0) / (1.0 + np.exp(4.0))
    np.testing.assert_allclose(p, [[0.8 * (1.0 - high) + 0.1, 0.8 * high + 0.1]])
    mu = np.array([[0.25, 0.75]])
    mixed = policy_probs(PolicySpec("m", temperature=1.0, behaviour_weight=0.5), scores, mu)
    np.testing.assert_allclose(mixed, 0.5 * policy_probs(PolicySpec("p"), scores) + 0.5 * mu)
    flat = policy_probs(PolicySpec("u", "uniform"), np.zeros((3, 4)))
    np.testing.assert_allclose(flat, 0.25)


def test_true_value_matches_the_analytic_return() -> None:
    """One user, one item, no preference drift, continuous reward: every step's reward is the
    user/item affinity, so the discounted return is ``affinity (1 - γ^H) / (1 - γ)``."""
    user, item = np.array([[0.6, 0.8]]), np.array([[1.0, 0.0]])
    options = {
        "n_items": 1,
        "n_users": 1,
        "alpha": 0.0,
        "item_feature_dim": 2,
        "user_feature_dim": 2,
        "user_feature_vector": user,
        "item_feature_vector": item,
    }
    problem = make_problem(REC, 5, options, None)
    policies = Policies(problem, (BEHAVIOUR,), 2)
    run = rollout(
        problem,
        problem.make(7),
        policies.sampler("behaviour"),
        horizon=5,
        gamma=0.9,
        seeds=(0, np.random.default_rng(0)),
    )
    assert run.mask.all() and (run.probs == 1.0).all()
    np.testing.assert_allclose(run.returns, 0.6 * (1 - 0.9**5) / (1 - 0.9))


def test_uniform_truth_matches_the_mean_affinity() -> None:
    """Without drift, a uniform policy earns the mean affinity over users and items at each
    step: the Monte-Carlo truth must land within 4 standard errors of it."""
    options = {"n_items": 6, "n_users": 3, "alpha": 0.0}
    problem = make_problem(REC, 3, options, None)
    uniform = PolicySpec("uniform", "uniform")
    policies = Policies(problem, (uniform,), 5)
    run = rollout(
        problem,
        problem.make(20_000),
        policies.sampler("uniform"),
        horizon=3,
        gamma=1.0,
        seeds=(1, np.random.default_rng(1)),
    )
    envs = problem.make(1)
    users = envs.unwrapped.simulator.user_sampler.user_features  # type: ignore[attr-defined]
    items = envs.unwrapped.simulator.item_model.items.features  # type: ignore[attr-defined]
    expected = 3 * float((users @ items.T).mean())
    se = run.returns.std() / np.sqrt(len(run.returns))
    assert abs(run.returns.mean() - expected) < 4 * se


def test_bootstrap_replicates_equal_the_estimators_on_resamples() -> None:
    rng = np.random.default_rng(5)
    n, h = 12, 4
    mask = np.arange(h)[None, :] < rng.integers(1, h + 1, size=n)[:, None]
    data = LoggedEpisodes(
        rewards=rng.normal(size=(n, h)),
        behavior_prob=rng.uniform(0.2, 1, (n, h)),
        target_prob=rng.uniform(0, 1, (n, h)),
        mask=mask,
        gamma=0.9,
        q_hat=rng.normal(size=(n, h)),
        v_hat=rng.normal(size=(n, h)),
    )
    reps = bootstrap_replicates(data, 2.0, 5, np.random.default_rng(3))
    index = resample_indices(np.random.default_rng(3), 5, n)
    fns = {
        "IS": is_estimate,
        "WIS": wis_estimate,
        "PDIS": pdis_estimate,
        "WPDIS": wpdis_estimate,
        "DR": dr_estimate,
    }
    for b in range(5):
        resample = data.take(index[b])
        for name, fn in fns.items():
            assert reps[name][b] == pytest.approx(fn(resample, 2.0).value, rel=1e-12)
        assert reps["DM"][b] == pytest.approx(direct_method(resample).value, rel=1e-12)


@pytest.fixture(scope="module")
def rows() -> list[dict[str, object]]:
    return run_ope_check(tiny())


def test_rows_have_every_key_and_estimator(rows: list[dict[str, object]]) -> None:
    keys = {
        "env",
        "policy",
        "close",
        "estimator",
        "true_value",
        "true_se",
        "mean_estimate",
        "bias",
        "rel_bias",
        "rmse",
        "rel_rmse",
        "within_10pct",
        "coverage",
        "mean_ess",
        "kl",
        "n_datasets",
        "n_episodes",
        "goal",
    }
    assert all(set(r) == keys for r in rows)
    assert [(r["policy"], r["estimator"]) for r in rows] == [
        (p, e) for p in ("cooler", "oracle-mix") for e in ESTIMATORS
    ]
    for r in rows:
        assert r["bias"] == pytest.approx(r["mean_estimate"] - r["true_value"])  # type: ignore[operator]
        assert 0.0 <= r["coverage"] <= 1.0  # type: ignore[operator]
        graded = r["close"] and r["estimator"] == "DR"
        assert r["goal"] in (("met", "missed") if graded else ("",))
    table = format_table(rows)
    assert table.count("\n") == len(rows) + 1 and "| RECEnv-v0 | cooler (close) |" in table


def test_same_seed_same_table(rows: list[dict[str, object]]) -> None:
    small = tiny(n_datasets=2)
    first = format_table(run_ope_check(small))
    assert first == format_table(run_ope_check(small))
    assert first != format_table(run_ope_check(replace(small, seed=1)))


def test_target_equal_to_behaviour_has_unit_weights() -> None:
    """π = μ: every ratio is 1, so IS = WIS = PDIS = WPDIS = the on-policy mean return and
    the ESS is N; the logged returns are then samples of the truth."""
    same = replace(BEHAVIOUR, name="same")
    result = run_ope_check(tiny(targets=(same,), estimators=("IS", "WIS", "PDIS", "WPDIS")))
    values = {r["estimator"]: r["mean_estimate"] for r in result}
    assert len(set(values.values())) == 1
    assert all(r["mean_ess"] == 200 and r["kl"] == 0.0 for r in result)
    problem = make_problem(REC, 4, tiny().env_options, None)
    policies = Policies(problem, (BEHAVIOUR,), 5)
    runs = [
        rollout(
            problem,
            problem.make(200),
            policies.sampler("behaviour"),
            horizon=4,
            gamma=0.95,
            seeds=(0, np.random.default_rng(0)),
        )
    ]
    data = LoggedEpisodes(runs[0].rewards, runs[0].probs, runs[0].probs, runs[0].mask, 0.95)
    assert is_estimate(data).value == pytest.approx(runs[0].returns.mean(), rel=1e-12)


def test_bad_configs_are_refused() -> None:
    with pytest.raises(ConfigError, match="estimators"):
        tiny(estimators=("IS", "magic"))
    with pytest.raises(ConfigError, match="iterations"):
        tiny(fqe=FQEConfig(kind="linear", iterations=2))
    with pytest.raises(ConfigError, match="temperature"):
        PolicySpec("x", temperature=0.0)
    with pytest.raises(ConfigError, match="env_id"):
        default_check("CartPole-v1")
    with pytest.raises(ConfigError, match="unique"):
        run_ope_check(tiny(targets=(BEHAVIOUR,)))


def test_interest_evolution_sessions_end_early() -> None:
    """A small time budget: sessions end before the horizon, the mask says where."""
    problem = make_problem("noetik/InterestEvolution-v0", 8, {"time_budget": 4.0}, None)
    policies = Policies(problem, (BEHAVIOUR, PolicySpec("o", "oracle")), 221)
    run = rollout(
        problem,
        problem.make(300),
        policies.sampler("o"),
        horizon=8,
        gamma=1.0,
        seeds=(0, np.random.default_rng(0)),
    )
    lengths = run.mask.sum(axis=1)
    assert problem.n_actions == 10 and lengths.min() >= 1 and lengths.min() < 8
    assert (run.rewards[~run.mask] == 0).all()
    np.testing.assert_allclose(run.returns, run.rewards.sum(axis=1))
