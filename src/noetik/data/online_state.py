"""Incremental 128-d states for B simulated users at once, identical to :func:`build_states`.

A simulator shows videos (action indices of :class:`ItemVocab`) to B users, gets the 12
feedback signals back and needs each user's next state as :func:`build_states` would have
computed it had the simulated interactions been in the log. :class:`OnlineStates` keeps, per
batch row, a ring buffer of the last K interactions plus running window sums, so that one
:meth:`OnlineStates.observe` and one :meth:`OnlineStates.push` cost O(B) numpy work:

>>> tables = OnlineStateTables.from_dataset(ds, vocab)
>>> states = OnlineStates(tables, batch_size=4096)
>>> states.reset(np.arange(4096), user_ids)                   # or history=history_after(...)
>>> obs = states.observe(time_s, tab, step)                   # (B, 128) float32
>>> states.push(actions, signals, time_s)                     # feedback of the shown videos

Differences from :func:`build_states` (all other dimensions agree to float32 rounding):

* ``hist.duration``: a logged row uses its own ``duration_ms`` when positive, else the video
  features' ``video_duration`` (``duration_eff_ms``); a simulated step knows only the video,
  so it uses ``video_duration``. Only rows whose positive logged ``duration_ms`` differs from
  ``video_duration`` could differ (none in the real KuaiRand-Pure sample); :meth:`push` takes
  the logged ``duration_ms`` to replay a log exactly.
* ``ctx.hour`` / ``ctx.weekday``: the log's ``date``/``hourmin`` name the hour in which a row
  was *recorded*, minutes after ``time_ms``; here they are the UTC+8 hour and weekday of
  ``time_s + clock_lag_s``. The default lag of 480 s gives the logged hour on 95.7 % of the
  real sample's rows (82.5 % without lag). :meth:`observe` takes ``hour``/``weekday``.
* :func:`history_before` / :func:`history_after` see only the rows of the given
  :class:`Transitions`: seeded from a split, earlier rows outside the split do not count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from noetik.data.dataset import KuaiRandDataset
from noetik.data.features import STATE_DIM, STATE_SLICES, TAG_BUCKETS, user_table, video_tag_table
from noetik.data.rewards import N_SIGNALS, SIGNALS
from noetik.data.schema import FileKind
from noetik.data.state_layout import CUM_SIGNALS, N_TABS, N_USER_DIMS, TIME_SIGNALS
from noetik.data.transitions import ItemVocab, Transitions
from noetik.utils.arrays import IdIndex

__all__ = [
    "DEFAULT_CLOCK_LAG_S",
    "UTC_OFFSET_S",
    "LoggedHistory",
    "OnlineStateTables",
    "OnlineStates",
    "clock_hour_weekday",
    "history_after",
    "history_before",
]

#: KuaiRand's local clock (``date``/``hourmin``) is UTC+8.
UTC_OFFSET_S = 8 * 3600
#: Seconds added to the clock for ``ctx.hour``/``ctx.weekday`` (see the module docs).
DEFAULT_CLOCK_LAG_S = 480.0
_TIME_SIG = np.array([SIGNALS.index(s) for s in TIME_SIGNALS], dtype=np.int64)
_CUM_COLS = np.array([SIGNALS.index(s) for s in CUM_SIGNALS], dtype=np.int64)
_S = STATE_SLICES
_TIME_COL = N_SIGNALS + 2  # ring columns: signals, log duration, duration known, time
_RING_COLS = N_SIGNALS + 3


def _circle(n: int) -> np.ndarray:
    """(n, 2) float32 ``sin, cos`` of ``i * 2 pi / n`` (as :func:`build_states` computes)."""
    angle = np.arange(n, dtype=np.float64) * (2 * np.pi / n)
    return np.column_stack([np.sin(angle), np.cos(angle)]).astype(np.float32)


_HOUR_TABLE, _DAY_TABLE = _circle(24), _circle(7)


def clock_hour_weekday(time_s: np.ndarray, lag_s: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """``(hour 0..23, weekday 0..6 with 0 = Monday)`` int64 (B,) of Unix seconds in UTC+8."""
    local = np.floor((np.asarray(time_s, dtype=np.float64) + (UTC_OFFSET_S + lag_s)) / 3600.0)
    hour = local.astype(np.int64)
    # 1970-01-01 was a Thursday (weekday 3).
    weekday = (np.floor_divide(hour, 24) + 3) % 7
    return hour % 24, weekday


@dataclass(frozen=True, eq=False)
class OnlineStateTables:
    """Per-user and per-action lookup tables of the state computation (A = number of actions).

    Row ``A`` of the action tables is padding (no tags, unknown duration).
    """

    user_ids: IdIndex
    """Users with a row in ``user_feats`` (sorted ids)."""
    user_feats: np.ndarray
    """(U, 49) float32 ``user.*`` slices (:func:`noetik.data.features.user_table`)."""
    action_tags: np.ndarray
    """(A + 1, 24) int32 multi-hot tag buckets of each action's video (zeros if unknown)."""
    action_log_duration: np.ndarray
    """(A + 1,) float64 ``log1p(video_duration / 1000)``; 0 where unknown."""
    action_duration_known: np.ndarray
    """(A + 1,) bool: the video's duration is known (positive ``video_duration``)."""

    @property
    def n_actions(self) -> int:
        """A, also the padding action index."""
        return len(self.action_tags) - 1

    @classmethod
    def from_frames(
        cls,
        vocab: ItemVocab,
        users: pl.DataFrame | pl.LazyFrame | None,
        videos: pl.DataFrame | pl.LazyFrame | None,
    ) -> OnlineStateTables:
        """Tables from the cleaned user/basic video features (None when absent)."""
        n = len(vocab)
        ids, feats = np.zeros(0, np.int64), np.zeros((0, N_USER_DIMS), np.float32)
        if users is not None:
            ids, feats = user_table(users)
        tags = np.zeros((n + 1, TAG_BUCKETS), dtype=np.int32)
        log_dur = np.zeros(n + 1, dtype=np.float64)
        known = np.zeros(n + 1, dtype=bool)
        if videos is not None:
            video_ids, video_tags = video_tag_table(videos)
            pos, found = IdIndex(video_ids).lookup(vocab.video_ids)
            tags[:n][found] = video_tags[pos[found]]
            frame = videos.lazy().select(pl.col("video_id").cast(pl.Int64), "video_duration")
            durations = frame.unique("video_id", keep="first").sort("video_id").collect()
            pos, found = IdIndex(durations["video_id"].to_numpy()).lookup(vocab.video_ids)
            dur = durations["video_duration"].cast(pl.Float64).fill_null(0.0).to_numpy()[pos]
            known[:n] = found & np.isfinite(dur) & (dur > 0)
            log_dur[:n] = np.log1p(np.where(known[:n], dur, 0.0) / 1000.0)
        return cls(IdIndex(ids), feats, tags, log_dur, known)

    @classmethod
    def from_dataset(cls, ds: KuaiRandDataset, vocab: ItemVocab) -> OnlineStateTables:
        """Tables of a dataset (its cleaned user and basic video features, when present)."""
        user_frame = ds.users() if ds.has(FileKind.USER_FEATURES) else None
        videos = ds.videos() if ds.has(FileKind.VIDEO_BASIC) else None
        return cls.from_frames(vocab, user_frame, videos)

    def user_block(self, user_ids: np.ndarray) -> np.ndarray:
        """(n, 49) float32 ``user.*`` slices; unknown users are zeros with missing.row = 1."""
        pos, found = self.user_ids.lookup(np.asarray(user_ids, dtype=np.int64))
        if len(self.user_ids) == 0:
            block = np.zeros((len(pos), N_USER_DIMS), dtype=np.float32)
        else:
            block = np.where(found[:, None], self.user_feats[pos], np.float32(0.0))
        block[:, N_USER_DIMS - 1] = ~found
        return block

    def durations(
        self, items: np.ndarray, duration_ms: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(log1p duration s (n,) float64, known (n,) bool)`` of actions ``items`` (n,).

        ``duration_ms`` (n,), when given, wins where positive (like ``duration_eff_ms``).
        """
        log_dur, known = self.action_log_duration[items], self.action_duration_known[items]
        if duration_ms is None:
            return log_dur, known
        own = np.asarray(duration_ms, dtype=np.float64)
        own_known = np.isfinite(own) & (own > 0)
        own_log = np.log1p(np.where(own_known, own, 0.0) / 1000.0)
        return np.where(own_known, own_log, log_dur), own_known | known


@dataclass(frozen=True)
class LoggedHistory:
    """A past to seed :meth:`OnlineStates.reset` with, for R users; right-aligned windows.

    Position ``K - 1`` is the most recent interaction; ``mask`` is true on the last
    ``min(n_past, K)`` positions (like :meth:`Transitions.history`).
    """

    items: np.ndarray
    """(R, K) int64 action indices (padding: ``n_actions``)."""
    signals: np.ndarray
    """(R, K, 12) float32 raw signals in :data:`SIGNALS` order (padding 0)."""
    time_s: np.ndarray
    """(R, K) float64 Unix seconds (padding 0)."""
    mask: np.ndarray
    """(R, K) bool, true where an interaction exists."""
    n_past: np.ndarray
    """(R,) int64 number of all previous interactions (``hist.length``)."""
    cum_sum: np.ndarray
    """(R, 4) float64 sums of :data:`CUM_SIGNALS` over all previous interactions."""
    duration_ms: np.ndarray | None = None
    """(R, K) float64 logged durations, or None to use the video features."""


def _history(t: Transitions, start: np.ndarray, end: np.ndarray, k: int) -> LoggedHistory:
    """The history made of rows ``start[r]:end[r]`` of ``t`` (one user each)."""
    past = end[:, None] - k + np.arange(k, dtype=np.int64)[None, :]
    mask = past >= start[:, None]
    safe = np.where(mask, past, 0)
    lengths = end - start
    seg = np.repeat(np.arange(len(start)), lengths)
    flat = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths - start, lengths)
    cum = t.signals[flat][:, _CUM_COLS].astype(np.float64)
    cum_sum = np.stack([np.bincount(seg, col, len(start)) for col in cum.T], axis=1)
    items = np.where(mask, t.action[safe], t.n_actions)
    signals = np.where(mask[:, :, None], t.signals[safe], np.float32(0.0))
    time_s = np.where(mask, t.time_ms[safe] / 1000.0, 0.0)
    return LoggedHistory(items, signals, time_s, mask, lengths.astype(np.int64), cum_sum)


def _sorted_users(t: Transitions) -> np.ndarray:
    users = t.user_id.astype(np.int64)
    if np.any(users[1:] < users[:-1]):
        raise ValueError("transitions must be sorted by user_id")
    return users


def history_before(t: Transitions, rows: np.ndarray, k: int = 10) -> LoggedHistory:
    """The logged past of each row of ``rows`` (R,) (its user's earlier rows in ``t``):
    seeding with it and observing with the row's context reproduces ``t.obs[rows]``."""
    rows = np.asarray(rows, dtype=np.int64)
    users = _sorted_users(t)
    start = np.searchsorted(users, users[rows], side="left").astype(np.int64)
    return _history(t, start, rows, k)


def history_after(t: Transitions, user_ids: np.ndarray, k: int = 10) -> LoggedHistory:
    """The whole logged past of each user of ``user_ids`` (R,) in ``t`` (empty if absent)."""
    ids = np.asarray(user_ids, dtype=np.int64)
    users = _sorted_users(t)
    start = np.searchsorted(users, ids, side="left").astype(np.int64)
    end = np.searchsorted(users, ids, side="right").astype(np.int64)
    return _history(t, start, end, k)


class OnlineStates:
    """States of B simulated users, advanced one interaction at a time (see module docs).

    ``history_len`` (K) must equal the ``FeatureConfig.history_len`` of the offline states;
    ``clock_lag_s`` is added to the clock before deriving ``ctx.hour``/``ctx.weekday``.
    Per batch row it keeps a ring buffer of the last K interactions (slot ``pos`` is written
    next) and running sums over it, so observe and push are O(B) without loops.
    """

    def __init__(
        self,
        tables: OnlineStateTables,
        batch_size: int,
        history_len: int = 10,
        *,
        clock_lag_s: float = DEFAULT_CLOCK_LAG_S,
    ) -> None:
        if batch_size < 1 or history_len < 1:
            raise ValueError("batch_size and history_len must be >= 1")
        self.tables, self.batch_size, self.history_len = tables, batch_size, history_len
        self.clock_lag_s = clock_lag_s
        b, k = batch_size, history_len
        self._ar = np.arange(b, dtype=np.int64)
        self.user_id = np.full(b, -1, dtype=np.int64)
        """(B,) int64 user of each batch row (-1 before its first reset)."""
        self.n_window = np.zeros(b, dtype=np.int64)
        """(B,) int64 interactions in the window (<= K)."""
        self.n_past = np.zeros(b, dtype=np.int64)
        """(B,) int64 all previous interactions (seeded ones included)."""
        self._user_rows = np.zeros((b, N_USER_DIMS), dtype=np.float32)
        self._pos = np.zeros(b, dtype=np.int64)
        self._ring_item = np.full((b, k), tables.n_actions, dtype=np.int64)
        self._ring_raw = np.zeros((b, k, N_SIGNALS), dtype=np.float32)
        # Columns: 12 transformed signals, log1p duration (0 if unknown), known, time_s.
        self._ring = np.zeros((b, k, _RING_COLS), dtype=np.float64)
        self._win = np.zeros((b, _TIME_COL), dtype=np.float64)
        self._win_tags = np.zeros((b, TAG_BUCKETS), dtype=np.int64)
        self._cum = np.zeros((b, len(CUM_SIGNALS)), dtype=np.float64)

    def reset(
        self, rows: np.ndarray, user_ids: np.ndarray, history: LoggedHistory | None = None
    ) -> None:
        """Restart batch ``rows`` (R,) for users ``user_ids`` (R,), empty or seeded."""
        rows = np.asarray(rows, dtype=np.int64)
        k, n = self.history_len, len(rows)
        h = history or LoggedHistory(
            np.full((n, k), self.tables.n_actions),
            np.zeros((n, k, N_SIGNALS), np.float32),
            np.zeros((n, k)),
            np.zeros((n, k), bool),
            np.zeros(n, np.int64),
            np.zeros((n, len(CUM_SIGNALS))),
        )
        if h.items.shape != (n, k):
            raise ValueError(f"history must have shape ({n}, {k}), got {h.items.shape}")
        count = h.mask.sum(axis=1)
        if np.any(h.mask != (np.arange(k) >= k - count[:, None])) or np.any(h.n_past < count):
            raise ValueError("history mask must be right-aligned and n_past >= its length")
        self.user_id[rows] = np.asarray(user_ids, dtype=np.int64)
        self._user_rows[rows] = self.tables.user_block(self.user_id[rows])
        self._ring_item[rows] = items = np.where(h.mask, h.items, self.tables.n_actions)
        self._ring_raw[rows] = raw = np.where(h.mask[:, :, None], h.signals, np.float32(0.0))
        own = None if h.duration_ms is None else np.asarray(h.duration_ms).ravel()
        ring = self._entries(items.ravel(), raw.reshape(-1, N_SIGNALS), h.time_s.ravel(), own)
        self._ring[rows] = np.where(h.mask[:, :, None], ring.reshape(n, k, _RING_COLS), 0.0)
        self._win[rows] = self._ring[rows, :, :_TIME_COL].sum(axis=1)
        self._win_tags[rows] = self.tables.action_tags[items].sum(axis=1)
        self._pos[rows], self.n_window[rows], self.n_past[rows] = 0, count, h.n_past
        self._cum[rows] = h.cum_sum

    def _entries(
        self, items: np.ndarray, raw: np.ndarray, time_s: np.ndarray, own: np.ndarray | None
    ) -> np.ndarray:
        """Ring entries (n, 15) float64 of interactions (n,)."""
        out = np.empty((len(items), _RING_COLS), dtype=np.float64)
        out[:, :N_SIGNALS] = raw
        out[:, _TIME_SIG] = np.log1p(np.maximum(out[:, _TIME_SIG], 0.0))
        log_dur, known = self.tables.durations(items, own)
        out[:, N_SIGNALS] = np.where(known, log_dur, 0.0)
        out[:, N_SIGNALS + 1] = known
        out[:, _TIME_COL] = time_s
        return out

    def observe(
        self,
        time_s: np.ndarray,
        tab: np.ndarray,
        step: np.ndarray,
        *,
        hour: np.ndarray | None = None,
        weekday: np.ndarray | None = None,
    ) -> np.ndarray:
        """(B, 128) float32 states before a video is shown at ``time_s`` (B,) float64 Unix
        seconds, in app ``tab`` (B,) int (outside 0..14: no tab) at episode ``step`` (B,) int.

        ``hour`` (0..23) and ``weekday`` (0 = Monday) (B,) ints override the clock.
        """
        time_s = np.asarray(time_s, dtype=np.float64)
        out = np.empty((self.batch_size, STATE_DIM), dtype=np.float32)
        out[:, :N_USER_DIMS] = self._user_rows
        self._write_history(out, time_s)
        clock_hour, clock_day = clock_hour_weekday(time_s, self.clock_lag_s)
        hour = clock_hour if hour is None else np.asarray(hour, dtype=np.int64) % 24
        weekday = clock_day if weekday is None else np.asarray(weekday, dtype=np.int64) % 7
        out[:, _S["ctx.hour"]] = _HOUR_TABLE[hour]
        out[:, _S["ctx.weekday"]] = _DAY_TABLE[weekday]
        tabs = out[:, _S["ctx.tab"]]
        tabs[...] = 0.0
        tab = np.asarray(tab, dtype=np.int64)
        valid = (tab >= 0) & (tab < N_TABS)
        tabs[self._ar[valid], tab[valid]] = 1.0
        step = np.asarray(step, dtype=np.float64)
        out[:, _S["ctx.step"]] = np.column_stack([np.log1p(step), step == 0])
        return out

    def _write_history(self, out: np.ndarray, time_s: np.ndarray) -> None:
        k, n, ar = self.history_len, self.n_window, self._ar
        denom = np.maximum(n, 1).astype(np.float64)[:, None]
        last = self._ring[ar, (self._pos - 1) % k]
        out[:, _S["hist.mean"]] = self._win[:, :N_SIGNALS] / denom
        out[:, _S["hist.last"]] = last[:, :N_SIGNALS]
        past = self.n_past.astype(np.float64)
        out[:, _S["hist.cum_mean"]] = self._cum / np.maximum(past, 1.0)[:, None]
        out[:, _S["hist.length"]] = np.column_stack([n / k, np.log1p(past)])
        has_prev = n > 0
        gap = np.log1p(np.maximum(time_s - last[:, _TIME_COL], 0.0))
        out[:, _S["hist.gap"]] = np.column_stack([np.where(has_prev, gap, 0.0), ~has_prev])
        oldest = self._ring[ar, (self._pos - n) % k, _TIME_COL]
        span = np.log1p(np.maximum(time_s - oldest, 0.0))
        out[:, _S["hist.span"].start] = np.where(has_prev, span, 0.0)
        out[:, _S["hist.tags"]] = self._win_tags / denom
        known = np.maximum(self._win[:, N_SIGNALS + 1], 1.0)
        out[:, _S["hist.duration"].start] = self._win[:, N_SIGNALS] / known

    def push(
        self,
        items: np.ndarray,
        signals: np.ndarray,
        time_s: np.ndarray,
        *,
        mask: np.ndarray | None = None,
        duration_ms: np.ndarray | None = None,
    ) -> None:
        """Append shown actions ``items`` (B,) int64 with their raw ``signals`` (B, 12)
        (:data:`SIGNALS` order) at ``time_s`` (B,) float64 to each row's history.

        ``mask`` (B,) bool: only these rows advance. ``duration_ms`` (B,): logged durations
        that win over the video features where positive (to replay a log exactly).
        """
        r = self._ar if mask is None else np.flatnonzero(mask)
        sel = slice(None) if mask is None else r
        items = np.asarray(items, dtype=np.int64)[sel]
        raw = np.asarray(signals, dtype=np.float32)[sel]
        own = None if duration_ms is None else np.asarray(duration_ms, dtype=np.float64)[sel]
        entry = self._entries(items, raw, np.asarray(time_s, dtype=np.float64)[sel], own)
        slot = self._pos[r]
        tags = self.tables.action_tags
        self._win[sel] += entry[:, :_TIME_COL] - self._ring[r, slot, :_TIME_COL]
        self._win_tags[sel] += tags[items] - tags[self._ring_item[r, slot]]
        self._ring[r, slot] = entry
        self._ring_item[r, slot] = items
        self._ring_raw[r, slot] = raw
        self._pos[sel] = (slot + 1) % self.history_len
        self.n_window[sel] = np.minimum(self.n_window[sel] + 1, self.history_len)
        self.n_past[sel] += 1
        self._cum[sel] += raw[:, _CUM_COLS]

    def history(self, time_s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The window like :meth:`Transitions.history` with ``k = K``, seen at ``time_s`` (B,).

        Returns ``item_idx`` (B, K) int64 (padding ``n_actions``), raw ``signals``
        (B, K, 12) float32, ``gap_s`` (B, K) float32 and ``mask`` (B, K) bool; oldest first.
        """
        k = self.history_len
        slots = (self._pos[:, None] + np.arange(k)[None, :]) % k
        mask = np.arange(k)[None, :] >= k - self.n_window[:, None]
        rows = self._ar[:, None]
        gap = np.asarray(time_s, dtype=np.float64)[:, None] - self._ring[rows, slots, _TIME_COL]
        return (
            np.where(mask, self._ring_item[rows, slots], self.tables.n_actions),
            np.where(mask[:, :, None], self._ring_raw[rows, slots], np.float32(0.0)),
            np.where(mask, gap, 0.0).astype(np.float32),
            mask,
        )
