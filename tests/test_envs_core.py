"""Every registered environment passes Gymnasium's check_env; the recommendation ones also
keep the seeding contract, batched stepping and info (the decision tasks' own contract is in
tests/test_choices_envs.py)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from noetik.envs import ALL_ENV_IDS, DECISION_ENV_IDS, ENV_IDS
from noetik.errors import ConfigError

#: Small, fast options per id (InterestEvolution sessions shortened by a small budget).
FAST: dict[str, dict[str, object]] = {
    "noetik/RECEnv-v0": {"obs_std": 0.1, "reward_std": 0.5},
    "noetik/InterestEvolution-v0": {"time_budget": 20.0, "choice_model": "mnl"},
    "noetik/KuaiRand-v0": {"leave_model": "hazard"},  # the default simulator (fitted once)
}
INFO_KEYS: dict[str, set[str]] = {
    "noetik/RECEnv-v0": {"user_id", "t", "state", "item_id", "item_features", "reward"},
    "noetik/InterestEvolution-v0": {
        "user_id",
        "t",
        "budget",
        "interests",
        "attention_prob",
        "slate",
        "slate_features",
        "slate_item_ids",
        "click",
        "watch_time",
        "quality",
    },
    "noetik/KuaiRand-v0": {
        "user_id",
        "t",
        "video_id",
        "item",
        "is_click",
        "watch_ratio",
        "pred_is_click",
        "duration_s",
        "tags",
        "item_features",
    },
}


def _rollout(env: gym.Env, seed: int, steps: int) -> list[tuple[object, ...]]:
    actions = np.random.default_rng(123)
    env.action_space.seed(0)
    obs, _ = env.reset(seed=seed)
    out: list[tuple[object, ...]] = [(obs.copy(),)]
    for _ in range(steps):
        action = actions.integers(0, 10, size=env.action_space.shape or None)
        obs, reward, terminated, truncated, _ = env.step(action)
        out.append((obs.copy(), reward, terminated, truncated))
        if terminated or truncated:
            obs, _ = env.reset()
            out.append((obs.copy(),))
    return out


def _same(a: list[tuple[object, ...]], b: list[tuple[object, ...]]) -> bool:
    return len(a) == len(b) and all(
        all(np.array_equal(x, y) for x, y in zip(p, q, strict=True))
        for p, q in zip(a, b, strict=False)
    )


def test_ids_are_registered() -> None:
    assert set(ENV_IDS) == {
        "noetik/RECEnv-v0",
        "noetik/InterestEvolution-v0",
        "noetik/KuaiRand-v0",
    }
    assert set(DECISION_ENV_IDS) == {
        "noetik/Bandit2Arm-v0",
        "noetik/Bandit4Arm-v0",
        "noetik/IowaGambling-v0",
        "noetik/TwoStep-v0",
        "noetik/ReversalLearning-v0",
    }
    assert ALL_ENV_IDS == ENV_IDS + DECISION_ENV_IDS
    assert all(env_id in gym.registry for env_id in ALL_ENV_IDS)


@pytest.mark.parametrize("env_id", ALL_ENV_IDS)
def test_check_env_passes(env_id: str) -> None:
    env = gym.make(env_id, **FAST.get(env_id, {}))
    check_env(env.unwrapped, skip_render_check=True)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_same_trajectory_other_seed_other(env_id: str) -> None:
    first = _rollout(gym.make(env_id, **FAST[env_id]), seed=7, steps=40)
    again = _rollout(gym.make(env_id, **FAST[env_id]), seed=7, steps=40)
    other = _rollout(gym.make(env_id, **FAST[env_id]), seed=8, steps=40)
    assert _same(first, again)
    assert not _same(first, other)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_vector_env_with_one_user_replays_the_single_env(env_id: str) -> None:
    """Contract: make_vec(num_envs=1) with seed s = gym.make with seed s, autoreset included."""
    single = gym.make(env_id, **FAST[env_id])
    vec = gym.make_vec(env_id, num_envs=1, vectorization_mode="vector_entry_point", **FAST[env_id])
    actions = np.random.default_rng(5).integers(0, 10, size=(60, *single.action_space.shape))
    obs, _ = single.reset(seed=3)
    vobs, _ = vec.reset(seed=3)
    np.testing.assert_array_equal(vobs[0], obs)
    done = False
    for action in actions:
        if done:  # the single env resets by hand; the vector env does it on this step
            obs, _ = single.reset()
            vobs, vreward, *_ = vec.step(action[None])
            assert vreward[0] == 0.0
            np.testing.assert_array_equal(vobs[0], obs)
            done = False
            continue
        obs, reward, terminated, truncated, _ = single.step(action)
        vobs, vreward, vterm, vtrunc, _ = vec.step(action[None])
        np.testing.assert_array_equal(vobs[0], obs)
        assert (vreward[0], vterm[0], vtrunc[0]) == (reward, terminated, truncated)
        done = terminated or truncated


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_vector_env_steps_a_batch_with_autoreset(env_id: str) -> None:
    vec = gym.make_vec(env_id, num_envs=64, vectorization_mode="vector_entry_point", **FAST[env_id])
    assert isinstance(vec.unwrapped, gym.vector.VectorEnv)
    obs, info = vec.reset(seed=0)
    assert obs.shape == (64, *vec.single_observation_space.shape)
    assert obs.dtype == np.float32
    vec.action_space.seed(0)
    finished = np.zeros(64, dtype=bool)
    for _ in range(80):
        prev_done = finished
        obs, reward, terminated, truncated, info = vec.step(vec.action_space.sample())
        assert vec.observation_space.contains(obs)
        np.testing.assert_array_equal(info["autoreset"], prev_done)
        assert np.all(reward[prev_done] == 0.0)
        assert np.all(info["t"][prev_done] == 0)
        finished = terminated | truncated
    assert INFO_KEYS[env_id] <= set(info)
    assert all(len(info[k]) == 64 for k in INFO_KEYS[env_id])


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_info_reports_signals_user_and_items(env_id: str) -> None:
    env = gym.make(env_id, **FAST[env_id])
    _, info = env.reset(seed=0)
    assert isinstance(info["user_id"], int) and info["t"] == 0
    *_, info = env.step(env.action_space.sample())
    assert INFO_KEYS[env_id] <= set(info)
    assert info["t"] == 1


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_unknown_or_bad_option_names_the_field(env_id: str) -> None:
    with pytest.raises(ConfigError, match="colour"):
        gym.make(env_id, colour="red")
    with pytest.raises(ConfigError, match="n_users"):
        gym.make(env_id, n_users=0)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_out_of_range_action_is_rejected(env_id: str) -> None:
    env = gym.make(env_id)
    env.reset(seed=0)
    bad = np.full(env.action_space.shape or (), 10_000)
    with pytest.raises(ValueError, match="item indices"):
        env.step(bad)
