"""Episode assignment: sessions cut by inactivity gaps, fixed windows, known answers."""

from __future__ import annotations

import polars as pl
import pytest

from noetik.data.episodes import EpisodeConfig, assign_episodes
from noetik.errors import ConfigError

MIN = 60_000


def _toy() -> pl.DataFrame:
    """Three users. Gaps (minutes): user 1: 10, 40, 5; user 2: 31, 30; user 3: a single row."""
    return pl.DataFrame(
        {
            "user_id": [1, 1, 1, 1, 2, 2, 2, 3],
            "time_ms": [0, 10 * MIN, 50 * MIN, 55 * MIN, 0, 31 * MIN, 61 * MIN, 5 * MIN],
        }
    )


def test_sessions_on_toy_log() -> None:
    out = assign_episodes(_toy(), EpisodeConfig("session", session_gap_minutes=30))
    assert out["episode_id"].to_list() == [0, 0, 1, 1, 2, 3, 3, 4]
    assert out["step"].to_list() == [0, 1, 0, 1, 0, 0, 1, 0]
    assert out["episode_id"].dtype == pl.Int64
    assert out["step"].dtype == pl.Int32
    assert out.columns == ["user_id", "time_ms", "episode_id", "step"]


def test_session_gap_threshold() -> None:
    out = assign_episodes(_toy(), EpisodeConfig("session", session_gap_minutes=45))
    assert out["episode_id"].to_list() == [0, 0, 0, 0, 1, 1, 1, 2]
    assert out["step"].to_list() == [0, 1, 2, 3, 0, 1, 2, 0]


def test_windows_on_toy_log() -> None:
    out = assign_episodes(_toy(), EpisodeConfig("window", window=2))
    assert out["episode_id"].to_list() == [0, 0, 1, 1, 2, 2, 3, 4]
    assert out["step"].to_list() == [0, 1, 0, 1, 0, 1, 0, 0]
    out3 = assign_episodes(_toy(), EpisodeConfig("window", window=3))
    assert out3["episode_id"].to_list() == [0, 0, 0, 1, 2, 2, 2, 3]


def test_lazy_frame_and_uniqueness() -> None:
    lazy = assign_episodes(_toy().lazy(), EpisodeConfig())
    assert isinstance(lazy, pl.LazyFrame)
    out = lazy.collect()
    # an episode never spans two users
    assert out.group_by("episode_id").agg(pl.col("user_id").n_unique())["user_id"].max() == 1


def test_unsorted_frame_is_rejected() -> None:
    with pytest.raises(ValueError, match="sorted"):
        assign_episodes(_toy().reverse(), EpisodeConfig())


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"mode": "day"}, "episodes.mode"),
        ({"session_gap_minutes": 0}, "session_gap_minutes"),
        ({"window": 0}, "episodes.window"),
    ],
)
def test_invalid_episode_config(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        EpisodeConfig(**kwargs)  # type: ignore[arg-type]
