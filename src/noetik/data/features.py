"""The 128-dimensional state of a recommendation step: user, strict past history and context.

The state of interaction row ``i`` describes what is known *before* the video of row ``i`` is
shown: the user's profile, a summary of the user's previous interactions (rows before ``i`` of
the same user in the log; the feedback of row ``i`` itself never enters) and the context of
the request (time, tab, position in the episode). The video of row ``i`` is the action, so
none of its features are in the state. :data:`STATE_LAYOUT` documents every slice and
:func:`state_feature_names` names all 128 dimensions.

Missing values never give NaN: a missing user feature is 0 with a ``user.missing.*`` indicator
set; users absent from the user table get ``user.missing.row = 1``; videos absent from the
video table contribute no tags. Time-valued signals enter as ``log1p(seconds)``.

States are stored as float16 by default (``FeatureConfig.obs_dtype``): at KuaiRand-1K scale
(11.7M rows) float32 states alone would take 6 GB; every value here is O(1..15), well within
float16 range. Agents cast sampled batches to float32.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from rich.progress import Progress

from noetik.data.quirks import ACTIVE_DEGREES, RANGE_COLUMNS
from noetik.data.rewards import SIGNALS, signals_expr
from noetik.data.schema import ONEHOT_FEATURES
from noetik.data.state_layout import (
    CUM_SIGNALS,
    N_TABS,
    N_USER_DIMS,
    STATE_DIM,
    STATE_LAYOUT,
    STATE_SLICES,
    TAG_BUCKETS,
    TIME_SIGNALS,
    USER_COUNTS,
    USER_FLAGS,
    StateSlice,
    state_feature_names,
)
from noetik.errors import ConfigError
from noetik.utils.arrays import IdIndex, cast_into
from noetik.utils.parallel import ordered_map
from noetik.utils.progress import track

__all__ = [
    "STATE_COLUMNS",
    "STATE_DIM",
    "STATE_LAYOUT",
    "STATE_SLICES",
    "TAG_BUCKETS",
    "FeatureConfig",
    "StateSlice",
    "StateTables",
    "build_states",
    "state_feature_names",
    "state_tables",
    "tag_buckets",
    "user_table",
    "video_tag_table",
]


@dataclass(frozen=True)
class FeatureConfig:
    """How states are computed and stored."""

    history_len: int = 10
    """K: number of previous interactions summarised by the ``hist.*`` slices; >= 1."""
    obs_dtype: Literal["float16", "float32"] = "float16"
    """Storage dtype of states (float16 halves memory; cast batches to float32 to train)."""
    chunk_rows: int = 100_000
    """Approximate rows per computation chunk (chunks end at user boundaries); >= 1."""

    def __post_init__(self) -> None:
        for field in ("history_len", "chunk_rows"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"features.{field} must be an integer >= 1, got {value!r}")
        if self.obs_dtype not in ("float16", "float32"):
            raise ConfigError(
                f"features.obs_dtype must be 'float16' or 'float32', got {self.obs_dtype!r}"
            )


# ---------------------------------------------------------------------------------------------
# Lookup tables (per user, per video)
# ---------------------------------------------------------------------------------------------


def _user_exprs() -> list[pl.Expr]:
    deg = pl.col("user_active_degree")
    exprs = [(deg == d).fill_null(False) for d in ACTIVE_DEGREES]
    exprs.append(deg.is_null() | ~deg.is_in(list(ACTIVE_DEGREES)))
    exprs += [pl.col(c).fill_null(0) for c in USER_FLAGS]
    exprs += [pl.col(c).cast(pl.Float64).clip(0).fill_null(0).log1p() for c in USER_COUNTS]
    exprs.append(pl.col("register_days").cast(pl.Float64).clip(0).fill_null(0).log1p())
    for c in RANGE_COLUMNS:
        lo, hi = pl.col(f"{c}_lo").clip(0), pl.col(f"{c}_hi").clip(0)
        exprs.append(lo.fill_null(0).log1p())
        exprs.append(pl.when(hi.is_infinite()).then(2 * lo).otherwise(hi).fill_null(0).log1p())
    for c in ONEHOT_FEATURES:
        scale = pl.max_horizontal(pl.col(c).abs().max(), pl.lit(1.0))
        exprs.append((pl.col(c) / scale).fill_null(0).fill_nan(0))
    exprs.append(pl.col("is_live_streamer").is_null())
    exprs += [pl.col(f"{c}_lo").is_null() for c in RANGE_COLUMNS]
    exprs.append(pl.any_horizontal([pl.col(c).is_null() for c in ONEHOT_FEATURES]))
    exprs.append(pl.lit(False))
    return [e.cast(pl.Float32).alias(f"_u{i}") for i, e in enumerate(exprs)]


def user_table(users: pl.DataFrame | pl.LazyFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(user_ids (U,) int64 sorted, features (U, 49) float32)``: the ``user.*`` slices."""
    frame = users.lazy().unique("user_id", keep="first").sort("user_id")
    table = frame.select(pl.col("user_id").cast(pl.Int64), *_user_exprs()).collect()
    return table["user_id"].to_numpy(), table.drop("user_id").to_numpy().astype(np.float32)


