"""Fitted Q evaluation against exact policy evaluation on tiny MDPs with known dynamics."""

from __future__ import annotations

import numpy as np
import pytest

from noetik.errors import ConfigError
from noetik.evaluation.ope.fqe import FQEConfig, fit_fqe

# A 3-state, 2-action MDP; transition probabilities are quarters so that replicating each
# (state, action) 4 times with next states in exact proportions gives the expectations.
P = np.array(
    [
        [[0.25, 0.25, 0.5], [0.5, 0.5, 0.0]],
        [[0.0, 0.75, 0.25], [0.25, 0.5, 0.25]],
        [[0.5, 0.0, 0.5], [0.25, 0.25, 0.5]],
    ]
)  # P[s, a, s']
R = np.array([[1.0, 0.0], [0.2, 0.7], [0.5, 0.9]])  # r(s, a)
PI = np.array([[0.8, 0.2], [0.3, 0.7], [0.5, 0.5]])  # target π(a | s)
S, A, H = 3, 2, 3
GAMMA = 0.9


def exact_finite_q() -> np.ndarray:
    """Q_t(s, a) (H, S, A) by backward induction (the Bellman solve of the finite horizon)."""
    q = np.zeros((H, S, A))
    following = np.zeros(S)
    for t in range(H - 1, -1, -1):
        q[t] = R + GAMMA * P @ following
        following = (PI * q[t]).sum(axis=1)
    return q


