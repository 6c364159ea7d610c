"""Off-policy estimators against numbers computed by hand."""

from __future__ import annotations

from functools import partial

import numpy as np
import pytest

from noetik.evaluation.ope.estimators import (
    LoggedEpisodes,
    OPEEstimate,
    bootstrap_ci,
    bootstrap_intervals,
    direct_method,
    dr_estimate,
    effective_sample_size,
    is_estimate,
    pdis_estimate,
    resampled_values,
    step_ratios,
    wis_estimate,
    wpdis_estimate,
)

ESTIMATORS = [is_estimate, pdis_estimate, wis_estimate, wpdis_estimate, dr_estimate]


def bandit() -> LoggedEpisodes:
    """One step, two episodes.

    ep0: r=1, μ=0.5, π=1.0  -> ρ=2;   q̂=0.6, v̂=0.7
    ep1: r=0, μ=0.5, π=0.25 -> ρ=0.5; q̂=0.2, v̂=0.4
    """
    return LoggedEpisodes(
        rewards=np.array([[1.0], [0.0]]),
        behavior_prob=np.array([[0.5], [0.5]]),
        target_prob=np.array([[1.0], [0.25]]),
        mask=np.ones((2, 1), dtype=bool),
        gamma=0.9,
        q_hat=np.array([[0.6], [0.2]]),
        v_hat=np.array([[0.7], [0.4]]),
    )


def two_step() -> LoggedEpisodes:
    """Two steps, two episodes, γ = 0.9.

    ep0: r=[1, 2], μ=[0.5, 0.5],  π=[1.0, 0.25] -> ρ=[2, 0.5], cumulative w=[2, 1]
    ep1: r=[0, 1], μ=[0.5, 0.25], π=[0.25, 0.75] -> ρ=[0.5, 3], cumulative w=[0.5, 1.5]
    Discounted returns G = [1 + 0.9*2, 0 + 0.9*1] = [2.8, 0.9].
    """
    return LoggedEpisodes(
        rewards=np.array([[1.0, 2.0], [0.0, 1.0]]),
        behavior_prob=np.array([[0.5, 0.5], [0.5, 0.25]]),
        target_prob=np.array([[1.0, 0.25], [0.25, 0.75]]),
        mask=np.ones((2, 2), dtype=bool),
        gamma=0.9,
        q_hat=np.array([[1.5, 1.0], [0.5, 0.8]]),
        v_hat=np.array([[2.0, 1.2], [1.0, 0.6]]),
    )


def test_bandit_by_hand() -> None:
    data = bandit()
    # IS = PDIS: per episode W*G = [2*1, 0.5*0] = [2, 0]; mean 1.0.
    for fn in (is_estimate, pdis_estimate):
        est = fn(data)
        assert est.value == pytest.approx(1.0)
        np.testing.assert_allclose(est.per_episode, [2.0, 0.0])
    # WIS = WPDIS: (2*1 + 0.5*0) / (2 + 0.5) = 0.8; per episode W*G/mean(W) = [2/1.25, 0].
    for fn in (wis_estimate, wpdis_estimate):
        est = fn(data)
        assert est.value == pytest.approx(0.8)
        np.testing.assert_allclose(est.per_episode, [1.6, 0.0])
    # DR: 0.7 + 2*(1 - 0.6) = 1.5 and 0.4 + 0.5*(0 - 0.2) = 0.3; mean 0.9.
    dr = dr_estimate(data)
    assert dr.value == pytest.approx(0.9)
    np.testing.assert_allclose(dr.per_episode, [1.5, 0.3])
    # DM: (0.7 + 0.4) / 2 = 0.55, no weights.
    assert direct_method(data).value == pytest.approx(0.55)
    assert direct_method(data).ess is None
    # ESS of W=[2, 0.5]: 2.5**2 / (4 + 0.25) = 6.25 / 4.25.
    assert is_estimate(data).ess == pytest.approx(6.25 / 4.25)


