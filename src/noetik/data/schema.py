"""The published KuaiRand schema: file names per release, columns and their types.

Everything that reads or writes KuaiRand files (the loader, the synthetic generator, the cache)
takes names and dtypes from here, so there is exactly one definition of the format.

Reference: Gao et al., "KuaiRand: An Unbiased Sequential Recommendation Dataset with Randomly
Exposed Videos", CIKM 2022 (data licence CC BY-SA 4.0).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

import polars as pl


class Release(StrEnum):
    """The three official KuaiRand releases (the suffix used in their file names)."""

    PURE = "pure"
    K1 = "1k"
    K27 = "27k"


class FileKind(StrEnum):
    """Logical tables of a release; one kind may be split over several files (27K parts)."""

    LOG_STANDARD = "log_standard"
    LOG_RANDOM = "log_random"
    USER_FEATURES = "user_features"
    VIDEO_BASIC = "video_features_basic"
    VIDEO_STATISTIC = "video_features_statistic"


# ---------------------------------------------------------------------------------------------
# Columns
# ---------------------------------------------------------------------------------------------

#: Log columns in file order with the narrowest integer type that holds every published value.
LOG_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.Int32(),
    "video_id": pl.Int32(),
    "date": pl.Int32(),
    "hourmin": pl.Int16(),
    "time_ms": pl.Int64(),
    "is_click": pl.Int8(),
    "is_like": pl.Int8(),
    "is_follow": pl.Int8(),
    "is_comment": pl.Int8(),
    "is_forward": pl.Int8(),
    "is_hate": pl.Int8(),
    "long_view": pl.Int8(),
    "play_time_ms": pl.Int64(),
    "duration_ms": pl.Int64(),
    "profile_stay_time": pl.Int64(),
    "comment_stay_time": pl.Int64(),
    "is_profile_enter": pl.Int8(),
    "is_rand": pl.Int8(),
    "tab": pl.Int8(),
}

#: Binary feedback columns of the logs (0/1 in valid files).
BINARY_SIGNALS: tuple[str, ...] = (
    "is_click",
    "is_like",
    "is_follow",
    "is_comment",
    "is_forward",
    "is_hate",
    "long_view",
    "is_profile_enter",
)

ONEHOT_FEATURES: tuple[str, ...] = tuple(f"onehot_feat{i}" for i in range(18))

#: User feature columns. `_range` columns are strings such as "(0,10]", "500+", "[1k,5k)";
#: `onehot_feat*` are encrypted categorical codes (floats in the file when nulls occur).
USER_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.Int32(),
    "user_active_degree": pl.String(),
    "is_lowactive_period": pl.Int8(),
    "is_live_streamer": pl.Int16(),
    "is_video_author": pl.Int8(),
    "follow_user_num": pl.Int64(),
    "follow_user_num_range": pl.String(),
    "fans_user_num": pl.Int64(),
    "fans_user_num_range": pl.String(),
    "friend_user_num": pl.Int64(),
    "friend_user_num_range": pl.String(),
    "register_days": pl.Int64(),
    "register_days_range": pl.String(),
    **{name: pl.Float64() for name in ONEHOT_FEATURES},
}

#: Basic video features. Floats where the official file writes floats (nullable columns).
VIDEO_BASIC_SCHEMA: dict[str, pl.DataType] = {
    "video_id": pl.Int32(),
    "author_id": pl.Int64(),
    "video_type": pl.String(),
    "upload_dt": pl.String(),
    "upload_type": pl.String(),
    "visible_status": pl.Float64(),
    "video_duration": pl.Float64(),
    "server_width": pl.Float64(),
    "server_height": pl.Float64(),
    "music_id": pl.Int64(),
    "music_type": pl.Float64(),
    "tag": pl.String(),
}

#: Statistic feature columns after `video_id` (daily averages, all numeric).
VIDEO_STATISTIC_COLUMNS: tuple[str, ...] = (
    "counts",
    "show_cnt",
    "show_user_num",
    "play_cnt",
    "play_user_num",
    "play_duration",
    "complete_play_cnt",
    "complete_play_user_num",
    "valid_play_cnt",
    "valid_play_user_num",
    "long_time_play_cnt",
    "long_time_play_user_num",
    "short_time_play_cnt",
    "short_time_play_user_num",
    "play_progress",
    "comment_stay_duration",
    "like_cnt",
    "like_user_num",
    "click_like_cnt",
    "double_click_cnt",
    "cancel_like_cnt",
    "cancel_like_user_num",
    "comment_cnt",
    "comment_user_num",
    "direct_comment_cnt",
    "reply_comment_cnt",
    "delete_comment_cnt",
    "delete_comment_user_num",
    "comment_like_cnt",
    "comment_like_user_num",
    "follow_cnt",
    "follow_user_num",
    "cancel_follow_cnt",
    "cancel_follow_user_num",
    "share_cnt",
    "share_user_num",
    "download_cnt",
    "download_user_num",
    "report_cnt",
    "report_user_num",
    "reduce_similar_cnt",
    "reduce_similar_user_num",
    "collect_cnt",
    "collect_user_num",
    "cancel_collect_cnt",
    "cancel_collect_user_num",
    "direct_comment_user_num",
    "reply_comment_user_num",
    "share_all_cnt",
    "share_all_user_num",
    "outsite_share_all_cnt",
)

VIDEO_STATISTIC_SCHEMA: dict[str, pl.DataType] = {
    "video_id": pl.Int32(),
    **{name: pl.Float64() for name in VIDEO_STATISTIC_COLUMNS},
}

SCHEMAS: dict[FileKind, dict[str, pl.DataType]] = {
    FileKind.LOG_STANDARD: LOG_SCHEMA,
    FileKind.LOG_RANDOM: LOG_SCHEMA,
    FileKind.USER_FEATURES: USER_SCHEMA,
    FileKind.VIDEO_BASIC: VIDEO_BASIC_SCHEMA,
    FileKind.VIDEO_STATISTIC: VIDEO_STATISTIC_SCHEMA,
}

#: Columns that may hold nulls in valid files; every other column must be complete.
NULLABLE: dict[FileKind, frozenset[str]] = {
    FileKind.LOG_STANDARD: frozenset(),
    FileKind.LOG_RANDOM: frozenset(),
    FileKind.USER_FEATURES: frozenset(
        {"user_active_degree", *(c for c in USER_SCHEMA if c.endswith("_range")), *ONEHOT_FEATURES}
    ),
    FileKind.VIDEO_BASIC: frozenset(set(VIDEO_BASIC_SCHEMA) - {"video_id"}),
    FileKind.VIDEO_STATISTIC: frozenset(VIDEO_STATISTIC_COLUMNS),
}

#: Identifier columns: non-negative integers in valid files (nulls allowed where NULLABLE says).
ID_COLUMNS: frozenset[str] = frozenset({"user_id", "video_id", "author_id", "music_id"})

#: Primary key of each table.
KEYS: dict[FileKind, str] = {
    FileKind.LOG_STANDARD: "user_id",
    FileKind.LOG_RANDOM: "user_id",
    FileKind.USER_FEATURES: "user_id",
    FileKind.VIDEO_BASIC: "video_id",
    FileKind.VIDEO_STATISTIC: "video_id",
}

# ---------------------------------------------------------------------------------------------
# File names
# ---------------------------------------------------------------------------------------------

#: The two periods of the standard logs, as spelled in the file names.
STANDARD_PERIODS: tuple[str, ...] = ("4_08_to_4_21", "4_22_to_5_08")
RANDOM_PERIOD = "4_22_to_5_08"

#: Number of part files per (kind, period) in the 27K release.
_PARTS_27K: dict[tuple[FileKind, str], int] = {
    (FileKind.LOG_STANDARD, "4_08_to_4_21"): 2,
    (FileKind.LOG_STANDARD, "4_22_to_5_08"): 2,
    (FileKind.VIDEO_STATISTIC, ""): 3,
}


@dataclass(frozen=True)
class FileSpec:
    """One official file: its name, the table it belongs to and where it sits in that table."""

    name: str
    """File name exactly as published, e.g. ``log_random_4_22_to_5_08_pure.csv``."""
    kind: FileKind
    """The logical table this file is (part of)."""
    release: Release
    """The release the name belongs to."""
    period: str = ""
    """Date range of a log file (``4_08_to_4_21``), empty for feature files."""
    part: int = 0
    """Part number of a split 27K file (1-based), 0 when the file is not split."""

    @property
    def stem(self) -> str:
        """The name without ``.csv``; used to name cache files."""
        return self.name.removesuffix(".csv")


def _names(kind: FileKind, period: str, release: Release) -> list[FileSpec]:
    base = f"{kind.value}_{period}_{release.value}" if period else f"{kind.value}_{release.value}"
    parts = _PARTS_27K.get((kind, period), 0) if release is Release.K27 else 0
    if parts == 0:
        return [FileSpec(f"{base}.csv", kind, release, period)]
    return [FileSpec(f"{base}_part{i}.csv", kind, release, period, i) for i in range(1, parts + 1)]


def expected_files(release: Release) -> list[FileSpec]:
    """Every file the official ``release`` consists of, in canonical order."""
    specs: list[FileSpec] = []
    for period in STANDARD_PERIODS:
        specs += _names(FileKind.LOG_STANDARD, period, release)
    specs += _names(FileKind.LOG_RANDOM, RANDOM_PERIOD, release)
    for kind in (FileKind.USER_FEATURES, FileKind.VIDEO_BASIC, FileKind.VIDEO_STATISTIC):
        specs += _names(kind, "", release)
    return specs


_NAME_RE = re.compile(
    r"^(?P<kind>log_standard|log_random|user_features|video_features_basic|video_features_statistic)"
    r"(?:_(?P<period>\d_\d\d_to_\d_\d\d))?_(?P<release>pure|1k|27k)(?:_part(?P<part>\d))?\.csv$"
)


def parse_file_name(name: str) -> FileSpec | None:
    """The official file ``name`` describes, or None when it is not an official KuaiRand name."""
    match = _NAME_RE.match(name)
    if match is None:
        return None
    spec = FileSpec(
        name=name,
        kind=FileKind(match["kind"]),
        release=Release(match["release"]),
        period=match["period"] or "",
        part=int(match["part"] or 0),
    )
    return spec if spec in expected_files(spec.release) else None
