"""The 128-dimensional state: layout, known values, strict-past history, missing data."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from noetik.data.features import (
    STATE_DIM,
    STATE_LAYOUT,
    STATE_SLICES,
    FeatureConfig,
    build_states,
    state_feature_names,
    tag_buckets,
)
from noetik.data.quirks import clean_users, clean_videos
from noetik.errors import ConfigError
from tests.tiny import tiny_users, tiny_videos

NAMES = state_feature_names()
COL = {name: i for i, name in enumerate(NAMES)}
F32 = FeatureConfig(obs_dtype="float32")


def _interactions() -> pl.DataFrame:
    """User 7: 4 rows, user 9: 2 rows, user 99 (not in the user table): 1 row."""
    n = 7
    return pl.DataFrame(
        {
            "user_id": pl.Series([7, 7, 7, 7, 9, 9, 99], dtype=pl.Int32),
            "video_id": pl.Series([0, 1, 2, 3, 0, 4, 5], dtype=pl.Int32),
            "time_ms": [0, 60_000, 120_000, 3_600_000, 0, 10_000, 0],
            "date": [20220425] * n,  # a Monday
            "hour": pl.Series([18] * n, dtype=pl.Int8),
            "tab": pl.Series([1, 1, 2, 3, 1, 1, 14], dtype=pl.Int8),
            "duration_eff_ms": [10_000.0, 20_000.0, None, 40_000.0, 10_000.0, 10_000.0, 1.0],
            "is_click": [1, 0, 1, 1, 0, 1, 0],
            "is_like": [0, 1, 0, 0, 0, 0, 0],
            "is_follow": [0] * n,
            "is_comment": [0] * n,
            "is_forward": [0] * n,
            "is_hate": [0, 0, 0, 1, 0, 0, 0],
            "long_view": [1, 0, 0, 0, 0, 1, 0],
            "is_profile_enter": [0] * n,
            "watch_ratio": pl.Series([1.0, 0.5, None, 0.25, 0.1, 1.0, 0.0], dtype=pl.Float32),
            "play_time_ms": [10_000, 10_000, 3_000, 10_000, 1_000, 10_000, 0],
            "profile_stay_time": [0] * n,
            "comment_stay_time": [0, 2_000, 0, 0, 0, 0, 0],
            "step": pl.Series([0, 1, 2, 0, 0, 1, 0], dtype=pl.Int32),
        }
    )


def _users() -> pl.DataFrame:
    """The tiny user table with ids 7, 9, 11, 12 (7: full_active, 9: UNKNOWN, -124)."""
    users = tiny_users().with_columns(pl.Series("user_id", [7, 9, 11, 12], dtype=pl.Int32))
    return clean_users(users.lazy()).collect()


def _videos() -> pl.DataFrame:
    """Tiny videos 0..5 with tags 39 | 1,17 | none | 2 | 9 | 11."""
    return clean_videos(tiny_videos().lazy()).collect()


def _states(frame: pl.DataFrame | None = None, config: FeatureConfig = F32) -> np.ndarray:
    return build_states(
        frame if frame is not None else _interactions(), _users(), _videos(), config
    )


def test_layout_is_128_with_unique_names() -> None:
    assert sum(s.size for s in STATE_LAYOUT) == STATE_DIM == 128
    assert len(NAMES) == 128 and len(set(NAMES)) == 128
    assert all(s.size == len(s.feature_names) for s in STATE_LAYOUT)
    position = 0
    for s in STATE_LAYOUT:
        assert STATE_SLICES[s.name] == slice(position, position + s.size)
        position += s.size
    for name in ("user.active_degree=full_active", "hist.mean.is_click", "ctx.hour_sin"):
        assert name in COL


def test_shapes_dtypes_and_finite() -> None:
    obs16 = _states(config=FeatureConfig())
    assert obs16.shape == (7, 128) and obs16.dtype == np.float16
    obs32 = _states()
    assert obs32.dtype == np.float32
    assert np.isfinite(obs16).all() and np.isfinite(obs32).all()
    np.testing.assert_allclose(obs16.astype(np.float32), obs32, rtol=2e-3, atol=2e-3)


def test_first_row_of_each_user_has_empty_history() -> None:
    obs = _states()
    hist = slice(STATE_SLICES["hist.mean"].start, STATE_SLICES["hist.tags"].stop)
    for row in (0, 4, 6):
        assert obs[row, COL["hist.no_prev"]] == 1.0
        assert obs[row, COL["hist.len_frac"]] == 0.0
        gap_and_flag = [COL["hist.no_prev"]]
        values = np.delete(obs[row, hist], np.array(gap_and_flag) - hist.start)
        assert not values.any()


def test_history_known_values() -> None:
    obs = _states(config=FeatureConfig(history_len=2, obs_dtype="float32"))
    # row 1: one previous row (row 0, clicked, watch ratio 1, 10 s)
    assert obs[1, COL["hist.last.is_click"]] == 1.0
    assert obs[1, COL["hist.mean.watch_ratio"]] == 1.0
    assert obs[1, COL["hist.len_frac"]] == 0.5
    assert obs[1, COL["hist.log1p_gap_prev_s"]] == pytest.approx(math.log1p(60))
    assert obs[1, COL["hist.last.log1p_play_time_s"]] == pytest.approx(math.log1p(10))
    # row 3: window of K=2 holds rows 1, 2 (clicks 0, 1); the cumulative mean rows 0..2
    assert obs[3, COL["hist.mean.is_click"]] == pytest.approx(0.5)
    assert obs[3, COL["hist.cum_mean.is_click"]] == pytest.approx(2 / 3)
    assert obs[3, COL["hist.mean.watch_ratio"]] == pytest.approx(0.25)  # (0.5 + 0 unknown) / 2
    assert obs[3, COL["hist.log1p_n_past"]] == pytest.approx(math.log1p(3))
    assert obs[3, COL["hist.log1p_span_s"]] == pytest.approx(math.log1p(3600 - 60))
    assert obs[3, COL["hist.mean.log1p_comment_stay_s"]] == pytest.approx(math.log1p(2) / 2)


def test_tag_histogram_and_duration() -> None:
    assert tag_buckets(np.array([39, 1, 17, 24, 0])).tolist() == [15, 1, 17, 0, 0]
    obs = _states()
    # row 2: history = videos 0 (tag 39 -> bucket 15) and 1 (tags 1, 17)
    assert obs[2, COL["hist.tag_bucket15"]] == 0.5
    assert obs[2, COL["hist.tag_bucket1"]] == 0.5
    assert obs[2, COL["hist.tag_bucket17"]] == 0.5
    assert obs[2, COL["hist.tag_bucket2"]] == 0.0
    # row 3: durations 10 s, 20 s and unknown -> mean over the two known
    expected = (math.log1p(10) + math.log1p(20)) / 2
    assert obs[3, COL["hist.mean_log1p_duration_s"]] == pytest.approx(expected)


def test_no_leakage_of_current_feedback() -> None:
    base = _states()
    changed = _interactions().with_columns(
        pl.when(pl.int_range(pl.len()) == 1).then(1 - pl.col(c)).otherwise(pl.col(c)).alias(c)
        for c in ("is_click", "is_like", "long_view", "is_hate")
    )
    changed = changed.with_columns(
        pl.when(pl.int_range(pl.len()) == 1)
        .then(pl.lit(99_000, dtype=pl.Int64))
        .otherwise(pl.col("play_time_ms"))
        .alias("play_time_ms")
    )
    after = _states(changed)
    np.testing.assert_array_equal(after[:2], base[:2])  # row 1's own state is unchanged
    assert not np.array_equal(after[2], base[2])  # the next row of the same user changes
    assert not np.array_equal(after[3], base[3])
    np.testing.assert_array_equal(after[4:], base[4:])  # other users are untouched


def test_history_never_crosses_users() -> None:
    frame = _interactions()
    alone = frame.filter(pl.col("user_id") == 9)
    np.testing.assert_array_equal(_states(alone), _states()[4:6])


def test_user_features_and_missing_user() -> None:
    obs = _states()
    assert obs[0, COL["user.active_degree=full_active"]] == 1.0
    assert obs[0, COL["user.log1p_follow_user_num"]] == pytest.approx(math.log1p(514))
    assert obs[0, COL["user.log1p_follow_user_num_range_hi"]] == pytest.approx(math.log1p(1000))
    assert obs[0, COL["user.missing.row"]] == 0.0
    assert obs[4, COL["user.active_degree=unknown"]] == 1.0
    assert obs[4, COL["user.missing.is_live_streamer"]] == 1.0
    assert obs[4, COL["user.is_live_streamer"]] == 0.0
    user_part = obs[6, : STATE_SLICES["user.missing"].stop]
    assert obs[6, COL["user.missing.row"]] == 1.0
    assert user_part.sum() == 1.0  # everything else zero for a user without features


def test_context_features() -> None:
    obs = _states()
    assert obs[0, COL["ctx.hour_sin"]] == pytest.approx(-1.0, abs=1e-6)
    assert obs[0, COL["ctx.weekday_sin"]] == pytest.approx(0.0, abs=1e-6)
    assert obs[0, COL["ctx.weekday_cos"]] == pytest.approx(1.0)
    assert obs[2, COL["ctx.tab=2"]] == 1.0 and obs[2, COL["ctx.tab=1"]] == 0.0
    assert obs[6, COL["ctx.tab=14"]] == 1.0
    assert obs[2, COL["ctx.log1p_step"]] == pytest.approx(math.log1p(2))
    assert obs[:, COL["ctx.is_episode_start"]].tolist() == [1, 0, 0, 1, 1, 0, 1]


def test_chunking_and_keep_mask_do_not_change_states() -> None:
    full = _states()
    tiny_chunks = _states(config=FeatureConfig(obs_dtype="float32", chunk_rows=1))
    np.testing.assert_array_equal(full, tiny_chunks)
    keep = np.array([False, True, False, True, True, False, True])
    kept = build_states(_interactions(), _users(), _videos(), F32, keep=keep)
    np.testing.assert_array_equal(kept, full[keep])


def test_without_feature_tables() -> None:
    obs = build_states(_interactions(), None, None, F32)
    assert np.isfinite(obs).all()
    assert (obs[:, COL["user.missing.row"]] == 1.0).all()
    assert not obs[:, STATE_SLICES["hist.tags"]].any()


def test_step_is_required() -> None:
    with pytest.raises(ValueError, match="step"):
        build_states(_interactions().drop("step"), None, None, F32)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"history_len": 0}, "history_len"),
        ({"obs_dtype": "float64"}, "obs_dtype"),
        ({"chunk_rows": 0}, "chunk_rows"),
    ],
)
def test_invalid_feature_config(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        FeatureConfig(**kwargs)  # type: ignore[arg-type]
