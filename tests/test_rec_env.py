"""RECEnv-v0 known answers: affinity rewards, binary rewards, drift, custom user models."""

from __future__ import annotations

import re
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import noetik.envs  # noqa: F401  (registers the ids)
from noetik.errors import ConfigError
from noetik.simulators.rec import UserModel

ITEMS = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
USERS = np.array([[3.0, 4.0]])  # normalised to (0.6, 0.8)


def _env(**options: object) -> gym.Env:
    return gym.make(
        "noetik/RECEnv-v0",
        n_items=3,
        n_users=1,
        item_feature_dim=2,
        user_feature_dim=2,
        item_feature_vector=ITEMS,
        user_feature_vector=USERS,
        **options,
    )


def test_noiseless_reward_is_the_affinity_and_state_drifts_along_the_item() -> None:
    env = _env()
    obs, info = env.reset(seed=0)
    np.testing.assert_allclose(obs, [0.6, 0.8], rtol=1e-6)
    obs, reward, terminated, _, info = env.step(2)
    item = np.array([1.0, 1.0]) / np.sqrt(2)
    assert reward == pytest.approx(0.6 * item[0] + 0.8 * item[1])  # 1.4 / sqrt(2)
    drifted = np.array([0.6, 0.8]) + reward * item
    np.testing.assert_allclose(info["state"], drifted / np.linalg.norm(drifted))
    np.testing.assert_allclose(obs, info["state"], rtol=1e-6)
    np.testing.assert_allclose(info["item_features"], item)
    assert info["item_id"] == 2 and info["user_id"] == 0 and not terminated
    _, reward, *_ = env.step(0)
    assert reward == pytest.approx(info["state"][0])


def test_episode_lasts_step_per_episode_steps() -> None:
    env = _env(step_per_episode=4)
    env.reset(seed=1)
    flags = [env.step(0)[2] for _ in range(4)]
    assert flags == [False, False, False, True]


def test_binary_rewards_are_bernoulli_of_the_sigmoid_affinity() -> None:
    vec = gym.make_vec(
        "noetik/RECEnv-v0",
        num_envs=20_000,
        vectorization_mode="vector_entry_point",
        n_items=3,
        n_users=1,
        item_feature_dim=2,
        user_feature_dim=2,
        item_feature_vector=ITEMS,
        user_feature_vector=USERS,
        reward_type="binary",
    )
    vec.reset(seed=0)
    _, reward, *_ = vec.step(np.zeros(20_000, dtype=np.int64))
    assert set(np.unique(reward)) == {0.0, 1.0}
    assert reward.mean() == pytest.approx(1 / (1 + np.exp(-0.6)), abs=0.01)


def test_reward_and_observation_noise_have_the_configured_std() -> None:
    vec = gym.make_vec(
        "noetik/RECEnv-v0",
        num_envs=20_000,
        vectorization_mode="vector_entry_point",
        reward_std=0.5,
        obs_std=0.05,
    )
    obs, info = vec.reset(seed=0)
    assert np.std(obs - info["state"]) == pytest.approx(0.05, rel=0.05)
    actions = np.zeros(20_000, dtype=np.int64)
    _, reward, *_ = vec.step(actions)
    item = vec.unwrapped.simulator.item_model.items.features[0]
    affinity = info["state"] @ item
    assert np.std(reward - affinity) == pytest.approx(0.5, rel=0.05)


def test_a_custom_user_model_is_used() -> None:
    class Constant(UserModel):
        def user_preference_dynamics(self, state, action, item_feature_vector, rng):  # type: ignore[no-untyped-def]
            return -state

        def reward_function(self, state, action, item_feature_vector, rng):  # type: ignore[no-untyped-def]
            return np.full(state.shape[0], 42.0 + self.config.reward_std)

    env = _env(user_model=Constant, reward_std=1.0)
    env.reset(seed=0)
    obs, reward, *_ = env.step(1)
    assert reward == 43.0
    np.testing.assert_allclose(obs, [-0.6, -0.8], rtol=1e-6)


def test_bad_options_name_the_field() -> None:
    with pytest.raises(ConfigError, match="reward_type"):
        gym.make("noetik/RECEnv-v0", reward_type="ordinal")
    with pytest.raises(ConfigError, match="item_feature_vector"):
        gym.make("noetik/RECEnv-v0", item_feature_vector=np.ones((3, 5)))
    with pytest.raises(ConfigError, match="user_feature_dim must equal item_feature_dim"):
        gym.make("noetik/RECEnv-v0", user_feature_dim=4)
    with pytest.raises(ConfigError, match="user_model"):
        gym.make("noetik/RECEnv-v0", user_model=object)


@pytest.mark.parametrize("doc", ["docs/environments.md", "README.md"])
def test_the_documented_custom_user_model_example_runs(doc: str) -> None:
    text = (Path(__file__).resolve().parents[1] / doc).read_text()
    block = re.search(r"<!-- example: custom-user-model -->\n```python\n(.*?)```", text, re.S)
    assert block is not None, f"{doc} lost its custom user model example"
    code = block.group(1)
    assert len(code.strip().splitlines()) < 30
    scope: dict[str, object] = {}
    exec(compile(code, doc, "exec"), scope)
    assert scope["reward"] in (0.0, 1.0)
