"""Episode bookkeeping of next-step-autoreset rollouts: hand-computed and step-by-step answers."""

from __future__ import annotations

import numpy as np

from noetik.agents.onpolicy.episode_log import episode_log


def stepwise(reward, term, trunc, ended, carry):  # type: ignore[no-untyped-def]
    """The per-step reference: what a rollout loop does one ``env.step`` at a time."""
    ended, ret = ended.copy(), carry.astype(np.float64).copy()
    valid = np.zeros_like(term)
    masked = np.zeros_like(reward)
    returns = []
    for t in range(len(reward)):
        valid[t] = ~ended
        masked[t] = np.where(valid[t], reward[t], 0.0)
        ret += masked[t]
        ended = (term[t] | trunc[t]) & valid[t]
        returns.extend(ret[ended])
        ret[ended] = 0.0
    return valid, masked, np.array(returns), ended, ret


def test_hand_computed_two_envs() -> None:
    # env 0: ends at t=1 (terminated), restarts at t=2; env 1: truncated at t=0 and again at t=1
    # (t=1 is its autoreset row, so that second flag is ignored)
    reward = np.array([[1.0, 10.0], [2.0, 20.0], [4.0, 40.0], [8.0, 80.0]], dtype=np.float32)
    term = np.array([[0, 0], [1, 0], [0, 0], [0, 0]], dtype=bool)
    trunc = np.array([[0, 1], [0, 1], [0, 0], [0, 0]], dtype=bool)
    log = episode_log(
        reward, term, trunc, ended=np.array([False, False]), carry=np.array([0.5, 0.0])
    )
    np.testing.assert_array_equal(log.valid, [[1, 1], [1, 0], [0, 1], [1, 1]])
    np.testing.assert_array_equal(log.truncated, [[0, 1], [0, 0], [0, 0], [0, 0]])
    np.testing.assert_array_equal(log.reward, [[1, 10], [2, 0], [0, 40], [8, 80]])
    np.testing.assert_allclose(log.returns, [10.0, 3.5])  # (t=0, env 1), then (t=1, env 0)
    np.testing.assert_array_equal(log.ended, [False, False])
    np.testing.assert_allclose(log.carry, [8.0, 120.0])


def test_matches_the_stepwise_loop_on_random_rollouts() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        t_max, n = rng.integers(1, 30), rng.integers(1, 5)
        reward = rng.normal(size=(t_max, n)).astype(np.float32)
        term, trunc = rng.random((t_max, n)) < 0.2, rng.random((t_max, n)) < 0.1
        ended, carry = rng.random(n) < 0.3, rng.normal(size=n)
        valid, masked, returns, last, ret = stepwise(reward, term, trunc, ended, carry)
        log = episode_log(reward, term, trunc, ended=ended, carry=carry)
        np.testing.assert_array_equal(log.valid, valid)
        np.testing.assert_array_equal(log.reward, masked)
        np.testing.assert_array_equal(log.terminated, term & valid)
        np.testing.assert_allclose(log.returns, returns, rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(log.ended, last)
        np.testing.assert_allclose(log.carry, ret, rtol=1e-9, atol=1e-9)
