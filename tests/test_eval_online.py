"""Online evaluation: sessions in a batched env, pool mapping of agent actions, bootstrap CIs,
session metrics (diversity, coverage) with hand-computed answers, seeds."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

import noetik.envs  # noqa: F401
from noetik.agents.core.base import Agent, AgentConfig, ProblemSpec
from noetik.errors import ConfigError
from noetik.evaluation.online.metrics import (
    bootstrap_table,
    coverage,
    distinct_fraction,
    intra_similarity,
    session_lengths,
)
from noetik.evaluation.online.sessions import (
    EnvPolicy,
    acts_on_history,
    catalogue,
    evaluate_online,
    evaluate_policy,
    make_eval_envs,
    pool_sessions,
    run_sessions,
)
from noetik.utils.bootstrap import bootstrap_means


class FixedScores(Agent):
    """Scores every action by a fixed vector (the same for every user)."""

    def __init__(self, config: AgentConfig, spec: ProblemSpec) -> None:
        super().__init__(config, spec)
        self.weights = torch.nn.Parameter(torch.arange(spec.n_actions, dtype=torch.float32))

    def scores(self, obs: torch.Tensor, history: Any = None) -> torch.Tensor:
        return self.weights.expand(obs.shape[0], -1)


def _agent(n_actions: int, video_ids: np.ndarray | None) -> FixedScores:
    return FixedScores(AgentConfig(device="cpu"), ProblemSpec(n_actions, 5, None, video_ids))


def _mean_ci(values: np.ndarray, n_boot: int = 2_000, seed: int = 0) -> tuple[float, ...]:
    """``(mean, low, high)`` of ``values`` by the one bootstrap."""
    est = bootstrap_means({"v": values}, n_boot=n_boot, seed=seed)["v"]
    return est.mean, est.low, est.high


def test_bootstrap_ci_known_answers() -> None:
    assert _mean_ci(np.full(50, 2.5)) == (2.5, 2.5, 2.5)
    mean, low, high = _mean_ci(np.arange(1_000, dtype=float))
    assert mean == pytest.approx(499.5)
    half = 1.96 * np.arange(1_000).std() / np.sqrt(1_000)  # normal approximation
    assert low == pytest.approx(mean - half, rel=0.02)
    assert high == pytest.approx(mean + half, rel=0.02)


def test_sessions_sum_the_rewards_of_each_user() -> None:
    envs = gym.make_vec("noetik/RECEnv-v0", num_envs=8, vectorization_mode="vector_entry_point")
    rewards: list[np.ndarray] = []

    def policy(obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        return np.full(len(obs), 3, dtype=np.int64)

    stats = run_sessions(envs, policy, seed=4)
    assert (stats.lengths == 10).all()
    envs.reset(seed=4)
    for _ in range(10):
        rewards.append(envs.step(np.full(8, 3, dtype=np.int64))[1])
    np.testing.assert_allclose(stats.returns, np.sum(rewards, axis=0))


def test_env_policy_maps_the_pool_to_the_agents_videos() -> None:
    class Pool:
        candidate_video_ids = np.array([40, 10, 99, 30])

    agent = _agent(4, np.array([10, 20, 30, 40]))  # scores 0, 1, 2, 3 by action index
    policy = EnvPolicy(agent, Pool())
    assert policy.pool_actions is not None
    assert policy.pool_actions.tolist() == [3, 0, -1, 2]  # video 99 is unknown to the agent
    actions = policy(np.zeros((2, 5), dtype=np.float32), {})
    assert actions.tolist() == [0, 0]  # pool slot 0 is video 40, the agent's best (score 3)


def test_env_policy_without_pool_uses_agent_actions() -> None:
    policy = EnvPolicy(_agent(6, None), object())
    assert policy(np.zeros((3, 5), dtype=np.float32), {}).tolist() == [5, 5, 5]


def test_history_items_are_mapped_from_env_vocabulary_to_agent_actions() -> None:
    from noetik.agents.onpolicy.history import history_map as _history_map

    agent = _agent(4, np.array([10, 20, 30, 40]))
    mapping = _history_map(agent, np.array([40, 30, 20, 10, 99]))
    assert mapping is not None
    # video 99 is unknown, and the env's padding index 5 maps to the agent's padding index 4
    assert mapping.tolist() == [3, 2, 1, 0, 4, 4]


# -- session metrics with known answers ---------------------------------------------------------

#: Four sessions, T = 4 (columns are users; -1 = the session has ended).
ITEMS = np.array(
    [
        [5, 1, 4, -1],
        [5, 2, -1, -1],
        [7, 3, -1, -1],
        [5, -1, -1, -1],
    ]
)
#: Item features: 5 and 1 point along x, 7 along y, 2 diagonal, 3 along y, 0 has none.
FEATURES = np.array(
    [[0, 0], [1, 0], [1, 1], [0, 2], [3, 4], [1, 0], [9, 9], [0, 1]], dtype=np.float64
)


def test_distinct_fraction_by_hand() -> None:
    got = distinct_fraction(ITEMS)
    np.testing.assert_array_equal(got[:3], [2 / 4, 3 / 3, 1 / 1])  # 5,5,7,5: two distinct
    assert np.isnan(got[3])  # no steps
    assert session_lengths(ITEMS).tolist() == [4, 3, 1, 0]


def test_intra_similarity_by_hand() -> None:
    got = intra_similarity(ITEMS, FEATURES)
    # user 0: steps 5,5,7,5 -> 6 pairs: three 5-5 (cos 1) and three 5-7 (cos 0)
    assert got[0] == pytest.approx(0.5)
    # user 1: items 1,2,3 -> cos(1,2) = cos(2,3) = 1/sqrt(2), cos(1,3) = 0
    assert got[1] == pytest.approx(np.sqrt(2) / 3)
    assert np.isnan(got[2]) and np.isnan(got[3])  # fewer than two steps
    # item 0 has no feature direction: it takes part in no pair
    assert intra_similarity(np.array([[0], [1], [1]]), FEATURES)[0] == pytest.approx(1.0)


def test_intra_similarity_matches_brute_force() -> None:
    rng = np.random.default_rng(7)
    features = rng.normal(size=(20, 6))
    items = rng.integers(0, 20, size=(7, 30))
    items[rng.integers(1, 7, size=30), np.arange(30)] = -1
    items = np.where(np.cumsum(items < 0, axis=0) > 0, -1, items)  # ended sessions stay ended
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    for u, got in enumerate(intra_similarity(items, features)):
        shown = items[items[:, u] >= 0, u]
        pairs = [unit[a] @ unit[b] for i, a in enumerate(shown) for b in shown[i + 1 :]]
        assert got == pytest.approx(np.mean(pairs)) if pairs else np.isnan(got)


def test_coverage_by_hand() -> None:
    assert coverage(ITEMS, 10) == pytest.approx(6 / 10)  # items 1, 2, 3, 4, 5, 7
    with pytest.raises(ConfigError, match="n_items"):
        coverage(ITEMS, 0)


def test_bootstrap_table_means_skip_missing_values_and_share_resamples() -> None:
    table = bootstrap_table(
        {"a": np.array([1.0, np.nan, 3.0]), "b": np.array([2.0, 2.0, 2.0])}, n_boot=500
    )
    assert table["a"]["mean"] == 2.0
    assert table["a"]["low"] >= 1.0 and table["a"]["high"] <= 3.0
    assert table["b"] == {"mean": 2.0, "low": 2.0, "high": 2.0}
    assert _mean_ci(np.array([1.0, 3.0]), n_boot=500, seed=3) == _mean_ci(
        np.array([1.0, 3.0]), n_boot=500, seed=3
    )


def test_coverage_interval_is_recentred_on_the_observed_coverage() -> None:
    # two users who saw one item each out of 4: a resample covers 2 items (both users drawn,
    # probability 1/2) or 1; shifted to the observed 0.5, the interval is ~[0.375, 0.625]
    items = np.array([[0, 1]])
    table = bootstrap_table({"x": np.zeros(2)}, items, 4, n_boot=4_000, seed=1)
    assert table["coverage"]["mean"] == 0.5
    assert table["coverage"]["low"] == pytest.approx(0.375, abs=0.01)
    assert table["coverage"]["high"] == pytest.approx(0.625, abs=0.01)


class Steps(gym.vector.VectorEnv):  # type: ignore[type-arg]
    """User ``i`` leaves after ``i + 1`` steps; reward = action; obs = the user's index."""

    def __init__(self, num_envs: int) -> None:
        self.num_envs = num_envs
        self.single_action_space = gym.spaces.Discrete(9)
        self.t = np.zeros(num_envs, dtype=np.int64)

    def reset(self, *, seed: int | None = None, options: Any = None) -> Any:
        self.t[:] = 0
        return np.arange(self.num_envs, dtype=np.float32)[:, None], {"user": np.arange(4)}

    def step(self, actions: Any) -> Any:
        self.t += 1
        done = self.t >= np.arange(1, self.num_envs + 1)
        obs = np.arange(self.num_envs, dtype=np.float32)[:, None]
        return obs, actions * 1.0, done, np.zeros_like(done), {"user": np.arange(4)}


