"""Training and validation examples for the response model, built from the data layer.

An example is one logged exposure: the 128-d state before it (:mod:`noetik.data.features`),
the shown video (an :class:`~noetik.data.transitions.ItemVocab` index), whether it came from
the random-exposure log, and the feedback to predict (:data:`HEADS`). States of random rows
are built from the user's standard *and* random rows together (random exposures are
interleaved with normal feed exposures in time), so training and validation states are
computed the same way: :func:`build_examples` concatenates the standard log with extra rows
(the training users' random rows, or a validation log), sorts by user and time and keeps the
rows asked for.

Item side features (:class:`ItemTable`) come from the basic and statistic video features.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from rich.progress import Progress

from noetik.data.dataset import KuaiRandDataset
from noetik.data.episodes import assign_episodes
from noetik.data.features import (
    STATE_COLUMNS,
    TAG_BUCKETS,
    FeatureConfig,
    build_states,
    video_tag_table,
)
from noetik.data.item_stats import STAT_FEATURES, item_statistics
from noetik.data.quirks import add_watch_ratio
from noetik.data.reader import read_table
from noetik.data.rewards import SIGNAL_SOURCE_COLUMNS, SIGNALS, signals_expr
from noetik.data.schema import FileKind
from noetik.data.transitions import ItemVocab
from noetik.errors import ConfigError, DataError
from noetik.utils.arrays import IdIndex, standardise_columns

#: Binary feedback signals the model predicts (sigmoid heads, Bernoulli likelihood).
BINARY_HEADS: tuple[str, ...] = SIGNALS[:8]
#: Every predicted signal, in output column order: the binary ones, then ``watch_ratio``.
HEADS: tuple[str, ...] = (*BINARY_HEADS, "watch_ratio")
_HEAD_COLUMNS = [SIGNALS.index(h) for h in HEADS]
_FRAME_COLUMNS = (*STATE_COLUMNS, *SIGNAL_SOURCE_COLUMNS, "hourmin", "is_rand")

#: A random-user selection: a fraction of the random log's users (lowest ids first) or ids.
UserSpec = float | tuple[int, ...]


@dataclass(frozen=True, eq=False)
class Examples:
    """Aligned arrays of N exposures."""

    obs: np.ndarray
    """(N, 128) float16 states before the exposure."""
    item: np.ndarray
    """(N,) int64 vocabulary index of the shown video."""
    exposure: np.ndarray
    """(N,) float32, 1.0 for a random-exposure row, 0.0 for a standard-log row."""
    targets: np.ndarray
    """(N, 9) float32 feedback in :data:`HEADS` order (watch ratio in [0, 1])."""
    user_id: np.ndarray
    """(N,) int64 KuaiRand user id."""
    hour: np.ndarray
    """(N,) int64 logged hour bucket (``hourmin // 100``)."""
    tab: np.ndarray
    """(N,) int64 app tab."""

    def __len__(self) -> int:
        return len(self.item)

    def subset(self, mask: np.ndarray) -> Examples:
        """The rows where ``mask`` (N,) bool is true."""
        return Examples(**{k: v[mask] for k, v in vars(self).items()})


def parse_user_spec(text: str) -> UserSpec:
    """A fraction (``"0.7"``, ``"1"``, in (0, 1]) or ids and ranges (``"0-349"``, ``"1,5-9"``)."""
    text = text.strip()
    if text == "1" or ("." in text and "," not in text):
        try:
            return check_user_spec(float(text))
        except ValueError:
            pass
    ids: list[int] = []
    try:
        for part in filter(None, (p.strip() for p in text.split(","))):
            lo, _, hi = part.partition("-")
            ids.extend(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise ConfigError(
            f"--random-users: expected a fraction or ids like 0-349, got {text!r}"
        ) from None
    return check_user_spec(tuple(sorted(set(ids))))


def check_user_spec(spec: UserSpec) -> UserSpec:
    """``spec`` itself after checking it (fraction in (0, 1] or a non-empty id tuple)."""
    if isinstance(spec, tuple):
        if not spec:
            raise ConfigError("random_users: the user id list is empty")
        return tuple(int(u) for u in spec)
    if not 0.0 < float(spec) <= 1.0:
        raise ConfigError(f"random_users: a fraction must be in (0, 1], got {spec!r}")
    return float(spec)


def split_random_users(users: np.ndarray, spec: UserSpec) -> tuple[np.ndarray, np.ndarray]:
    """``(train, held_out)`` int64 ids of the random log's ``users`` (sorted) under ``spec``.

    A fraction keeps the first ``round(fraction * n)`` users by id (0.7 of users 0..499 is
    users 0..349), so the held-out users are the highest ids.
    """
    users = np.unique(np.asarray(users, dtype=np.int64))
    if isinstance(spec, tuple):
        chosen = np.isin(users, np.asarray(spec, dtype=np.int64))
    else:
        chosen = np.arange(len(users)) < round(float(spec) * len(users))
    return users[chosen], users[~chosen]


def random_log_users(ds: KuaiRandDataset) -> np.ndarray:
    """(U,) int64 sorted users of the random log (empty when the file is absent)."""
    if not ds.has(FileKind.LOG_RANDOM):
        return np.zeros(0, dtype=np.int64)
    ids = ds.scan(FileKind.LOG_RANDOM).select(pl.col("user_id").unique()).collect()
    return np.sort(ids["user_id"].to_numpy().astype(np.int64))


def random_rows(ds: KuaiRandDataset, users: np.ndarray) -> pl.LazyFrame:
    """The random log's rows of ``users``, with the derived columns of ``interactions``."""
    wanted = pl.Series(np.asarray(users, dtype=np.int64)).cast(pl.Int32)
    log = ds.interactions(FileKind.LOG_RANDOM)
    return log.filter(pl.col("user_id").cast(pl.Int32).is_in(wanted.implode()))


def write_random_rows(ds: KuaiRandDataset, users: np.ndarray, path: Path) -> int:
    """Write the random log's rows of ``users`` to ``path`` (official CSV schema); row count."""
    from noetik.data.schema import LOG_SCHEMA
    from noetik.utils.io import atomic_path

    frame = random_rows(ds, users).select(list(LOG_SCHEMA)).collect()
    with atomic_path(Path(path)) as tmp:
        frame.write_csv(tmp)
    return frame.height


def read_log(ds: KuaiRandDataset, path: Path) -> pl.LazyFrame:
    """A log CSV in the official schema, validated, with the derived columns, sorted."""
    frame = read_table(Path(path), FileKind.LOG_RANDOM).lazy()
    videos = ds.videos() if ds.has(FileKind.VIDEO_BASIC) else None
    return add_watch_ratio(frame.sort(["user_id", "time_ms"], maintain_order=True), videos)


def build_examples(
    ds: KuaiRandDataset,
    vocab: ItemVocab,
    extra: pl.LazyFrame | None,
    *,
    only_extra: bool = False,
    only_videos: np.ndarray | None = None,
    progress: Progress | None = None,
) -> Examples:
    """Examples of the standard log plus the ``extra`` rows (random exposures or validation).

    States use every row of both (per user, by time); ``only_extra`` keeps the extra rows only,
    ``only_videos`` (sorted int64 ids) the rows that show one of them (the others are still
    read for states). Rows whose video is unknown to ``vocab`` raise a DataError.
    """
    standard = ds.interactions(FileKind.LOG_STANDARD)
    if only_extra and extra is not None:
        # states and episodes are per user: other users' rows change none of the kept rows
        kept_users = extra.select(pl.col("user_id").cast(pl.Int64).unique()).collect()
        in_extra = pl.col("user_id").cast(pl.Int64).is_in(kept_users["user_id"].implode())
        standard = standard.filter(in_extra)
    parts = [standard.with_columns(pl.lit(False).alias("_extra"))]
    if extra is not None:
        parts.append(extra.with_columns(pl.lit(True).alias("_extra")))
    cols = [pl.col(c) for c in _FRAME_COLUMNS] + [pl.col("_extra")]
    lazy = pl.concat([p.select(cols) for p in parts], how="vertical_relaxed")
    frame = assign_episodes(lazy.sort(["user_id", "time_ms"], maintain_order=True)).collect()
    signals = frame.select(signals_expr()).to_numpy().astype(np.float32)
    keep = frame["_extra"].to_numpy() if only_extra else np.ones(frame.height, dtype=bool)
    if only_videos is not None:
        keep &= IdIndex(only_videos).lookup(frame["video_id"].to_numpy())[1]
    users = ds.users() if ds.has(FileKind.USER_FEATURES) else None
    videos = ds.videos() if ds.has(FileKind.VIDEO_BASIC) else None
    step = frame["step"].to_numpy()
    obs = build_states(
        frame, users, videos, FeatureConfig(), step, signals=signals, keep=keep, progress=progress
    )
    kept = frame.filter(pl.Series(keep))
    try:
        item = vocab.encode(kept["video_id"].to_numpy())
    except KeyError as exc:
        raise DataError(ds.root, f"{exc.args[0]} (not in the simulator's videos)") from None
    return Examples(
        obs=obs,
        item=item,
        exposure=kept["is_rand"].to_numpy().astype(np.float32),
        targets=np.ascontiguousarray(signals[keep][:, _HEAD_COLUMNS]),
        user_id=kept["user_id"].to_numpy().astype(np.int64),
        hour=(kept["hourmin"].to_numpy() // 100).astype(np.int64),
        tab=kept["tab"].to_numpy().astype(np.int64),
    )


# ---------------------------------------------------------------------------------------------
# Item side features
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ItemTable:
    """Side features of every vocabulary item (A items, F features)."""

    features: np.ndarray
    """(A, F) float32: the first 24 columns are the multi-hot tag buckets (0/1, the same
    buckets as the ``hist.tags`` state slice); the others are standardised over items."""
    names: tuple[str, ...]
    """F feature names."""


def build_item_table(ds: KuaiRandDataset, vocab: ItemVocab) -> ItemTable:
    """Tags, duration and statistic features of every item of ``vocab``."""
    ids = vocab.video_ids
    tags = np.zeros((len(ids), TAG_BUCKETS), dtype=np.float32)
    duration = np.zeros(len(ids))
    if ds.has(FileKind.VIDEO_BASIC):
        videos = ds.videos().collect()
        tag_ids, tag_table = video_tag_table(videos)
        pos, found = IdIndex(tag_ids).lookup(ids)
        tags[found] = tag_table[pos[found]]
        dur = pl.DataFrame({"video_id": ids}).join(
            videos.select(pl.col("video_id").cast(pl.Int64), "video_duration"),
            on="video_id",
            how="left",
        )
        duration = dur["video_duration"].fill_null(0.0).to_numpy()
    stats = item_statistics(ds, ids)
    first = [np.log1p(np.clip(duration, 0, None) / 1e3), duration <= 0]
    dense = np.column_stack([*(c.astype(np.float32) for c in first), stats])
    del stats
    dense = standardise_columns(dense)
    names = [f"tag_bucket{b}" for b in range(TAG_BUCKETS)]
    names += ["log1p_duration_s", "duration_missing", *STAT_FEATURES]
    features = np.column_stack([tags, dense]).astype(np.float32)
    return ItemTable(features=features, names=tuple(names))
