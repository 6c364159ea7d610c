"""The ``ope`` lens end to end on a slice of the built-in synthetic log."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from noetik.agents.algorithms.bc import BCConfig
from noetik.agents.core.base import ProblemSpec
from noetik.agents.core.trainer import TrainerConfig
from noetik.agents.networks.encoders import EncoderConfig
from noetik.data.dataset import load_kuairand
from noetik.data.transitions import build_transitions
from noetik.errors import ConfigError
from noetik.evaluation.ope.fqe import FQEConfig
from noetik.evaluation.ope.logged import (
    LoggedOPEConfig,
    LoggedSplits,
    evaluate_logged,
    pad_episodes,
    policy_probs,
    propensity_for,
)
from noetik.evaluation.ope.propensity import PropensityConfig, PropensityModel, subset_episodes

KEYS = {"logged_value", "dm", "is", "wis", "pdis", "wpdis", "dr", "ess", "ess_fraction"}
CONFIG = LoggedOPEConfig(
    gamma=0.9,
    horizon=5,
    n_boot=50,
    propensity=PropensityConfig(
        steps=40, batch_size=128, hidden=(32,), lr=3e-3, calib_fraction=0.2, min_prob=1e-5
    ),
    fqe=FQEConfig(kind="linear", ridge=1.0, time_feature=True, iterations=5),
)


@pytest.fixture(scope="module")
def splits() -> LoggedSplits:
    """The first 300 episodes of the built-in train split and the first 200 of its test split."""
    ds = load_kuairand(None)
    parts = []
    for name, n in (("train", 300), ("test", 200)):
        t = build_transitions(ds, split=name)  # type: ignore[arg-type]
        parts.append(subset_episodes(t, t.episode_id < np.unique(t.episode_id)[n]))
    return LoggedSplits(parts[0], parts[1], key="builtin-slice")


@pytest.fixture(scope="module")
def behaviour(splits: LoggedSplits) -> PropensityModel:
    """The calibrated behaviour model of the slice."""
    return propensity_for(splits, CONFIG)


def _bc(splits: LoggedSplits, **encoder: object) -> torch.nn.Module:
    cfg = BCConfig(device="cpu", batch_size=64, encoder=EncoderConfig(**encoder))  # type: ignore[arg-type]
    agent = cfg.create(ProblemSpec.from_transitions(splits.train))
    agent.fit(splits.train, 20, trainer=TrainerConfig(progress=False, tensorboard=False))
    return agent.eval()


def test_pad_episodes_by_hand(splits: LoggedSplits) -> None:
    t = subset_episodes(splits.test, np.arange(7))
    t = dataclasses.replace(t, episode_id=np.array([5, 5, 5, 8, 9, 9, 9]))
    rows, mask = pad_episodes(t, horizon=2)
    np.testing.assert_array_equal(rows, [[0, 1], [3, -1], [4, 5]])
    np.testing.assert_array_equal(mask, rows >= 0)
    rows, _ = pad_episodes(t, horizon=10)  # H shrinks to the longest episode
    np.testing.assert_array_equal(rows, [[0, 1, 2], [3, -1, -1], [4, 5, 6]])
    some, _ = pad_episodes(t, horizon=10, max_episodes=2, seed=3)
    assert len(some) == 2 and all(any((r == x).all() for x in rows) for r in some)
    np.testing.assert_array_equal(some, pad_episodes(t, 10, max_episodes=2, seed=3)[0])


def test_policy_probs_by_hand() -> None:
    scores = torch.tensor([[1.0, 3.0, 2.0]])
    eps = policy_probs(scores, LoggedOPEConfig(policy="epsilon_greedy", epsilon=0.3))
    np.testing.assert_allclose(eps.numpy(), [[0.1, 0.8, 0.1]])
    soft = policy_probs(scores, LoggedOPEConfig(temperature=2.0)).numpy()
    expected = np.exp([0.5, 1.5, 1.0]) / np.exp([0.5, 1.5, 1.0]).sum()
    np.testing.assert_allclose(soft, [expected])


def _check_lens(lens: dict[str, dict[str, float]], n_episodes: int) -> None:
    assert set(lens) == KEYS
    for name, value in lens.items():
        assert set(value) == {"mean", "low", "high"}
        assert all(np.isfinite(v) for v in value.values()), name
        assert value["low"] <= value["mean"] <= value["high"], name
    assert 0.0 < lens["ess"]["mean"] <= n_episodes
    assert lens["ess_fraction"]["mean"] == pytest.approx(lens["ess"]["mean"] / n_episodes)


def test_evaluate_logged_end_to_end_is_finite_and_reproducible(
    splits: LoggedSplits, behaviour: PropensityModel
) -> None:
    agent = _bc(splits)
    lens = evaluate_logged(agent, splits, CONFIG, propensity=behaviour)
    _check_lens(lens, 200)
    # the logged value is the mean discounted return of the (≤ 5-step) test episodes
    rows, mask = pad_episodes(splits.test, 5)
    rewards = np.where(mask, splits.test.reward[np.maximum(rows, 0)], 0.0)
    value = (rewards * 0.9 ** np.arange(rows.shape[1])).sum(1).mean()
    assert lens["logged_value"]["mean"] == pytest.approx(value, rel=1e-6)
    assert evaluate_logged(agent, splits, CONFIG, propensity=behaviour) == lens
    other = evaluate_logged(
        agent, splits, dataclasses.replace(CONFIG, seed=1), propensity=behaviour
    )
    assert other["is"]["mean"] == lens["is"]["mean"] and other["is"]["low"] != lens["is"]["low"]


def test_behaviour_policy_as_target_gives_the_logged_value(
    splits: LoggedSplits, behaviour: PropensityModel
) -> None:
    # π = softmax(log μ̂) = μ̂: every ratio is 1 up to float32 rounding of the probability
    # vectors (~1e-7 per step, ≤ 5 steps), so the IS family equals the on-policy value to 1e-5.
    lens = evaluate_logged(behaviour, splits, CONFIG, propensity=behaviour)
    _check_lens(lens, 200)
    logged = lens["logged_value"]["mean"]
    for name in ("is", "wis", "pdis", "wpdis"):
        assert lens[name]["mean"] == pytest.approx(logged, rel=1e-5), name
    assert lens["ess_fraction"]["mean"] == pytest.approx(1.0, abs=1e-6)


def test_history_agent_and_vocabulary_checks(
    splits: LoggedSplits, behaviour: PropensityModel
) -> None:
    agent = _bc(splits, kind="transformer", d_model=16, n_layers=1, n_heads=2, history_len=3)
    _check_lens(evaluate_logged(agent, splits, CONFIG, propensity=behaviour), 200)
    small = BCConfig(device="cpu").create(ProblemSpec(n_actions=7, obs_dim=128))
    with pytest.raises(ConfigError, match="7 actions"):
        evaluate_logged(small, splits, CONFIG, propensity=behaviour)
    tight = dataclasses.replace(CONFIG, max_dense_probs=10)
    with pytest.raises(ConfigError, match="max_episodes"):
        evaluate_logged(agent, splits, tight, propensity=behaviour)


def test_propensity_cache_is_reused(splits: LoggedSplits, tmp_path: Path) -> None:
    config = dataclasses.replace(CONFIG, cache_dir=str(tmp_path))
    first = propensity_for(splits, config)
    assert len(list(tmp_path.glob("propensity-builtin-slice-*"))) == 1
    again = propensity_for(splits, config)
    obs = splits.test.obs[:20]
    np.testing.assert_array_equal(again.probs(obs), first.probs(obs))
    assert again.diagnostics == first.diagnostics
    changed = dataclasses.replace(config, propensity=dataclasses.replace(config.propensity, seed=1))
    propensity_for(splits, changed)
    assert len(list(tmp_path.glob("propensity-builtin-slice-*"))) == 2
