"""The KuaiRand tag question: Rescorla-Wagner values by hand, known answers on simulated
users who learn (or do not), and the whole analysis on synthetic KuaiRand files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from noetik.analysis.choices.kuairand_tags import (
    TAG_MODELS,
    TagLearningConfig,
    TagRows,
    rescorla_wagner_values,
    tag_learning,
    tag_learning_lines,
    tag_learning_rows,
)
from noetik.data.dataset import load_kuairand
from noetik.data.synthetic import SynthConfig, synthesize
from noetik.errors import ConfigError

CONFIG = TagLearningConfig(n_boot=300, permutations=3, seed=0)


def test_rescorla_wagner_values_by_hand() -> None:
    y = np.array([1.0, 0.0, 1.0, 0.0, 0.0])
    position = np.array([0, 1, 2, 0, 1])
    init = np.array([0.5, 9.0, 9.0, 0.2, 9.0])  # read at position 0 only
    values = rescorla_wagner_values(y, position, init, np.array([0.5, 1.0]))
    np.testing.assert_allclose(values[:, 0], [0.5, 0.75, 0.375, 0.2, 0.1])
    np.testing.assert_allclose(values[:, 1], [0.5, 1.0, 0.0, 0.2, 0.0])


def _rows(learn: bool, users: int = 300, tags: int = 4, length: int = 30) -> TagRows:
    """Users x tags sequences: learners follow V <- V + 0.3 (y - V) from 0.3 (y ~ V);
    non-learners have a fixed propensity per (user, tag), uniform in [0.1, 0.6]."""
    draw = np.random.default_rng(5)
    ys, user, tag, position = [], [], [], []
    for u in range(users):
        for g in range(tags):
            v = 0.3 if learn else draw.uniform(0.1, 0.6)
            for n in range(length):
                y = float(draw.random() < v)
                if learn:
                    v += 0.3 * (y - v)
                ys.append(y)
                user.append(u)
                tag.append(g)
                position.append(n)
    n_rows = len(ys)
    # one interaction per row, each user's interactions interleaving the tags in time
    u_arr, t_arr, p_arr = np.array(user), np.array(tag), np.array(position)
    time = p_arr * tags + t_arr
    event_order = np.lexsort((time, u_arr))
    event = np.empty(n_rows, dtype=np.int64)
    event[event_order] = np.arange(n_rows)
    y_arr = np.array(ys)
    return TagRows(
        user=u_arr,
        tag=t_arr,
        event=event,
        y=y_arr,
        position=p_arr,
        event_user=u_arr[event_order],
        event_y=y_arr[event_order],
        event_position=np.tile(np.arange(tags * length), users),
        user_ids=np.arange(users),
    )


def test_simulated_learners_show_the_rescorla_wagner_signature() -> None:
    result = tag_learning_rows(_rows(learn=True), CONFIG)
    assert result.alpha_tag == pytest.approx(0.3, abs=0.1)
    assert result.delta["tag_rw - tag_base_rate"].low > 0
    assert result.delta["tag_rw - tag_mean"].low > 0  # recency beats a stable preference
    assert result.order["tag_rw"].low > 0  # the order of outcomes carries information
    assert result.lag_excess[0].low > 0
    assert result.lag_excess[0].mean > result.lag_excess[-1].mean  # the kernel decays
    assert result.n_users == 150 and result.mean_length == 30


def test_stable_preferences_are_not_mistaken_for_learning() -> None:
    result = tag_learning_rows(_rows(learn=False), CONFIG)
    assert result.delta["tag_mean - tag_base_rate"].low > 0  # preferences differ by user
    order = result.order["tag_rw"]
    assert order.low <= 0.0 <= order.high or abs(order.mean) < 1e-3
    assert abs(result.order["tag_mean"].mean) < 1e-9  # exchangeable: the order cannot matter
    assert all(e.low <= 0.0 <= e.high for e in result.lag_excess[:3])
    # the raw contrast is positive (tags differ in propensity within a user) and the shuffled
    # sequences, which keep the propensities but not the order, show the same
    assert result.lag_profile[0].low > 0
    assert result.lag_null[0].mean == pytest.approx(result.lag_profile[0].mean, abs=0.02)


def test_the_whole_analysis_on_synthetic_kuairand_files(tmp_path: Path) -> None:
    synthesize(tmp_path / "data", SynthConfig.for_release("pure", users=60, videos=150, seed=2))
    ds = load_kuairand(tmp_path / "data", cache_dir=tmp_path / "cache")
    result = tag_learning(ds, CONFIG)
    data = result.as_dict()
    assert set(data["log_lik"]) == set(TAG_MODELS)  # type: ignore[arg-type]
    assert result.n_users == 30 and result.n_rows > 0
    assert result.log_lik["tag_rw"].mean < 0
    lines = tag_learning_lines(data)
    assert len(lines) == 2 + len(TAG_MODELS) + 4 + 2 + 1
    with pytest.raises(ConfigError, match="no column 'nope'"):
        tag_learning(ds, TagLearningConfig(signal="nope"))
    with pytest.raises(ConfigError, match="alphas"):
        TagLearningConfig(alphas=(0.0,))
