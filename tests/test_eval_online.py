"""Online evaluation: sessions in a batched env, pool mapping of agent actions, bootstrap CIs."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch

import noetik.envs  # noqa: F401
from noetik.agents.base import Agent, AgentConfig, ProblemSpec
from noetik.evaluation.online import EnvPolicy, bootstrap_ci, run_sessions


class FixedScores(Agent):
    """Scores every action by a fixed vector (the same for every user)."""

    def __init__(self, config: AgentConfig, spec: ProblemSpec) -> None:
        super().__init__(config, spec)
        self.weights = torch.nn.Parameter(torch.arange(spec.n_actions, dtype=torch.float32))

    def scores(self, obs: torch.Tensor, history: Any = None) -> torch.Tensor:
        return self.weights.expand(obs.shape[0], -1)


def _agent(n_actions: int, video_ids: np.ndarray | None) -> FixedScores:
    return FixedScores(AgentConfig(device="cpu"), ProblemSpec(n_actions, 5, None, video_ids))


def test_bootstrap_ci_known_answers() -> None:
    assert bootstrap_ci(np.full(50, 2.5)) == (2.5, 2.5, 2.5)
    mean, low, high = bootstrap_ci(np.arange(1_000, dtype=float))
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
    from noetik.evaluation.online import _history_map

    agent = _agent(4, np.array([10, 20, 30, 40]))
    mapping = _history_map(agent, np.array([40, 30, 20, 10, 99]))
    assert mapping is not None
    # video 99 is unknown, and the env's padding index 5 maps to the agent's padding index 4
    assert mapping.tolist() == [3, 2, 1, 0, 4, 4]
