"""noetik/KuaiRand-v0: Gymnasium API, seeding, batching, leave models, states, rewards, pool."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import polars as pl
import pytest
from gymnasium.utils.env_checker import check_env

import noetik.envs  # noqa: F401
from noetik.data.dataset import load_kuairand
from noetik.data.features import STATE_SLICES
from noetik.data.rewards import SIGNALS, RewardConfig, reward_from_signals
from noetik.data.schema import FileKind
from noetik.data.state_layout import TIME_SIGNALS
from noetik.errors import ConfigError
from noetik.simulators.kuairand.leave import empirical_hazard, expected_length, session_stats
from noetik.simulators.kuairand.world import load_world

ENV_ID = "noetik/KuaiRand-v0"


def _make(sim_dir: str, **options: object) -> gym.Env:
    return gym.make(ENV_ID, sim_dir=sim_dir, **options)


def _rollout(env: gym.Env, seed: int, steps: int) -> list[tuple[object, ...]]:
    actions = np.random.default_rng(1).integers(0, env.action_space.n, size=steps)
    obs, info = env.reset(seed=seed)
    out: list[tuple[object, ...]] = [(obs, info["user_id"])]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        out.append((obs, reward, terminated, truncated, info["video_id"], info["is_click"]))
        if terminated or truncated:
            obs, info = env.reset()
            out.append((obs, info["user_id"]))
    return out


def _same(a: list[tuple[object, ...]], b: list[tuple[object, ...]]) -> bool:
    return len(a) == len(b) and all(
        len(p) == len(q) and all(np.array_equal(x, y) for x, y in zip(p, q, strict=True))
        for p, q in zip(a, b, strict=True)
    )


def test_check_env_passes(sim_dir: str) -> None:
    check_env(_make(sim_dir).unwrapped, skip_render_check=True)
    check_env(_make(sim_dir, leave_model="hazard").unwrapped, skip_render_check=True)


def test_same_seed_same_trajectory(sim_dir: str) -> None:
    first = _rollout(_make(sim_dir, leave_model="hazard"), seed=4, steps=40)
    again = _rollout(_make(sim_dir, leave_model="hazard"), seed=4, steps=40)
    other = _rollout(_make(sim_dir, leave_model="hazard"), seed=5, steps=40)
    assert _same(first, again)
    assert not _same(first, other)


def test_vector_env_batches_users_with_autoreset(sim_dir: str) -> None:
    vec = gym.make_vec(
        ENV_ID, num_envs=64, vectorization_mode="vector_entry_point", sim_dir=sim_dir
    )
    obs, info = vec.reset(seed=0)
    assert obs.shape == (64, 128) and obs.dtype == np.float32
    assert vec.observation_space.contains(obs)
    done = np.zeros(64, dtype=bool)
    for _ in range(25):
        obs, reward, terminated, truncated, info = vec.step(vec.action_space.sample())
        assert vec.observation_space.contains(obs)
        np.testing.assert_array_equal(info["autoreset"], done)
        assert np.all(reward[done] == 0.0) and np.all(info["t"][done] == 0)
        assert np.all(obs[done, STATE_SLICES["ctx.step"]] == [0.0, 1.0])  # a new session
        done = terminated | truncated
    assert {"user_id", "video_id", "item", "is_click", "pred_is_click", "tags"} <= set(info)
    assert all(len(v) == 64 for v in info.values())


def test_vector_env_with_one_user_replays_the_single_env(sim_dir: str) -> None:
    single = _make(sim_dir, leave_model="hazard")
    vec = gym.make_vec(
        ENV_ID,
        num_envs=1,
        vectorization_mode="vector_entry_point",
        sim_dir=sim_dir,
        leave_model="hazard",
    )
    obs, _ = single.reset(seed=2)
    vobs, _ = vec.reset(seed=2)
    np.testing.assert_array_equal(vobs[0], obs)
    done = False
    for action in np.random.default_rng(0).integers(0, 50, size=40):
        if done:
            obs, _ = single.reset()
            vobs, *_ = vec.step(np.array([action]))
            np.testing.assert_array_equal(vobs[0], obs)
            done = False
            continue
        obs, reward, terminated, truncated, _ = single.step(action)
        vobs, vreward, vterm, vtrunc, _ = vec.step(np.array([action]))
        np.testing.assert_array_equal(vobs[0], obs)
        assert (vreward[0], vterm[0], vtrunc[0]) == (reward, terminated, truncated)
        done = terminated or truncated


def test_fixed_length_episodes_end_at_exactly_ten_steps(sim_dir: str) -> None:
    vec = gym.make_vec(
        ENV_ID, num_envs=32, vectorization_mode="vector_entry_point", sim_dir=sim_dir
    )
    vec.reset(seed=1)
    for call in range(1, 34):
        _, _, terminated, truncated, info = vec.step(vec.action_space.sample())
        assert not truncated.any()
        expected = call % 11 == 10  # 10 steps, then one autoreset call
        assert terminated.all() if expected else not terminated.any()
        if expected:
            assert np.all(info["t"] == 10)


def test_hazard_sessions_last_as_long_as_the_logs(sim_dir: str) -> None:
    world = load_world(sim_dir, None)
    sessions = session_stats(world.standard, 30.0)
    logged = float(np.minimum(sessions.lengths, 100).mean())
    assert expected_length(empirical_hazard(sessions.lengths, 100), 100) == pytest.approx(
        logged, rel=0.02
    )
    vec = gym.make_vec(
        ENV_ID,
        num_envs=512,
        vectorization_mode="vector_entry_point",
        sim_dir=sim_dir,
        leave_model="hazard",
    )
    vec.reset(seed=0)
    lengths: list[np.ndarray] = []
    for _ in range(60):
        _, _, terminated, truncated, info = vec.step(vec.action_space.sample())
        ended = (terminated | truncated) & ~info["autoreset"]
        lengths.append(info["t"][ended])
    simulated = np.concatenate(lengths)
    assert len(simulated) > 1000
    assert float(simulated.mean()) == pytest.approx(logged, rel=0.15)


def test_state_after_a_step_extends_the_logged_history(sim_dir: str) -> None:
    world = load_world(sim_dir, None)
    env = _make(sim_dir, return_history=True)
    obs, info = env.reset(seed=3)
    n_logged = int(np.sum(world.standard.user_id == info["user_id"]))
    assert obs[STATE_SLICES["hist.length"]][1] == pytest.approx(np.log1p(n_logged), abs=1e-5)
    for k in range(1, 4):
        before = info["time_s"]
        obs, _, _, _, info = env.step(k)
        pushed = np.array([info[s] for s in SIGNALS])
        expected = np.where(np.isin(SIGNALS, TIME_SIGNALS), np.log1p(pushed), pushed)
        np.testing.assert_allclose(obs[STATE_SLICES["hist.last"]], expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(
            obs[STATE_SLICES["hist.length"]][1], np.log1p(n_logged + k), rtol=1e-6
        )
        np.testing.assert_allclose(obs[STATE_SLICES["ctx.step"]], [np.log1p(k), 0.0], rtol=1e-6)
        gap = np.log1p(info["time_s"] - before)
        np.testing.assert_allclose(obs[STATE_SLICES["hist.gap"]], [gap, 0.0], rtol=1e-5)
        assert info["history_items"][-1] == info["item"]
        window = info["history_signals"][info["history_mask"]].astype(np.float64)
        window[:, np.isin(SIGNALS, TIME_SIGNALS)] = np.log1p(
            window[:, np.isin(SIGNALS, TIME_SIGNALS)]
        )
        np.testing.assert_allclose(
            obs[STATE_SLICES["hist.mean"]], window.mean(axis=0), rtol=1e-4, atol=1e-5
        )


def test_reward_is_the_reward_config_applied_to_the_signals(sim_dir: str) -> None:
    weights = {"is_click": 1.0, "play_time_s": 0.01, "is_hate": -2.0, "long_view": 0.5}
    env = _make(sim_dir, reward=weights)
    env.reset(seed=0)
    for action in range(20):
        _, reward, terminated, truncated, info = env.step(action)
        signals = np.array([[info[s] for s in SIGNALS]], dtype=np.float32)
        expected = reward_from_signals(signals, RewardConfig.from_mapping(weights))[0]
        assert reward == pytest.approx(float(expected), rel=1e-5, abs=1e-6)
        if info["long_view"]:
            assert info["is_click"] == 1.0  # long views only come with a click
        if terminated or truncated:
            env.reset()


def test_default_pool_is_the_random_logs_videos(sim_dir: str) -> None:
    world = load_world(sim_dir, None)
    ds = load_kuairand(world.sim.meta["data_dir"], cache_dir=world.sim.meta["cache_dir"])
    videos = ds.scan(FileKind.LOG_RANDOM).select(pl.col("video_id").unique()).collect()
    env = _make(sim_dir)
    np.testing.assert_array_equal(
        env.unwrapped.candidate_video_ids, np.sort(videos["video_id"].to_numpy())
    )
    assert env.action_space.n == len(videos)
    assert _make(sim_dir, candidate_pool="all").action_space.n == len(world.vocab)
    env.reset(seed=0)
    *_, info = env.step(0)
    assert info["video_id"] == env.unwrapped.candidate_video_ids[0]


def test_cold_start_and_options(sim_dir: str) -> None:
    env = _make(sim_dir, warm_start=False, tab=2, n_users=5)
    obs, info = env.reset(seed=0)
    assert obs[STATE_SLICES["hist.gap"]][1] == 1.0 and info["tab"] == 2
    assert info["user_id"] in set(load_world(sim_dir, None).population[:5].tolist())
    for bad in ({"colour": "red"}, {"n_users": 0}, {"leave_model": "x"}, {"candidate_pool": "x"}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            _make(sim_dir, **bad)
    with pytest.raises(ConfigError, match="sim_dir"):
        gym.make(ENV_ID, sim_dir=str(Path(sim_dir).parent / "missing"))


def test_worlds_are_cached_until_released(sim_dir: str) -> None:
    from noetik.simulators.kuairand.world import release_worlds

    world = load_world(sim_dir, None, "cpu")
    assert load_world(sim_dir, None, "cpu") is world
    release_worlds()  # the leaderboard's online lens at catalogue scale, before the OPE lens
    assert load_world(sim_dir, None, "cpu") is not world
