"""The decision-task environments: seeding, the designs of the four hBayesDM tasks, and each
task's payoff scheme (check_env runs on every id in tests/test_envs_core.py)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from noetik.data.choices import PRESETS
from noetik.envs import DECISION_ENV_IDS
from noetik.envs.decision import DecisionEnv
from noetik.errors import ConfigError


def _play(env_id: str, seed: int, steps: int, **options: Any) -> list[tuple[Any, ...]]:
    """(obs, reward, terminated, info outcomes) of ``steps`` steps with fixed actions."""
    env = gym.make(env_id, **options)
    obs, _ = env.reset(seed=seed)
    actions = np.random.default_rng(99).integers(0, int(env.action_space.n), steps)
    out: list[tuple[Any, ...]] = [(obs,)]
    for action in actions:
        obs, reward, terminated, _, info = env.step(int(action))
        out.append((obs, reward, terminated, info["outcomes"], info["option_values"]))
        if terminated:
            obs, _ = env.reset()
            out.append((obs,))
    return out


def _same(a: list[tuple[Any, ...]], b: list[tuple[Any, ...]]) -> bool:
    return len(a) == len(b) and all(
        all(np.array_equal(x, y) for x, y in zip(p, q, strict=True))
        for p, q in zip(a, b, strict=True)
    )


@pytest.mark.parametrize("env_id", DECISION_ENV_IDS)
def test_same_seed_same_episodes_other_seed_other(env_id: str) -> None:
    first = _play(env_id, 7, 150, n_trials=60)
    assert _same(first, _play(env_id, 7, 150, n_trials=60))
    assert not _same(first, _play(env_id, 8, 150, n_trials=60))


@pytest.mark.parametrize(
    ("env_id", "preset"),
    [
        ("noetik/Bandit2Arm-v0", "bandit2arm"),
        ("noetik/Bandit4Arm-v0", "bandit4arm"),
        ("noetik/IowaGambling-v0", "igt"),
        ("noetik/TwoStep-v0", "two-step"),
    ],
)
def test_environments_share_the_designs_of_the_data(env_id: str, preset: str) -> None:
    """Simulated episodes have the shape of the episodes read from the task's file."""
    env = gym.make(env_id).unwrapped
    assert isinstance(env, DecisionEnv)
    assert env.design == PRESETS[preset].design()


@pytest.mark.parametrize("env_id", DECISION_ENV_IDS)
def test_runs_end_after_n_trials_and_refuse_bad_use(env_id: str) -> None:
    env = gym.make(env_id, n_trials=3)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="options in"):
        env.step(7)
    done, steps, info = False, 0, {}
    while not done:
        _, _, done, _, info = env.step(0)
        steps += 1
    assert info["trial"] == 3 and steps == 3 * len(env.unwrapped.design.n_options)
    with pytest.raises(RuntimeError, match="over"):
        env.step(0)
    with pytest.raises(ConfigError, match="colour"):
        gym.make(env_id, colour="red")
    with pytest.raises(ConfigError, match="n_trials"):
        gym.make(env_id, n_trials=0)


@pytest.mark.parametrize("shuffle", [True, False])
def test_iowa_gambling_task_pays_the_standard_scheme(shuffle: bool) -> None:
    """Every 10 cards: decks A and B net -250, C and D +250 (Bechara et al., 1994)."""
    env = gym.make("noetik/IowaGambling-v0", n_trials=80, shuffle=shuffle)
    env.reset(seed=3)
    nets: dict[int, list[float]] = {deck: [] for deck in range(4)}
    gains: dict[int, set[float]] = {deck: set() for deck in range(4)}
    for deck in np.repeat(np.arange(4), 20):
        _, reward, _, _, info = env.step(int(deck))
        nets[int(deck)].append(reward)
        gains[int(deck)].add(info["gain"])
    for deck, expected in enumerate((-250, -250, 250, 250)):
        blocks = np.asarray(nets[deck]).reshape(2, 10).sum(axis=1)
        assert blocks.tolist() == [expected, expected]
    assert [gains[d] for d in range(4)] == [{100.0}, {100.0}, {50.0}, {50.0}]


def test_two_step_transitions_and_drifting_probabilities() -> None:
    env = gym.make("noetik/TwoStep-v0", n_trials=3_000).unwrapped
    env.reset(seed=0)
    common, walk, rewards = [], [], []
    for t in range(3_000):
        first = t % 2
        _, _, _, _, info = env.step(first)
        common.append(info["state"] == first)
        _, reward, _, _, info = env.step(0)
        walk.append(info["option_values"])
        rewards.append((info["choice"], reward))
    assert abs(np.mean(common) - 0.7) < 0.03
    p = np.asarray(walk)
    assert p.min() >= 0.25 and p.max() <= 0.75
    inside = (p[:-1] > 0.3) & (p[:-1] < 0.7)
    assert abs(np.diff(p, axis=0)[inside].std() - 0.025) < 0.002
    choice, reward = np.asarray(rewards).T
    assert set(np.unique(choice)) == {0.0, 2.0}  # option 0 of state A or of state B
    assert abs(reward.mean() - p[np.arange(3_000), choice.astype(int)].mean()) < 0.03


def test_four_armed_bandit_gains_and_losses_follow_their_chances() -> None:
    env = gym.make("noetik/Bandit4Arm-v0", n_trials=4_000, drift_sd=0.0)
    _, info = env.reset(seed=1)
    p = info["option_values"]
    outcomes = np.asarray([env.step(2)[4]["outcomes"] for _ in range(4_000)])
    assert abs((outcomes[:, 0] == 1).mean() - p[2]) < 0.03  # p_gain of arm 3
    assert abs((outcomes[:, 1] == -1).mean() - p[4 + 2]) < 0.03  # p_loss of arm 3
    assert set(np.unique(outcomes)) <= {-1.0, 0.0, 1.0}


def test_reversal_learning_reverses_after_the_criterion() -> None:
    env = gym.make("noetik/ReversalLearning-v0", n_trials=60, min_block=10, criterion=4)
    task = env.unwrapped
    assert isinstance(task, DecisionEnv)
    env.reset(seed=2)
    good = []
    for _ in range(60):  # a participant who always picks the good option
        good.append(int(np.argmax(task.option_values)))
        info = env.step(good[-1])[4]
        assert info["option_values"][good[-1]] == 0.8
    switches = np.flatnonzero(np.diff(good)) + 1
    assert switches.tolist() == [10, 20, 30, 40, 50]  # every min_block trials
    env.reset(seed=2)
    first = task.option_values
    for _ in range(60):  # always the bad option: the criterion is never met
        env.step(int(np.argmin(first)))
        assert np.array_equal(task.option_values, first)
