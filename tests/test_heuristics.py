"""Heuristic baselines: random, most popular (exact ranking), greedy on the simulator."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import noetik.envs  # noqa: F401
from noetik.agents.algorithms.heuristics import PopularConfig, RandomConfig
from noetik.agents.core.base import Agent, ProblemSpec
from noetik.agents.networks.encoders import History
from noetik.data.rewards import RewardConfig
from noetik.data.transitions import ItemVocab, Transitions, episode_links
from noetik.evaluation.oracle import GreedyConfig
from noetik.simulators.kuairand.world import load_world

ENV_ID = "noetik/KuaiRand-v0"


def _log(actions: list[int], clicks: list[float], n_items: int) -> Transitions:
    n = len(actions)
    signals = np.zeros((n, 12), dtype=np.float32)
    signals[:, 0] = clicks
    done, next_index = episode_links(np.zeros(n, dtype=np.int64))
    return Transitions(
        obs=np.zeros((n, 128), dtype=np.float16),
        action=np.asarray(actions, dtype=np.int64),
        reward=np.zeros(n, dtype=np.float32),
        done=done,
        next_index=next_index,
        episode_id=np.zeros(n, dtype=np.int64),
        step=np.arange(n, dtype=np.int32),
        user_id=np.zeros(n, dtype=np.int32),
        time_ms=np.arange(n, dtype=np.int64) * 1000,
        signals=signals,
        vocab=ItemVocab.from_ids(np.arange(100, 100 + n_items)),
        reward_config=RewardConfig(),
    )


def test_random_is_uniform_and_seeded() -> None:
    agent = RandomConfig(seed=3, device="cpu").create(ProblemSpec(4, obs_dim=2))
    actions = agent.act(torch.zeros(40_000, 2))
    freq = torch.bincount(actions, minlength=4).float() / 40_000
    assert torch.allclose(freq, torch.full((4,), 0.25), atol=0.01)
    again = RandomConfig(seed=3, device="cpu").create(ProblemSpec(4, obs_dim=2))
    assert torch.equal(again.act(torch.zeros(50, 2)), actions[:50])
    # scores are uniform noise too: their argmax (what the evaluation takes) is uniform
    best = agent.scores(torch.zeros(40_000, 2)).argmax(1)
    freq = torch.bincount(best, minlength=4).float() / 40_000
    assert torch.allclose(freq, torch.full((4,), 0.25), atol=0.01)
    assert not torch.equal(best[:50], agent.scores(torch.zeros(50, 2)).argmax(1))


def test_most_popular_ranks_by_counts_exactly(tmp_path: Path) -> None:
    # exposures: item 3 x4, item 1 x3, items 0 and 4 x2 (tie: lower index first), item 2 x0
    actions = [3, 1, 3, 0, 4, 3, 1, 0, 4, 1, 3]
    clicks = [0, 1, 0, 0, 1, 0, 1, 0, 1, 1, 1]  # clicks: 1 x3, 4 x2, 3 x1, others 0
    log = _log(actions, clicks, 5)
    spec = ProblemSpec.from_transitions(log)
    agent = PopularConfig(device="cpu").create(spec)
    agent.fit(log, out_dir=tmp_path / "run")
    assert agent.counts.tolist() == [2.0, 3.0, 0.0, 4.0, 2.0]
    obs = torch.zeros(1, 128)
    order = agent.scores(obs).argsort(descending=True, stable=True)[0].tolist()
    assert order == [3, 1, 0, 4, 2]
    # step t of a session shows the t-th most popular item not in the history window
    shown: list[int] = []
    for _ in range(5):
        items = torch.tensor([[*shown, *[5] * (5 - len(shown))]])
        mask = items < 5
        hist = History(items, torch.zeros(1, 5, 12), torch.zeros(1, 5), mask)
        shown.append(int(agent.act(obs, hist)))
    assert shown == [3, 1, 0, 4, 2]
    by_click = PopularConfig(signal="is_click", device="cpu").create(spec)
    by_click.fit(log)
    assert by_click.act(obs).tolist() == [1]
    assert by_click.scores(obs).argsort(descending=True, stable=True)[0].tolist()[:3] == [1, 4, 3]
    loaded = Agent.load(tmp_path / "run" / "checkpoint")
    assert torch.equal(loaded.scores(obs), agent.scores(obs))


def test_most_popular_matches_items_by_video_id() -> None:
    log = _log([0, 0, 2], [0, 0, 0], 3)  # video ids 100, 101, 102
    spec = ProblemSpec(3, video_ids=np.array([102, 100, 999]))
    agent = PopularConfig(device="cpu").create(spec)
    agent.fit(log)
    assert agent.counts.tolist() == [1.0, 2.0, 0.0]


def test_greedy_picks_the_argmax_of_expected_reward(sim_dir: str, tmp_path: Path) -> None:
    env = gym.make_vec(ENV_ID, num_envs=6, vectorization_mode="vector_entry_point", sim_dir=sim_dir)
    obs, _ = env.reset(seed=0)
    spec = ProblemSpec.from_env(env)
    agent = GreedyConfig.for_env(env, device="cpu", chunk_rows=500).create(spec)
    sim = load_world(sim_dir, None, "cpu").sim
    pool = env.unwrapped.simulator.item_model.pool
    world = load_world(sim_dir, None, "cpu")
    known = world.tables.action_duration_known[pool]
    a = len(pool)
    for b in range(len(obs)):  # brute force: one model call per user over the whole pool
        pred = sim.predict(np.repeat(obs[b : b + 1], a, axis=0), pool)
        expected = 0.5 * pred["is_click"] + 0.5 * pred["watch_ratio"] * known
        got = agent.scores(torch.as_tensor(obs[b : b + 1]))[0].numpy()
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
        assert int(agent.act(torch.as_tensor(obs[b : b + 1]))[0]) == int(np.argmax(expected))
    clicks = GreedyConfig.for_env(env, device="cpu", reward=(("is_click", 1.0),)).create(spec)
    p_click = np.stack(
        [sim.predict(np.repeat(obs[b : b + 1], a, 0), pool)["is_click"] for b in range(len(obs))]
    )
    assert clicks.act(torch.as_tensor(obs)).tolist() == p_click.argmax(1).tolist()
    agent.save(tmp_path / "greedy")
    loaded = Agent.load(tmp_path / "greedy", device="cpu")
    assert torch.equal(loaded.act(torch.as_tensor(obs)), agent.act(torch.as_tensor(obs)))
    greedy_reward = _mean_reward(env, agent)
    random_reward = _mean_reward(env, RandomConfig(device="cpu").create(spec))
    assert greedy_reward > random_reward


def _mean_reward(env: gym.vector.VectorEnv, agent: Agent) -> float:  # type: ignore[type-arg]
    obs, _ = env.reset(seed=1)
    total = 0.0
    for _ in range(10):
        obs, reward, *_ = env.step(agent.act(torch.as_tensor(obs)).numpy())
        total += float(np.mean(reward))
    return total