def test_policy_sees_only_users_still_in_session() -> None:
    asked: list[list[int]] = []

    def policy(obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        assert info["user"].tolist() == obs[:, 0].astype(int).tolist()  # info rows follow obs
        asked.append(info["user"].tolist())
        return info["user"] + 5  # user u is always shown item u + 5

    stats = run_sessions(Steps(4), policy)
    assert asked == [[0, 1, 2, 3], [1, 2, 3], [2, 3], [3]]
    assert stats.lengths.tolist() == [1, 2, 3, 4]
    assert stats.returns.tolist() == [5.0, 12.0, 21.0, 32.0]
    assert stats.items is not None
    assert stats.items[:, 0].tolist() == [5, -1, -1, -1]
    assert stats.items[:, 3].tolist() == [8, 8, 8, 8]


def test_constant_policy_covers_one_item_with_no_new_items() -> None:
    envs = gym.make_vec(
        "noetik/RECEnv-v0",
        num_envs=32,
        vectorization_mode="vector_entry_point",
        n_items=50,
        step_per_episode=10,
    )
    table = evaluate_policy(lambda obs, info: np.full(len(obs), 7), envs, n_boot=200)
    assert table["coverage"] == {"mean": 1 / 50, "low": 1 / 50, "high": 1 / 50}
    assert table["distinct_fraction"] == pytest.approx({"mean": 0.1, "low": 0.1, "high": 0.1})
    assert table["intra_similarity"]["mean"] == pytest.approx(1.0)
    assert table["length"]["mean"] == 10.0
    assert "is_click_rate" not in table  # RECEnv reports no click signal


def _random_policy(seed: int, n: int) -> Any:
    rng = np.random.default_rng(seed)
    return lambda obs, info: rng.integers(0, n, size=len(obs))


def test_intervals_contain_the_mean_and_seeds_reproduce() -> None:
    def run(policy_seed: int, seeds: tuple[int, ...]) -> dict[str, dict[str, float]]:
        envs = gym.make_vec(
            "noetik/RECEnv-v0", num_envs=200, n_items=30, vectorization_mode="vector_entry_point"
        )
        return evaluate_policy(_random_policy(policy_seed, 30), envs, seeds, n_boot=300)

    table = run(0, (0,))
    for name, row in table.items():
        assert row["low"] <= row["mean"] <= row["high"], name
    assert table["return"]["low"] < table["return"]["high"]
    assert table["coverage"]["mean"] == 1.0  # 2,000 random draws over 30 items cover them all
    assert 0.6 < table["distinct_fraction"]["mean"] < 0.9  # E = (1 - (29/30)^10) * 3 = 0.86
    assert run(0, (0,)) == table
    assert run(1, (0,)) != table


def test_seeds_are_pooled_users_times_seeds() -> None:
    envs = gym.make_vec(
        "noetik/RECEnv-v0", num_envs=50, n_items=30, vectorization_mode="vector_entry_point"
    )
    policy = lambda obs, info: np.full(len(obs), 3)  # noqa: E731
    one = [run_sessions(envs, policy, seed=s).returns.mean() for s in (4, 9)]
    pooled = evaluate_policy(policy, envs, seeds=(4, 9), n_boot=100)
    assert pooled["return"]["mean"] == pytest.approx(np.mean(one))
    stats = pool_sessions([run_sessions(envs, policy, seed=s) for s in (4, 9)])
    assert stats.returns.shape == (100,) and stats.items is not None
    assert stats.items.shape == (10, 100)
    with pytest.raises(ConfigError, match="seeds"):
        evaluate_policy(policy, envs, seeds=())


def test_slate_environments_report_no_catalogue_metrics() -> None:
    envs = gym.make_vec(
        "noetik/InterestEvolution-v0", num_envs=16, vectorization_mode="vector_entry_point"
    )
    slate = envs.single_action_space.shape[0]
    table = evaluate_policy(lambda obs, info: np.zeros((len(obs), slate)), envs, n_boot=50)
    assert {"return", "length"} <= set(table)
    assert not {"coverage", "distinct_fraction", "intra_similarity"} & set(table)


def test_kuairand_similarity_reads_the_tags_the_env_reports(sim_dir: str) -> None:
    envs = make_eval_envs("noetik/KuaiRand-v0", 16, {"sim_dir": sim_dir})
    n_items, features = catalogue(envs)
    assert n_items == envs.single_action_space.n and features is not None
    envs.reset(seed=0)
    actions = np.arange(16) % n_items
    info = envs.step(actions)[4]
    np.testing.assert_array_equal(features[actions], info["tags"])  # (16, 24) tag buckets


def test_kuairand_constant_agent_known_answers(sim_dir: str) -> None:
    envs = make_eval_envs("noetik/KuaiRand-v0", 1, {"sim_dir": sim_dir})
    pool = np.asarray(envs.candidate_video_ids)
    n_items, features = catalogue(envs)
    assert n_items is not None and features is not None
    # the agent knows the pool in reverse order and scores its last action (pool[0]) best
    agent = _agent(len(pool), pool[::-1].copy())
    kw = {"sim_dir": sim_dir}
    table = evaluate_online(agent, "noetik/KuaiRand-v0", 64, kw, n_boot=100, exclude_seen=False)
    assert table["length"]["mean"] == 10.0  # the fixed leave model
    assert table["coverage"]["mean"] == 1 / n_items
    assert table["distinct_fraction"]["mean"] == pytest.approx(0.1)
    if features[0].any():  # the video has tags: every pair of steps is the same video
        assert table["intra_similarity"]["mean"] == pytest.approx(1.0)
    hazard = {"sim_dir": sim_dir, "leave_model": "hazard"}
    first = evaluate_online(
        agent, "noetik/KuaiRand-v0", 64, hazard, seeds=(0, 1), n_boot=100, exclude_seen=False
    )
    assert first == evaluate_online(
        agent, "noetik/KuaiRand-v0", 64, hazard, seeds=(0, 1), n_boot=100, exclude_seen=False
    )
    assert first["length"]["mean"] != table["length"]["mean"]
    for row in first.values():
        assert row["low"] <= row["mean"] <= row["high"]


def test_popular_skips_the_history_window_in_the_simulator(sim_dir: str) -> None:
    from noetik.agents.algorithms.heuristics import PopularConfig

    envs = make_eval_envs("noetik/KuaiRand-v0", 1, {"sim_dir": sim_dir})
    pool = np.asarray(envs.candidate_video_ids)
    spec = ProblemSpec(len(pool), 128, None, pool)
    kwargs = {"sim_dir": sim_dir}
    for exclude_seen, distinct in ((True, 1.0), (False, 0.1)):
        agent = PopularConfig(device="cpu", exclude_seen=exclude_seen).create(spec)
        agent.set_counts(np.arange(len(pool), dtype=np.float64))  # the last video is the top
        assert acts_on_history(agent) is exclude_seen
        table = evaluate_online(
            agent, "noetik/KuaiRand-v0", 32, kwargs, n_boot=50, exclude_seen=False
        )
        # ten steps, a ten-item history window: the skipping agent never repeats in a session
        assert table["distinct_fraction"]["mean"] == pytest.approx(distinct)


def test_the_evaluation_keeps_every_agent_off_the_history_window(sim_dir: str) -> None:
    """exclude_seen (the default) masks the window's videos for any agent: a constant agent
    then walks down its ranking, one new video per step, never one the user saw before."""
    envs = make_eval_envs("noetik/KuaiRand-v0", 8, {"sim_dir": sim_dir, "return_history": True})
    pool = np.asarray(envs.candidate_video_ids)
    agent = _agent(len(pool), pool[::-1].copy())  # prefers pool[0], then pool[1], ...
    policy = EnvPolicy(agent, envs)
    obs, info = envs.reset(seed=0)
    vocab = np.asarray(envs.vocab_video_ids)
    for _ in range(10):
        actions = policy(obs, info)
        seen = np.where(
            info["history_mask"], vocab[np.minimum(info["history_items"], len(vocab) - 1)], -1
        )
        assert not (pool[actions][:, None] == seen).any()
        # the best-ranked video not in the window: the lowest pool index outside it
        for row in range(8):
            assert actions[row] == min(
                set(range(len(pool))) - set(np.flatnonzero(np.isin(pool, seen[row])))
            )
        obs, _, _, _, info = envs.step(actions)
    table = evaluate_online(agent, "noetik/KuaiRand-v0", 32, {"sim_dir": sim_dir}, n_boot=50)
    assert table["distinct_fraction"]["mean"] == 1.0


def test_history_window_is_cut_or_padded_to_the_agents_length() -> None:
    from noetik.agents.onpolicy.history import last_k

    items = np.array([[1, 2, 3]])
    signals = np.arange(3 * 12, dtype=np.float32).reshape(1, 3, 12)
    gaps = np.array([[30.0, 20.0, 10.0]], dtype=np.float32)
    mask = np.array([[True, True, True]])
    cut = last_k((items, signals, gaps, mask), 2, padding=9)
    assert cut[0].tolist() == [[2, 3]] and cut[2].tolist() == [[20.0, 10.0]]
    np.testing.assert_array_equal(cut[1], signals[:, 1:])
    padded = last_k((items, signals, gaps, mask), 5, padding=9)
    assert padded[0].tolist() == [[9, 9, 1, 2, 3]]
    assert padded[3].tolist() == [[False, False, True, True, True]]
    assert padded[1].shape == (1, 5, 12) and not padded[1][0, :2].any()
