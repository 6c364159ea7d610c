"""Real-data quirks: watch-ratio fallback and clipping, range strings, missing-value codes."""

from __future__ import annotations

import math
from pathlib import Path

import polars as pl
import pytest

from noetik.data.quirks import add_watch_ratio, clean_users, clean_videos
from tests.tiny import tiny_users, tiny_videos


def _log(duration: list[int], play: list[int], video: list[int]) -> pl.LazyFrame:
    n = len(duration)
    return pl.LazyFrame(
        {
            "video_id": pl.Series(video, dtype=pl.Int32),
            "duration_ms": pl.Series(duration, dtype=pl.Int64),
            "play_time_ms": pl.Series(play, dtype=pl.Int64),
            "hourmin": pl.Series([1900] * n, dtype=pl.Int16),
        }
    )


def test_watch_ratio_fallback_clip_and_unknown() -> None:
    videos = clean_videos(tiny_videos().lazy())  # video 0: 10,000 ms; video 2: null duration
    log = _log(duration=[20_000, 0, 0, 5_000], play=[5_000, 2_500, 700, 12_500], video=[1, 0, 2, 3])
    out = add_watch_ratio(log, videos).collect()
    assert out["duration_eff_ms"].to_list() == [20_000.0, 10_000.0, None, 5_000.0]
    assert out["duration_known"].to_list() == [True, True, False, True]
    assert out["watch_ratio_raw"].to_list() == pytest.approx([0.25, 0.25, None, 2.5])
    assert out["watch_ratio"].to_list() == pytest.approx([0.25, 0.25, None, 1.0])
    assert out["hour"].to_list() == [19] * 4


def test_watch_ratio_without_video_features_marks_unknown() -> None:
    out = add_watch_ratio(_log([0, 1_000], [100, 100], [0, 0]), None).collect()
    assert out["watch_ratio"].to_list()[0] is None
    assert out["watch_ratio"].to_list()[1] == pytest.approx(0.1)


def test_user_ranges_and_missing_codes() -> None:
    users = clean_users(tiny_users().lazy()).collect()
    assert users["user_active_degree"].to_list() == [
        "full_active",
        None,
        "high_active",
        "2_14_day_new",
    ]
    assert users["is_live_streamer"].to_list() == [1, None, None, 0]
    lo, hi = (
        users["follow_user_num_range_lo"].to_list(),
        users["follow_user_num_range_hi"].to_list(),
    )
    assert lo == [500.0, 0.0, 0.0, 250.0]
    assert hi[0] == math.inf and hi[1:] == [0.0, 10.0, 500.0]
    assert users["fans_user_num_range_lo"].to_list() == [100.0, 0.0, 1.0, 1_000.0]
    assert users["fans_user_num_range_hi"].to_list() == [1_000.0, 0.0, 10.0, 5_000.0]
    assert users["register_days_range_lo"].to_list() == [730.0, 8.0, 181.0, 31.0]
    assert users["register_days_range_hi"].to_list() == [math.inf, 14.0, 365.0, 60.0]


def test_range_units_w_and_unknown() -> None:
    frame = pl.LazyFrame({"fans_user_num_range": ["[1w,10w)", "[100w,1000w)", "UNKNOWN", None]})
    from noetik.data.quirks import parse_range

    out = frame.select(parse_range("fans_user_num_range")).collect()
    assert out["fans_user_num_range_lo"].to_list() == [1e4, 1e6, None, None]
    assert out["fans_user_num_range_hi"].to_list() == [1e5, 1e7, None, None]


def test_real_user_ranges_all_parse(real_sample: Path) -> None:
    raw = pl.read_csv(real_sample / "user_features_pure.csv", infer_schema=False).lazy()
    raw = raw.with_columns(pl.col("is_live_streamer").cast(pl.Int16))
    out = clean_users(raw).collect()
    for column in ("follow_user_num", "fans_user_num", "friend_user_num", "register_days"):
        assert out[f"{column}_range_lo"].null_count() == 0, column
        assert (out[f"{column}_range_lo"] <= out[f"{column}_range_hi"]).all()
    assert (
        out["is_live_streamer"].null_count() == (raw.collect()["is_live_streamer"] == "-124").sum()
    )


def test_video_tags_and_nulls() -> None:
    videos = clean_videos(tiny_videos().lazy()).collect()
    assert videos["tags"].to_list() == [[39], [1, 17], [], [2], [9], [11]]
    assert videos["music_type"].null_count() == 1
    assert str(videos["upload_date"][0]) == "2022-04-10"