def tree_episodes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every path of H steps from each start state, each action once per node (μ uniform) and
    each next state ``4 P(s'|s, a)`` times: ``(states (E, H), actions (E, H), rewards (E, H))``
    whose empirical transition law at every (t, s, a) is exactly P."""
    paths = [([s], []) for s in range(S)]
    for t in range(H):
        grown = []
        for states, acts in paths:
            for a in range(A):
                if t == H - 1:
                    grown.append((states, [*acts, a]))
                    continue
                for nxt in range(S):
                    grown += [([*states, nxt], [*acts, a])] * int(4 * P[states[-1], a, nxt])
        paths = grown
    states = np.array([p[0] for p in paths])
    actions = np.array([p[1] for p in paths])
    return states, actions, R[states, actions]


def one_hot(states: np.ndarray) -> np.ndarray:
    return np.eye(S, dtype=np.float32)[states]


@pytest.fixture(scope="module")
def tree() -> dict[str, np.ndarray]:
    states, actions, rewards = tree_episodes()
    return {
        "states": states,
        "obs": one_hot(states),
        "actions": actions,
        "rewards": rewards,
        "mask": np.ones(states.shape, dtype=bool),
        "probs": PI[states].astype(np.float32),
    }


def fit(tree: dict[str, np.ndarray], config: FQEConfig, **kw: object):  # type: ignore[no-untyped-def]
    args = (tree["obs"], tree["actions"], tree["rewards"], tree["mask"])
    return fit_fqe(*args, kw.pop("probs", tree["probs"]), GAMMA, config, **kw)  # type: ignore[arg-type]


def test_tree_data_is_exact(tree: dict[str, np.ndarray]) -> None:
    states, actions = tree["states"], tree["actions"]
    sel = (states[:, 1] == 2) & (actions[:, 1] == 0)
    freq = np.bincount(states[sel, 2], minlength=S) / sel.sum()
    np.testing.assert_allclose(freq, P[2, 0])


@pytest.mark.parametrize("iterations", [H, H + 5])
def test_tabular_fqe_is_exact_backward_induction(
    tree: dict[str, np.ndarray], iterations: int
) -> None:
    model = fit(tree, FQEConfig(kind="tabular", time_feature=True, iterations=iterations))
    exact = exact_finite_q()
    eye = np.eye(S, dtype=np.float32)
    for t in range(H):
        got = model.q(eye, np.full(S, t))
        np.testing.assert_allclose(got, exact[t], atol=1e-6, rtol=0)
    q_hat, v_hat = model.estimates(tree["obs"], tree["actions"], tree["probs"])
    v0 = (PI * exact[0]).sum(axis=1)
    np.testing.assert_allclose(v_hat[:, 0], v0[tree["states"][:, 0]], atol=1e-6, rtol=0)
    t_idx = np.arange(H)[None, :]
    np.testing.assert_allclose(q_hat, exact[t_idx, tree["states"], tree["actions"]], atol=1e-6)


def test_too_few_rounds_truncate_the_horizon(tree: dict[str, np.ndarray]) -> None:
    """With one round, Q_1 = r: the bootstrap starts from Q_0 = 0."""
    model = fit(tree, FQEConfig(kind="tabular", time_feature=True, iterations=1))
    np.testing.assert_allclose(model.q(np.eye(S, dtype=np.float32), np.zeros(S)), R, atol=1e-7)


def test_callable_policy_matches_array(tree: dict[str, np.ndarray]) -> None:
    config = FQEConfig(kind="tabular", time_feature=True, iterations=H, chunk_rows=7)
    by_array = fit(tree, config)
    by_call = fit(tree, config, probs=lambda obs: PI[obs.argmax(axis=1)])
    eye = np.eye(S, dtype=np.float32)
    for t in range(H):
        assert np.array_equal(by_array.q(eye, np.full(S, t)), by_call.q(eye, np.full(S, t)))


def test_infinite_horizon_bellman_solve_with_next_obs() -> None:
    """One-step transitions with explicit next states, never terminal: the stationary tabular
    FQE converges to ``Q = (I - γ P_π)^-1 r``."""
    s, a, nxt = np.meshgrid(np.arange(S), np.arange(A), np.arange(S), indexing="ij")
    reps = (4 * P).astype(int).ravel()
    s, a, nxt = (np.repeat(v.ravel(), reps)[:, None] for v in (s, a, nxt))
    p_pi = np.einsum("sat,tb->satb", P, PI).reshape(S * A, S * A)
    exact = np.linalg.solve(np.eye(S * A) - GAMMA * p_pi, R.ravel()).reshape(S, A)
    model = fit_fqe(
        one_hot(s),
        a,
        R[s, a],
        np.ones(s.shape, dtype=bool),
        PI[s],
        GAMMA,
        FQEConfig(kind="tabular", iterations=400),
        one_hot(nxt),
        next_target_probs=PI[nxt],
        terminals=np.zeros(s.shape, dtype=bool),
    )
    np.testing.assert_allclose(model.q(np.eye(S, dtype=np.float32)), exact, atol=1e-6, rtol=0)


def test_episode_end_stops_the_bootstrap() -> None:
    """One state, reward 1, episodes of lengths 1, 2, 2, 3 and γ = 0.5. Time-indexed:
    Q_2 = 1, Q_1 = 1 + γ (1/3) Q_2 = 7/6, Q_0 = 1 + γ (3/4) Q_1 = 1.4375. Stationary: 4 of the
    8 steps bootstrap, Q = 1 + γ (4/8) Q = 4/3."""
    mask = np.arange(3)[None, :] < np.array([1, 2, 2, 3])[:, None]
    obs = np.where(mask[..., None], 0.0, np.nan).astype(np.float32)  # padding holds NaN
    args = (obs, np.zeros((4, 3), dtype=np.int64), np.where(mask, 1.0, np.nan), mask)
    probs = np.ones((4, 3, 1), dtype=np.float32)
    timed = fit_fqe(*args, probs, 0.5, FQEConfig(kind="tabular", time_feature=True))
    got = timed.q(np.zeros((3, 1), dtype=np.float32), np.arange(3))[:, 0]
    np.testing.assert_allclose(got, [1.4375, 7 / 6, 1.0], atol=1e-7)
    flat = fit_fqe(*args, probs, 0.5, FQEConfig(kind="tabular", iterations=60))
    assert flat.q(np.zeros((1, 1), dtype=np.float32))[0, 0] == pytest.approx(4 / 3, abs=1e-6)
    q_hat, v_hat = timed.estimates(obs, args[1], probs, mask=mask)
    assert np.array_equal(q_hat, v_hat) and (q_hat[~mask] == 0).all()
    np.testing.assert_allclose(q_hat[3], [1.4375, 7 / 6, 1.0], atol=1e-6)


def test_linear_fqe_on_one_hot_bandit_is_exact() -> None:
    """H = 1: Q(s, a) is the mean reward of each cell; per-action least squares on one-hot
    states (ridge 0) recovers it exactly; a huge ridge gives the pooled fit instead."""
    s = np.repeat(np.arange(S), 2 * A)[:, None]
    a = np.tile(np.repeat(np.arange(A), 2), S)[:, None]
    noise = np.tile([0.1, -0.1], S * A)[:, None]  # zero-mean per cell
    mask = np.ones(s.shape, dtype=bool)
    model = fit_fqe(
        one_hot(s), a, R[s, a] + noise, mask, PI[s], GAMMA, FQEConfig(kind="linear", ridge=0.0)
    )
    np.testing.assert_allclose(model.q(np.eye(S, dtype=np.float32)), R, atol=1e-5)
    pooled = fit_fqe(
        one_hot(s), a, R[s, a] + noise, mask, PI[s], GAMMA, FQEConfig(kind="linear", ridge=1e12)
    )  # an infinite ridge leaves the fit pooled over actions: each state's mean reward
    expected = np.repeat(R.mean(axis=1, keepdims=True), A, axis=1)
    np.testing.assert_allclose(pooled.q(np.eye(S, dtype=np.float32)), expected, atol=1e-4)


MLP = FQEConfig(
    kind="mlp",
    hidden=(64, 64),
    lr=1e-3,
    batch_size=1024,
    iterations=6,
    steps_per_iteration=200,
    time_feature=True,
    device="cpu",
)


@pytest.fixture(scope="module")
def mlp_model(tree: dict[str, np.ndarray]):  # type: ignore[no-untyped-def]
    return fit(tree, MLP)


def test_neural_fqe_is_close_to_exact(tree: dict[str, np.ndarray], mlp_model) -> None:  # type: ignore[no-untyped-def]
    exact = exact_finite_q()
    eye = np.eye(S, dtype=np.float32)
    for t in range(H):
        np.testing.assert_allclose(mlp_model.q(eye, np.full(S, t)), exact[t], atol=0.03)


def test_v_hat_is_the_policy_average_of_q(tree: dict[str, np.ndarray], mlp_model) -> None:  # type: ignore[no-untyped-def]
    obs, actions, probs = tree["obs"][:50], tree["actions"][:50], tree["probs"][:50]
    q_hat, v_hat = mlp_model.estimates(obs, actions, probs)
    q = mlp_model.q(obs.reshape(-1, S), np.tile(np.arange(H), 50)).reshape(50, H, A)
    np.testing.assert_allclose(v_hat, (probs * q).sum(axis=2), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(q_hat, np.take_along_axis(q, actions[..., None], 2)[..., 0])


def test_mlp_is_reproducible_under_a_seed(tree: dict[str, np.ndarray], mlp_model) -> None:  # type: ignore[no-untyped-def]
    small = FQEConfig(**{**MLP.__dict__, "iterations": 2, "steps_per_iteration": 20})
    obs = np.eye(S, dtype=np.float32)
    first = fit(tree, small).q(obs, np.zeros(S))
    assert np.array_equal(first, fit(tree, small).q(obs, np.zeros(S)))
    other = FQEConfig(**{**small.__dict__, "seed": 1})
    assert not np.array_equal(first, fit(tree, other).q(obs, np.zeros(S)))


def test_bad_input_is_refused(tree: dict[str, np.ndarray], mlp_model) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match="kind"):
        FQEConfig(kind="forest")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="t is required"):
        mlp_model.q(np.eye(S, dtype=np.float32))
    with pytest.raises(ConfigError, match="actions must be in"):
        bad = tree["actions"] + 5
        fit_fqe(tree["obs"], bad, tree["rewards"], tree["mask"], tree["probs"], GAMMA, MLP)
    with pytest.raises(ConfigError, match="gamma"):
        fit_fqe(
            tree["obs"], tree["actions"], tree["rewards"], tree["mask"], tree["probs"], 1.5, MLP
        )