def test_two_step_by_hand() -> None:
    data = two_step()
    # IS: W = [2*0.5, 0.5*3] = [1, 1.5]; W*G = [2.8, 1.35]; mean 2.075.
    assert is_estimate(data).value == pytest.approx(2.075)
    # PDIS: ep0 2*1 + 1*0.9*2 = 3.8; ep1 0.5*0 + 1.5*0.9*1 = 1.35; mean 2.575.
    pdis = pdis_estimate(data)
    assert pdis.value == pytest.approx(2.575)
    np.testing.assert_allclose(pdis.per_episode, [3.8, 1.35])
    # WIS: (2.8 + 1.35) / (1 + 1.5) = 4.15 / 2.5 = 1.66.
    assert wis_estimate(data).value == pytest.approx(1.66)
    # WPDIS: step means of w are (2+0.5)/2 = 1.25 and (1+1.5)/2 = 1.25.
    # ep0: 2/1.25*1 + 1/1.25*0.9*2 = 1.6 + 1.44 = 3.04; ep1: 0 + 1.5/1.25*0.9 = 1.08; mean 2.06.
    wpdis = wpdis_estimate(data)
    assert wpdis.value == pytest.approx(2.06)
    np.testing.assert_allclose(wpdis.per_episode, [3.04, 1.08])
    # DR, backwards:
    # ep0: DR_1 = 1.2 + 0.5*(2 - 1.0) = 1.7;  DR_0 = 2.0 + 2*(1 + 0.9*1.7 - 1.5) = 4.06
    # ep1: DR_1 = 0.6 + 3*(1 - 0.8) = 1.2;    DR_0 = 1.0 + 0.5*(0 + 0.9*1.2 - 0.5) = 1.29
    dr = dr_estimate(data)
    np.testing.assert_allclose(dr.per_episode, [4.06, 1.29])
    assert dr.value == pytest.approx(2.675)
    assert direct_method(data).value == pytest.approx(1.5)  # (2.0 + 1.0) / 2
    # ESS of final cumulative weights [1, 1.5]: 2.5**2 / (1 + 2.25).
    for fn in ESTIMATORS:
        assert fn(data).ess == pytest.approx(6.25 / 3.25)


def test_on_policy_equals_mean_return() -> None:
    rng = np.random.default_rng(0)
    n, h, gamma = 50, 4, 0.95
    lengths = rng.integers(1, h + 1, size=n)
    mask = np.arange(h)[None, :] < lengths[:, None]
    rewards = rng.normal(size=(n, h))
    probs = rng.uniform(0.1, 1.0, size=(n, h))
    data = LoggedEpisodes(rewards, probs, probs, mask, gamma)
    mean_return = float(np.sum(np.where(mask, rewards, 0.0) * gamma ** np.arange(h), axis=1).mean())
    for fn in (is_estimate, pdis_estimate, wis_estimate, wpdis_estimate):
        est = fn(data)
        assert est.value == pytest.approx(mean_return)
        assert est.ess == pytest.approx(n)


def test_dr_with_perfect_q_has_zero_variance() -> None:
    # Deterministic 2-step MDP: r(s0, a) = a, r(s1, a) = 2a; π(1|s) = 0.7, μ(1|s) = 0.4.
    # Q(s1, a) = 2a, V(s1) = 1.4; Q(s0, a) = a + γ*1.4, V(s0) = 0.7 + γ*1.4.
    gamma = 0.9
    actions = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [1, 1]], dtype=float)
    rewards = actions * np.array([1.0, 2.0])
    pi = np.where(actions == 1, 0.7, 0.3)
    mu = np.where(actions == 1, 0.4, 0.6)
    q_hat = np.stack([actions[:, 0] + gamma * 1.4, 2 * actions[:, 1]], axis=1)
    v_hat = np.tile([0.7 + gamma * 1.4, 1.4], (5, 1))
    data = LoggedEpisodes(rewards, mu, pi, np.ones((5, 2), dtype=bool), gamma, q_hat, v_hat)
    dr = dr_estimate(data)
    np.testing.assert_allclose(dr.per_episode, 0.7 + gamma * 1.4)
    assert np.std(dr.per_episode) == pytest.approx(0.0, abs=1e-12)
    assert np.std(is_estimate(data).per_episode) > 0.1  # IS alone is noisy here


def test_clipping_caps_per_step_ratios() -> None:
    data = bandit()
    np.testing.assert_allclose(step_ratios(data, clip=1.5), [[1.5], [0.5]])
    # IS with ρ = [1.5, 0.5]: (1.5*1 + 0.5*0) / 2 = 0.75; ESS 2**2 / (2.25 + 0.25) = 1.6.
    est = is_estimate(data, clip=1.5)
    assert est.value == pytest.approx(0.75)
    assert est.ess == pytest.approx(1.6)
    # Two-step, clip 1: ρ = [[1, 0.5], [0.5, 1]], W = [0.5, 0.5]; IS = (0.5*2.8 + 0.5*0.9)/2.
    assert is_estimate(two_step(), clip=1.0).value == pytest.approx(0.925)
    with pytest.raises(ValueError, match="clip"):
        is_estimate(data, clip=0.0)


