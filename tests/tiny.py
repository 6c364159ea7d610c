"""Tiny, hand-made KuaiRand files with known contents, for loader tests (no real data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from noetik.data.schema import (
    LOG_SCHEMA,
    USER_SCHEMA,
    VIDEO_BASIC_SCHEMA,
    VIDEO_STATISTIC_COLUMNS,
    FileKind,
    expected_files,
)

N_USERS = 4
N_VIDEOS = 6
LOG_ROWS = 12


def tiny_log(
    rows: int = LOG_ROWS, is_rand: int = 0, start_ms: int = 1_650_000_000_000
) -> pl.DataFrame:
    """A valid log: user i % 4 watches video i % 6; every third row is clicked."""
    i = np.arange(rows)
    duration = np.where(i % 5 == 4, 0, 10_000 + 1_000 * (i % 6))  # every 5th row: duration 0
    play = np.where(i % 3 == 0, 12_000, 2_000)
    data = {name: np.zeros(rows, dtype=np.int64) for name in LOG_SCHEMA}
    data.update(
        user_id=i % N_USERS,
        video_id=i % N_VIDEOS,
        date=np.full(rows, 20220425),
        hourmin=np.full(rows, 1800),
        time_ms=start_ms + 60_000 * i,
        is_click=(i % 3 == 0).astype(np.int64),
        long_view=((play >= 18_000) | ((duration > 0) & (play >= duration))).astype(np.int64),
        play_time_ms=play,
        duration_ms=duration,
        is_rand=np.full(rows, is_rand),
        tab=np.ones(rows, dtype=np.int64),
    )
    return pl.DataFrame(data).select(list(LOG_SCHEMA))


def tiny_users() -> pl.DataFrame:
    """Valid user features, including the quirks (UNKNOWN, -124, range strings)."""
    data: dict[str, list[object]] = {
        "user_id": list(range(N_USERS)),
        "user_active_degree": ["full_active", "UNKNOWN", "high_active", "2_14_day_new"],
        "is_lowactive_period": [0, 0, 1, 0],
        "is_live_streamer": [1, -124, -124, 0],
        "is_video_author": [1, 0, 0, 1],
        "follow_user_num": [514, 0, 7, 260],
        "follow_user_num_range": ["500+", "0", "(0,10]", "(250,500]"],
        "fans_user_num": [150, 0, 3, 2000],
        "fans_user_num_range": ["[100,1k)", "0", "[1,10)", "[1k,5k)"],
        "friend_user_num": [34, 0, 2, 50000],
        "friend_user_num_range": ["[30,60)", "0", "[1,5)", "250+"],
        "register_days": [799, 10, 200, 40],
        "register_days_range": ["730+", "8-14", "181-365", "31-60"],
    }
    for j in range(18):
        data[f"onehot_feat{j}"] = [float(j), 1.0, None, 0.0]
    return pl.DataFrame(data, schema=USER_SCHEMA)


def tiny_videos() -> pl.DataFrame:
    """Valid basic video features with nulls where the real file has them."""
    return pl.DataFrame(
        {
            "video_id": list(range(N_VIDEOS)),
            "author_id": [10, 11, 12, 13, 14, 15],
            "video_type": ["NORMAL"] * 5 + ["AD"],
            "upload_dt": ["2022-04-10"] * N_VIDEOS,
            "upload_type": ["LongImport"] * N_VIDEOS,
            "visible_status": [0.0] * N_VIDEOS,
            "video_duration": [10_000.0, 11_000.0, None, 13_000.0, 14_000.0, 15_000.0],
            "server_width": [720.0] * N_VIDEOS,
            "server_height": [1280.0] * N_VIDEOS,
            "music_id": [1, 2, 3, 4, 5, 6],
            "music_type": [9.0, None, 4.0, 9.0, 9.0, 9.0],
            "tag": ["39", "1,17", None, "2", "9", "11"],
        },
        schema=VIDEO_BASIC_SCHEMA,
    )


def tiny_statistics() -> pl.DataFrame:
    """Valid statistic features (every value 1.5)."""
    data: dict[str, object] = {"video_id": list(range(N_VIDEOS))}
    data.update({c: [1.5] * N_VIDEOS for c in VIDEO_STATISTIC_COLUMNS})
    return pl.DataFrame(data)


def write_tiny_release(root: Path, release: str) -> Path:
    """Write every official file of ``release`` with tiny valid contents into ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    makers = {
        FileKind.LOG_STANDARD: tiny_log,
        FileKind.LOG_RANDOM: lambda: tiny_log(rows=6, is_rand=1),
        FileKind.USER_FEATURES: tiny_users,
        FileKind.VIDEO_BASIC: tiny_videos,
        FileKind.VIDEO_STATISTIC: tiny_statistics,
    }
    from noetik.data.schema import Release

    for spec in expected_files(Release(release)):
        makers[spec.kind]().write_csv(root / spec.name)
    return root