def tag_buckets(tags: np.ndarray) -> np.ndarray:
    """Bucket of each tag id: ``tag mod 24`` (bucket b holds tags b, b + 24, b + 48, ...).

    KuaiRand tag ids are small consecutive integers (0..68 in Pure), so the modulo spreads them
    evenly and keeps every bucket readable.
    """
    return np.mod(tags.astype(np.int64), TAG_BUCKETS)


def video_tag_table(videos: pl.DataFrame | pl.LazyFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(video_ids (V,) int64 sorted, multi-hot (V, 24) uint8)`` of hashed tag buckets."""
    lazy = videos.lazy().select("video_id", "tags").unique("video_id", keep="first")
    frame = lazy.sort("video_id").collect()
    ids = frame["video_id"].cast(pl.Int64).to_numpy()
    exploded = frame.with_row_index("_row").select("_row", "tags").explode("tags").drop_nulls()
    table = np.zeros((len(ids), TAG_BUCKETS), dtype=np.uint8)
    rows = exploded["_row"].to_numpy().astype(np.int64)
    table[rows, tag_buckets(exploded["tags"].to_numpy())] = 1
    return ids, table


# ---------------------------------------------------------------------------------------------
# State computation
# ---------------------------------------------------------------------------------------------

#: Interaction columns :func:`build_states` reads (besides the signal source columns).
STATE_COLUMNS: tuple[str, ...] = (
    "user_id",
    "video_id",
    "time_ms",
    "date",
    "hour",
    "tab",
    "duration_eff_ms",
)


@dataclass(frozen=True)
class StateTables:
    """The feature tables a state reads besides the log (see :func:`state_tables`)."""

    user_ids: IdIndex
    """Lookup of the U users of ``user_feats``."""
    user_feats: np.ndarray
    """(U, N_USER_DIMS) float32 user profile block per user."""
    video_ids: IdIndex
    """Lookup of the V videos of ``video_tags``."""
    video_tags: np.ndarray
    """(V, TAG_BUCKETS) uint8 multi-hot tag buckets per video."""


def _windows(user: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: index of its user's first row, and the start/length of its last-k window."""
    index = np.arange(len(user), dtype=np.int64)
    is_start = np.ones(len(user), dtype=bool)
    is_start[1:] = user[1:] != user[:-1]
    user_start = np.maximum.accumulate(np.where(is_start, index, 0))
    lo = np.maximum(index - k, user_start)
    return user_start, lo, index - lo


def _prefix(values: np.ndarray, dtype: type[np.generic] = np.float64) -> np.ndarray:
    """Exclusive prefix sums along axis 0 (length n + 1), in ``dtype``."""
    out = np.zeros((values.shape[0] + 1, *values.shape[1:]), dtype=dtype)
    np.cumsum(values, axis=0, out=out[1:])
    return out


def _window_mean(csum: np.ndarray, lo: np.ndarray, hi: np.ndarray, count: np.ndarray) -> np.ndarray:
    total = csum[hi] - csum[lo]
    denom = np.maximum(count, 1).astype(np.float64)
    mean: np.ndarray = total / (denom[:, None] if total.ndim == 2 else denom)
    return mean


def _tag_counts(chunk: pl.DataFrame, tables: StateTables) -> np.ndarray:
    """Per row, the multi-hot tag buckets (n, 24) int32 of its video (zeros if unknown)."""
    if len(tables.video_ids) == 0:
        return np.zeros((chunk.height, TAG_BUCKETS), dtype=np.int32)
    vpos, vfound = tables.video_ids.lookup(chunk["video_id"].to_numpy())
    tags: np.ndarray = tables.video_tags[vpos].astype(np.int32)
    tags[~vfound] = 0
    return tags


def _history_block(
    chunk: pl.DataFrame, sig: np.ndarray, tables: StateTables, k: int, block: np.ndarray
) -> None:
    """Write the ``hist.*`` slices of a chunk that holds whole users into ``block`` (n, 128)."""
    put = {name: STATE_SLICES[name] for name in STATE_SLICES if name.startswith("hist.")}
    user = chunk["user_id"].to_numpy()
    time_s = chunk["time_ms"].to_numpy().astype(np.float64) / 1000.0
    values = sig.astype(np.float64)
    for name in TIME_SIGNALS:
        j = SIGNALS.index(name)
        values[:, j] = np.log1p(np.maximum(values[:, j], 0.0))
    user_start, lo, count = _windows(user, k)
    index = np.arange(len(user), dtype=np.int64)
    has_prev = index > user_start
    prev = np.maximum(index - 1, 0)
    csum = _prefix(values)
    block[:, put["hist.mean"]] = _window_mean(csum, lo, index, count)
    block[:, put["hist.last"]] = np.where(has_prev[:, None], values[prev], 0.0)
    cum = csum[:, [SIGNALS.index(s) for s in CUM_SIGNALS]]
    block[:, put["hist.cum_mean"]] = _window_mean(cum, user_start, index, index - user_start)
    block[:, put["hist.length"]] = np.column_stack([count / k, np.log1p(index - user_start)])
    gap = np.where(has_prev, np.log1p(np.maximum(time_s - time_s[prev], 0.0)), 0.0)
    block[:, put["hist.gap"]] = np.column_stack([gap, ~has_prev])
    span = np.where(count > 0, np.log1p(np.maximum(time_s - time_s[lo], 0.0)), 0.0)
    block[:, put["hist.span"].start] = span
    tag_sum = _prefix(_tag_counts(chunk, tables), np.int32)
    block[:, put["hist.tags"]] = _window_mean(tag_sum, lo, index, count)
    duration = chunk["duration_eff_ms"].cast(pl.Float64).fill_null(0.0).to_numpy()
    known = np.isfinite(duration) & (duration > 0)
    log_dur = np.log1p(np.where(known, duration, 0.0) / 1000.0)
    known_sum = _prefix(known, np.int32)
    dur = _window_mean(_prefix(log_dur), lo, index, known_sum[index] - known_sum[lo])
    block[:, put["hist.duration"].start] = dur


def _weekday(date: np.ndarray) -> np.ndarray:
    """Day of week (0 = Monday) of YYYYMMDD integers (N,), via the Julian day number."""
    date = date.astype(np.int64)
    year, month, day = date // 10_000, date // 100 % 100, date % 100
    a = (14 - month) // 12
    y, m = year + 4800 - a, month + 12 * a - 3
    jdn = day + (153 * m + 2) // 5 + 365 * y + y // 4 - y // 100 + y // 400 - 32045
    weekday: np.ndarray = jdn % 7
    return weekday


def _context_block(chunk: pl.DataFrame, step: np.ndarray) -> np.ndarray:
    """The ``ctx.*`` slices (n, 21), float64."""
    day = _weekday(chunk["date"].to_numpy()).astype(np.float64) * (2 * np.pi / 7)
    hour = chunk["hour"].fill_null(0).to_numpy().astype(np.float64) * (2 * np.pi / 24)
    tab = chunk["tab"].fill_null(-1).to_numpy().astype(np.int64)
    tabs = (tab[:, None] == np.arange(N_TABS)[None, :]).astype(np.float64)
    step = step.astype(np.float64)
    return np.column_stack(
        [np.sin(hour), np.cos(hour), np.sin(day), np.cos(day), tabs, np.log1p(step), step == 0]
    )


def _user_block(chunk: pl.DataFrame, tables: StateTables) -> np.ndarray:
    """The ``user.*`` slices (n, 49), float32; unknown users are zeros with missing.row = 1."""
    n_user = N_USER_DIMS
    pos, found = tables.user_ids.lookup(chunk["user_id"].to_numpy())
    if len(tables.user_ids) == 0:
        block = np.zeros((chunk.height, n_user), dtype=np.float32)
    else:
        block = np.where(found[:, None], tables.user_feats[pos], np.float32(0.0))
    block[:, n_user - 1] = ~found
    return block


def _chunks(user: np.ndarray, chunk_rows: int) -> list[tuple[int, int]]:
    """Row ranges of about ``chunk_rows`` rows that never split a user."""
    starts = np.flatnonzero(np.r_[True, user[1:] != user[:-1]]) if len(user) else np.array([])
    bounds = [0]
    while bounds[-1] < len(user):
        nxt = int(np.searchsorted(starts, bounds[-1] + chunk_rows))
        bounds.append(int(starts[nxt]) if nxt < len(starts) else len(user))
    return list(itertools.pairwise(bounds))


def state_tables(
    users: pl.DataFrame | pl.LazyFrame | None, videos: pl.DataFrame | pl.LazyFrame | None
) -> StateTables:
    """The cleaned user and video tables in the form states read (None: the table is absent).
    Computed once and shared when states are built piece by piece (shards of a log)."""
    empty_ids = np.zeros(0, dtype=np.int64)
    user_ids, user_feats = (
        user_table(users)
        if users is not None
        else (empty_ids, np.zeros((0, N_USER_DIMS), np.float32))
    )
    video_ids, video_tags = (
        video_tag_table(videos)
        if videos is not None
        else (empty_ids, np.zeros((0, TAG_BUCKETS), np.uint8))
    )
    return StateTables(IdIndex(user_ids), user_feats, IdIndex(video_ids), video_tags)


def _state_block(
    chunk: pl.DataFrame,
    signals: np.ndarray,
    step: np.ndarray,
    tables: StateTables,
    config: FeatureConfig,
) -> np.ndarray:
    """States (n, 128) float32 of one chunk holding whole users."""
    block = np.empty((chunk.height, STATE_DIM), dtype=np.float32)
    block[:, :N_USER_DIMS] = _user_block(chunk, tables)
    _history_block(chunk, signals, tables, config.history_len, block)
    block[:, STATE_SLICES["ctx.hour"].start :] = _context_block(chunk, step)
    return block


def build_states(
    interactions: pl.DataFrame | pl.LazyFrame,
    users: pl.DataFrame | pl.LazyFrame | None,
    videos: pl.DataFrame | pl.LazyFrame | None,
    config: FeatureConfig | None = None,
    episode_step: np.ndarray | None = None,
    *,
    signals: np.ndarray | None = None,
    keep: np.ndarray | None = None,
    progress: Progress | None = None,
    tables: StateTables | None = None,
) -> np.ndarray:
    """States (N, 128) in ``config.obs_dtype`` of the rows of ``interactions``.

    ``interactions`` must be sorted by ``user_id, time_ms`` and hold :data:`STATE_COLUMNS`
    (plus the signal source columns unless ``signals`` (N, 12), in :data:`SIGNALS` order, is
    given). History features of a row use only earlier rows of the same user in this frame.
    ``episode_step`` (N,) is each row's step in its episode (default: the ``step`` column).
    ``keep`` (N,) bool selects the rows whose states are returned (history still uses all
    rows). ``users``/``videos`` are the cleaned feature tables, None when absent; ``tables``,
    when given, replaces them (:func:`state_tables` of them, computed once by the caller).
    Computed in chunks of whole users (``config.chunk_rows``) to bound memory.
    """
    config = config or FeatureConfig()
    frame = interactions.collect() if isinstance(interactions, pl.LazyFrame) else interactions
    if episode_step is None:
        if "step" not in frame.columns:
            raise ValueError("episode_step not given and interactions have no 'step' column")
        episode_step = frame["step"].to_numpy()
    if signals is None:
        signals = frame.select(signals_expr()).to_numpy().astype(np.float32)
    if len(signals) != frame.height or len(episode_step) != frame.height:
        raise ValueError("signals and episode_step must have one entry per interaction row")
    tables = tables or state_tables(users, videos)
    frame = frame.select(STATE_COLUMNS)
    n_out = frame.height if keep is None else int(np.count_nonzero(keep))
    out = np.empty((n_out, STATE_DIM), dtype=np.dtype(config.obs_dtype))
    ranges = _chunks(frame["user_id"].to_numpy(), config.chunk_rows)

    def compute(bounds: tuple[int, int]) -> np.ndarray:
        lo, hi = bounds
        return _state_block(
            frame.slice(lo, hi - lo), signals[lo:hi], episode_step[lo:hi], tables, config
        )

    dst = 0
    chunks = zip(ranges, ordered_map(compute, ranges), strict=True)
    for (lo, hi), block in track(chunks, len(ranges), "Building states", progress):
        rows = block if keep is None else block[keep[lo:hi]]
        cast_into(out[dst : dst + len(rows)], rows)
        dst += len(rows)
    return out