@pytest.mark.parametrize("bad", [0.0, -0.1])
def test_impossible_behaviour_action_raises(bad: float) -> None:
    with pytest.raises(ValueError, match=r"behavior_prob must be > 0.*episode 1, step 0"):
        LoggedEpisodes(
            rewards=np.array([[1.0], [0.0]]),
            behavior_prob=np.array([[0.5], [bad]]),
            target_prob=np.array([[1.0], [0.5]]),
            mask=np.ones((2, 1), dtype=bool),
        )


def test_ess_of_equal_weights_is_n() -> None:
    assert effective_sample_size(np.full(7, 3.0)) == pytest.approx(7.0)
    assert effective_sample_size(np.array([1.0, 0.0, 0.0])) == pytest.approx(1.0)
    # π = 2μ on each step: every trajectory weight is 4, ESS = N.
    mu = np.full((3, 2), 0.25)
    data = LoggedEpisodes(np.ones((3, 2)), mu, 2 * mu, np.ones((3, 2), dtype=bool))
    assert is_estimate(data).ess == pytest.approx(3.0)


def test_padded_steps_are_ignored() -> None:
    base = two_step()
    pad = np.full((2, 2), np.nan)
    padded = LoggedEpisodes(
        rewards=np.hstack([base.rewards, pad]),
        behavior_prob=np.hstack([base.behavior_prob, np.zeros((2, 2))]),
        target_prob=np.hstack([base.target_prob, pad]),
        mask=np.hstack([base.mask, np.zeros((2, 2), dtype=bool)]),
        gamma=base.gamma,
        q_hat=np.hstack([base.q_hat, pad]) if base.q_hat is not None else None,
        v_hat=np.hstack([base.v_hat, pad]) if base.v_hat is not None else None,
    )
    for fn in ESTIMATORS:
        a, b = fn(base), fn(padded)
        assert b.value == pytest.approx(a.value)
        np.testing.assert_allclose(b.per_episode, a.per_episode)
        assert b.ess == pytest.approx(a.ess)


def test_short_episode_in_a_padded_batch() -> None:
    # ep0 = two_step's ep0; ep1 = a single step r=3, ρ=0.5, then padding with junk.
    # PDIS: ep0 3.8; ep1 0.5*3 = 1.5; mean 2.65.  WPDIS step means: t0 (2+0.5)/2 = 1.25,
    # t1 (1+0.5)/2 = 0.75 (ep1's weight carries on). ep0: 1.6 + 1/0.75*1.8 = 4.0; ep1: 1.2.
    data = LoggedEpisodes(
        rewards=np.array([[1.0, 2.0], [3.0, 99.0]]),
        behavior_prob=np.array([[0.5, 0.5], [0.5, 0.0]]),
        target_prob=np.array([[1.0, 0.25], [0.25, 9.0]]),
        mask=np.array([[True, True], [True, False]]),
        gamma=0.9,
    )
    assert pdis_estimate(data).value == pytest.approx(2.65)
    np.testing.assert_allclose(wpdis_estimate(data).per_episode, [4.0, 1.2])


def test_invalid_inputs_raise() -> None:
    ones = np.ones((2, 2))
    with pytest.raises(ValueError, match="prefix"):
        gap = np.array([[True, False, True], [True, True, True]])
        LoggedEpisodes(np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 3)), gap)
    with pytest.raises(ValueError, match="at least one valid step"):
        LoggedEpisodes(ones, ones, ones, np.array([[False, False], [True, True]]))
    with pytest.raises(ValueError, match="bool"):
        LoggedEpisodes(ones, ones, ones, ones)
    with pytest.raises(ValueError, match="shape"):
        LoggedEpisodes(np.ones((2, 3)), ones, ones, ones.astype(bool))
    with pytest.raises(ValueError, match="gamma"):
        LoggedEpisodes(ones, ones, ones, ones.astype(bool), gamma=1.5)
    no_model = LoggedEpisodes(ones, ones, ones, ones.astype(bool))
    with pytest.raises(ValueError, match="q_hat"):
        dr_estimate(no_model)
    with pytest.raises(ValueError, match="v_hat"):
        direct_method(no_model)


