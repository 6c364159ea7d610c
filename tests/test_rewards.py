"""Feedback signals and rewards: known values on hand-built rows, config validation."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from noetik.data.rewards import (
    DEFAULT_REWARD_WEIGHTS,
    SIGNALS,
    RewardConfig,
    reward_expr,
    reward_from_signals,
    signal_expr,
    signals_expr,
)
from noetik.errors import ConfigError


def _rows() -> pl.DataFrame:
    """Two interaction rows: a clicked, liked 40 % view, and a hated view of unknown duration."""
    return pl.DataFrame(
        {
            "is_click": [1, 0],
            "is_like": [1, 0],
            "is_follow": [0, 0],
            "is_comment": [0, 1],
            "is_forward": [0, 0],
            "is_hate": [0, 1],
            "long_view": [1, 0],
            "is_profile_enter": [0, 1],
            "watch_ratio": [0.4, None],
            "play_time_ms": [2_500, 800],
            "profile_stay_time": [0, 3_000],
            "comment_stay_time": [1_500, 0],
        },
        schema_overrides={"watch_ratio": pl.Float32},
    )


def test_signal_names_and_order() -> None:
    assert len(SIGNALS) == 12
    assert SIGNALS[:8] == (
        "is_click",
        "is_like",
        "is_follow",
        "is_comment",
        "is_forward",
        "is_hate",
        "long_view",
        "is_profile_enter",
    )
    assert SIGNALS[8:] == ("watch_ratio", "play_time_s", "profile_stay_s", "comment_stay_s")


def test_signals_known_values() -> None:
    out = _rows().select(signals_expr())
    assert out.columns == list(SIGNALS)
    assert all(dtype == pl.Float32 for dtype in out.dtypes)
    first, second = out.row(0, named=True), out.row(1, named=True)
    assert first["watch_ratio"] == pytest.approx(0.4)
    assert second["watch_ratio"] == 0.0  # unknown watch ratio counts as 0
    assert first["play_time_s"] == pytest.approx(2.5)
    assert second["profile_stay_s"] == pytest.approx(3.0)
    assert first["comment_stay_s"] == pytest.approx(1.5)
    assert second["is_hate"] == 1.0


def test_signals_prefix() -> None:
    out = _rows().select(signals_expr(prefix="sig."))
    assert out.columns == [f"sig.{s}" for s in SIGNALS]


def test_default_reward_of_known_rows() -> None:
    reward = _rows().select(reward_expr())["reward"].to_list()
    assert reward[0] == pytest.approx(0.5 * 1 + 0.5 * 0.4)
    assert reward[1] == pytest.approx(0.0)


def test_weighted_reward_with_negative_weight() -> None:
    config = RewardConfig((("long_view", 1.0), ("is_hate", -2.0), ("play_time_s", 0.1)))
    reward = _rows().select(reward_expr(config))["reward"].to_list()
    assert reward[0] == pytest.approx(1.0 + 0.25)
    assert reward[1] == pytest.approx(-2.0 + 0.08)
    assert config.describe() == "1*long_view - 2*is_hate + 0.1*play_time_s"


def test_reward_from_signals_matches_expression() -> None:
    config = RewardConfig.from_mapping({"is_like": 1.0, "watch_ratio": 0.5, "is_hate": -1.0})
    frame = _rows()
    signals = frame.select(signals_expr()).to_numpy()
    expected = frame.select(reward_expr(config))["reward"].to_numpy()
    np.testing.assert_allclose(reward_from_signals(signals, config), expected, rtol=1e-6)


def test_mapping_weights_are_normalised() -> None:
    config = RewardConfig({"is_click": 1.0})  # type: ignore[arg-type]
    assert config.weights == (("is_click", 1.0),)
    assert config.as_dict() == {"is_click": 1.0}
    assert config == RewardConfig((("is_click", 1.0),))
    vector = config.weight_vector()
    assert vector.shape == (12,) and vector[0] == 1.0 and vector[1:].sum() == 0.0


def test_one_reward_for_arrays_columns_and_heads() -> None:
    assert RewardConfig().weights == DEFAULT_REWARD_WEIGHTS
    signals = np.random.default_rng(0).random((7, 12))
    config = RewardConfig((("is_hate", -2.0), ("watch_ratio", 0.5), ("play_time_s", 0.01)))
    by_hand = -2.0 * signals[:, 5] + 0.5 * signals[:, 8] + 0.01 * signals[:, 9]
    as_array = reward_from_signals(signals, config, dtype=np.float64)
    np.testing.assert_allclose(as_array, by_hand, rtol=1e-15)
    columns = dict(zip(SIGNALS, signals.T, strict=True))
    np.testing.assert_array_equal(reward_from_signals(columns, config, dtype=np.float64), as_array)
    assert reward_from_signals(signals, config).dtype == np.float32
    np.testing.assert_array_equal(
        config.weights_for(("watch_ratio", "is_click", "is_hate")), [0.5, 0.0, -2.0]
    )


@pytest.mark.parametrize(
    ("weights", "needle"),
    [
        ((("is_clik", 1.0),), "is_clik"),
        ((("is_click", 1.0), ("is_click", 2.0)), "twice"),
        ((("watch_ratio", float("nan")),), "not finite"),
        ((), "at least one"),
    ],
)
def test_invalid_reward_config(weights: tuple[tuple[str, float], ...], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        RewardConfig(weights)


def test_unknown_signal_expression_names_it() -> None:
    with pytest.raises(ConfigError, match="dwell"):
        signal_expr("dwell")
