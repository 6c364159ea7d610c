"""InterestEvolution-v0 known answers: choice models, slates, interest drift, budget."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import noetik.envs  # noqa: F401  (registers the ids)
from noetik.errors import ConfigError
from noetik.simulators.choice import Cascade, MultinomialLogit, Proportional, make_choice_model

SCORES = np.array([[0.5, -0.2, 1.0]])
ALL = np.ones((1, 3), dtype=bool)


def test_mnl_probabilities_are_a_softmax_with_a_no_click_logit() -> None:
    p = MultinomialLogit(no_click_mass=0.3).probabilities(SCORES, ALL, {})
    e = np.exp([0.5, -0.2, 1.0, 0.3])
    np.testing.assert_allclose(p[0], e / e.sum())
    without = MultinomialLogit().probabilities(SCORES, ALL, {})  # -inf: no no-click option
    assert without[0, -1] == 0.0
    np.testing.assert_allclose(without[0, :3], e[:3] / e[:3].sum())


def test_proportional_probabilities_shift_by_min_normalizer() -> None:
    p = Proportional(no_click_mass=1.0, min_normalizer=-1.0).probabilities(SCORES, ALL, {})
    np.testing.assert_allclose(p[0], np.array([1.5, 0.8, 2.0, 2.0]) / 6.3)


def test_cascade_probabilities_follow_the_examination_order() -> None:
    model = Cascade("exponential", attention_prob=0.8, score_scaling=0.2)
    p = model.probabilities(SCORES, ALL, {})[0]
    q = 0.8 * 0.2 * np.exp([0.5, -0.2, 1.0])
    expected = [q[0], (1 - q[0]) * q[1], (1 - q[0]) * (1 - q[1]) * q[2], np.prod(1 - q)]
    np.testing.assert_allclose(p, expected)
    prop = Cascade("proportional", attention_prob=1.0, score_scaling=0.5, min_normalizer=-1.0)
    # q = 0.5 * (score + 1), clipped to 1: [0.75, 0.4, 1.0]; the last position is always clicked
    np.testing.assert_allclose(
        prop.probabilities(SCORES, ALL, {})[0], [0.75, 0.25 * 0.4, 0.25 * 0.6 * 1.0, 0.0]
    )


def test_per_user_traits_override_defaults_and_hidden_positions_get_nothing() -> None:
    scores = np.repeat(SCORES, 2, axis=0)
    shown = np.array([[True, False, True], [True, True, True]])
    traits = {"no_click_mass": np.array([0.0, -np.inf])}
    p = MultinomialLogit(no_click_mass=5.0).probabilities(scores, shown, traits)
    e = np.exp([0.5, 1.0, 0.0])
    np.testing.assert_allclose(p[0], [e[0], 0.0, e[1], e[2]] / e.sum())
    assert p[1, -1] == 0.0


def test_sampled_choices_match_the_probabilities() -> None:
    model = make_choice_model("proportional", no_click_mass=1.0, min_normalizer=-1.0)
    scores = np.repeat(SCORES, 50_000, axis=0)
    choice = model.choose(np.random.default_rng(0), scores, np.ones_like(scores, bool), {})
    freq = np.bincount(choice, minlength=4) / len(choice)
    np.testing.assert_allclose(freq, np.array([1.5, 0.8, 2.0, 2.0]) / 6.3, atol=0.01)
    with pytest.raises(ConfigError, match="choice_model"):
        make_choice_model("softmax")


def _vec(n: int, **options: object) -> gym.vector.VectorEnv:
    return gym.make_vec(
        "noetik/InterestEvolution-v0",
        num_envs=n,
        vectorization_mode="vector_entry_point",
        **options,
    )


def test_budget_pays_watch_time_or_step_penalty_and_ends_the_session() -> None:
    env = gym.make(
        "noetik/InterestEvolution-v0", time_budget=10.0, step_penalty=1.5, budget_update_alpha=0.0
    )
    _, info = env.reset(seed=0)
    budget, steps, terminated = info["budget"], 0, False
    assert budget == 10.0
    while not terminated:
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        cost = info["watch_time"] if info["click"] else 1.5
        assert info["budget"] == pytest.approx(budget - cost)
        assert reward == info["watch_time"]
        assert info["watch_time"] == (min(budget, 4.0) if info["click"] else 0.0)
        budget, steps = info["budget"], steps + 1
        assert not truncated and steps < 20
    assert budget <= 0


def test_interests_move_towards_consumed_topics() -> None:
    """Utility docs are one-hot: a click on topic c moves interest_c by alpha * (1 - i_c),
    towards 1 with probability (i_c + 1) / 2, so the mean drift is positive when i_c > 0."""
    vec = _vec(4000, choice_model="mnl", no_click_mass=-np.inf, slate_size=1)
    _, info = vec.reset(seed=0)
    before = info["interests"]
    _, _, _, _, info = vec.step(np.zeros((4000, 1), dtype=np.int64))
    assert np.all(info["click"] == 1.0)
    rows = np.arange(4000)
    topic = info["cluster"].astype(int)
    i = before[rows, topic]
    delta = info["interests"][rows, topic] - i
    step = 0.3 * (1 - np.abs(i)) * (1 - i)
    np.testing.assert_allclose(np.abs(delta), np.minimum(step, np.abs(delta)), atol=1e-12)
    up = np.isclose(delta, step) & (step > 0)
    positive = i > 0.2
    assert up[positive].mean() == pytest.approx(((i[positive] + 1) / 2).mean(), abs=0.03)
    assert delta[positive].mean() > 0
    other = np.ones_like(before, dtype=bool)
    other[rows, topic] = False
    np.testing.assert_array_equal(info["interests"][other], before[other])


def test_a_repeated_document_is_shown_once() -> None:
    vec = _vec(2000, choice_model="mnl", no_click_mass=-np.inf, slate_size=3)
    vec.reset(seed=0)
    slate = np.tile([4, 4, 4], (2000, 1))
    _, _, _, _, info = vec.step(slate)
    np.testing.assert_array_equal(info["slate_valid"], np.tile([True, False, False], (2000, 1)))
    assert np.all(info["position"] == 0.0)


def test_observation_holds_interests_budget_and_candidates() -> None:
    env = gym.make("noetik/InterestEvolution-v0", num_topics=4, n_candidates=3, slate_size=2)
    obs, info = env.reset(seed=0)
    assert obs.shape == (4 + 1 + 3 * 4,)
    np.testing.assert_allclose(obs[:4], info["interests"], rtol=1e-6)
    assert obs[4] == 1.0
    hidden = gym.make("noetik/InterestEvolution-v0", observe_interests=False, num_topics=4)
    assert hidden.observation_space.shape == (1 + 10 * 4,)


def test_trait_ranges_vary_across_users() -> None:
    _, info = _vec(500, attention_prob=(0.2, 0.9)).reset(seed=0)
    assert 0.2 <= info["attention_prob"].min() < 0.3 and 0.8 < info["attention_prob"].max() <= 0.9
    with pytest.raises(ConfigError, match="attention_prob"):
        gym.make("noetik/InterestEvolution-v0", attention_prob=(0.5, 1.5))
    with pytest.raises(ConfigError, match="slate_size"):
        gym.make("noetik/InterestEvolution-v0", slate_size=11)