def test_bootstrap_ci() -> None:
    rng = np.random.default_rng(1)
    n = 200
    mu = rng.uniform(0.2, 0.8, size=(n, 1))
    data = LoggedEpisodes(rng.normal(1.0, 1.0, (n, 1)), mu, mu, np.ones((n, 1), dtype=bool))
    low, high = bootstrap_ci(is_estimate, data, n_boot=300, seed=3)
    assert low < is_estimate(data).value < high
    assert (low, high) == bootstrap_ci(is_estimate, data, n_boot=300, seed=3)
    clipped = bootstrap_ci(partial(wis_estimate, clip=2.0), data, n_boot=50, seed=0)
    assert clipped[0] <= clipped[1]
    constant = LoggedEpisodes(np.full((5, 1), 2.0), mu[:5], mu[:5], np.ones((5, 1), dtype=bool))
    assert bootstrap_ci(is_estimate, constant, n_boot=20, seed=0) == pytest.approx((2.0, 2.0))


def _random_episodes(n: int, h: int, seed: int) -> LoggedEpisodes:
    rng = np.random.default_rng(seed)
    mask = np.arange(h)[None, :] < rng.integers(1, h + 1, size=n)[:, None]
    return LoggedEpisodes(
        rewards=rng.normal(size=(n, h)),
        behavior_prob=rng.uniform(0.1, 1.0, (n, h)),
        target_prob=rng.uniform(0.0, 1.0, (n, h)) * (rng.uniform(size=(n, h)) > 0.2),
        mask=mask,
        gamma=0.9,
        q_hat=rng.normal(size=(n, h)),
        v_hat=rng.normal(size=(n, h)),
    )


@pytest.mark.parametrize("clip", [None, 1.5])
def test_resampled_values_equal_the_estimators_on_the_drawn_episodes(clip: float | None) -> None:
    data = _random_episodes(9, 4, seed=2)
    counts = np.random.default_rng(0).integers(0, 3, size=(6, 9)).astype(np.float64)
    counts[0] = 0.0
    counts[0, 3] = 9.0  # one episode drawn N times
    extra = np.random.default_rng(1).normal(size=9)
    values = resampled_values(data, counts, clip, means={"extra": extra})
    fns = {
        "is": partial(is_estimate, clip=clip),
        "wis": partial(wis_estimate, clip=clip),
        "pdis": partial(pdis_estimate, clip=clip),
        "wpdis": partial(wpdis_estimate, clip=clip),
        "dr": partial(dr_estimate, clip=clip),
        "dm": direct_method,
    }
    assert set(values) == {*fns, "extra"}
    for b, c in enumerate(counts.astype(np.int64)):
        index = np.repeat(np.arange(9), c)  # a resample of any size: means divide by N = 9
        drawn = data.take(index)
        for name, fn in fns.items():
            expected = (
                fn(drawn).value * len(index) / 9
                if name in ("is", "pdis", "dr", "dm")
                else fn(drawn).value
            )
            assert values[name][b] == pytest.approx(expected, rel=1e-12, abs=1e-12), (name, b)
        assert values["extra"][b] == pytest.approx(c @ extra / 9, rel=1e-12)


def test_bootstrap_intervals_equal_bootstrap_ci_of_each_estimator() -> None:
    data = _random_episodes(150, 5, seed=4)
    returns = (data.rewards * 0.9 ** np.arange(5)).sum(axis=1)
    fast = bootstrap_intervals(data, 2.0, n_boot=300, seed=7, alpha=0.1, means={"ret": returns})
    fns = {
        "is": partial(is_estimate, clip=2.0),
        "wis": partial(wis_estimate, clip=2.0),
        "pdis": partial(pdis_estimate, clip=2.0),
        "wpdis": partial(wpdis_estimate, clip=2.0),
        "dr": partial(dr_estimate, clip=2.0),
        "dm": direct_method,
    }
    for name, fn in fns.items():
        reference = bootstrap_ci(fn, data, n_boot=300, seed=7, alpha=0.1)
        assert fast[name] == pytest.approx(reference, rel=1e-12), name

    def mean_return(d: LoggedEpisodes) -> OPEEstimate:
        g = (d.rewards * 0.9 ** np.arange(5)).sum(axis=1)
        return OPEEstimate(float(g.mean()), g, None)

    assert fast["ret"] == pytest.approx(bootstrap_ci(mean_return, data, 300, 7, 0.1), rel=1e-12)
    assert fast["is"] != bootstrap_intervals(data, 2.0, n_boot=300, seed=8, alpha=0.1)["is"]
    with pytest.raises(ValueError, match="counts"):
        resampled_values(data, np.ones((2, 3)))


def test_estimate_is_frozen() -> None:
    est = is_estimate(bandit())
    assert isinstance(est, OPEEstimate)
    with pytest.raises(AttributeError):
        est.value = 0.0  # type: ignore[misc]
