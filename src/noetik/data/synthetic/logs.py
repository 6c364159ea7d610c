"""Interaction logs: sessions and timestamps, tabs, the logging policies and the 12 signals.

A log chunk is generated for a contiguous block of users in four vectorised steps:

1. how many exposures each user gets and when (sessions, ``time_ms``, ``date``, ``hourmin``);
2. in which tab each exposure happens;
3. which video is shown: the BIASED softmax policy (standard logs; dense, or exactly the same
   distribution through topic groups, ``GroupedPolicy``, plus optionally one exposure of every
   catalogue video, ``Coverage``) or a UNIFORM draw from the random-exposure pool (random log,
   ``is_rand = 1``);
4. the user's response (``respond``): play time from the engagement model, then every signal.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import NDArray

from noetik.data.schema import LOG_SCHEMA
from noetik.data.synthetic.config import HOUR_SHARE, N_TABS, RANDOM_TAB_SHARE, SynthConfig
from noetik.data.synthetic.world import (
    CLICK_THRESHOLD_MS,
    F64,
    I64,
    LONG_VIEW_THRESHOLD_MS,
    SyntheticWorld,
    sigmoid,
)
from noetik.utils.seeding import rng

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
#: Asia/Shanghai is UTC+8 all year (no daylight saving time).
UTC_OFFSET_MS = 8 * HOUR_MS


@dataclass(frozen=True)
class Period:
    """A span of local days (days since 1970-01-01, inclusive) a log covers."""

    first_day: int
    last_day: int

    @property
    def n_days(self) -> int:
        """Number of days in the period."""
        return self.last_day - self.first_day + 1


def interaction_counts(
    world: SyntheticWorld, users: I64, mean: float, g: np.random.Generator
) -> I64:
    """Exposures per user: Poisson(mean * activity_u), at least 1. ``users``: (n,) int64."""
    lam = mean * world.activity[users]
    return np.maximum(g.poisson(lam), 1).astype(np.int64)


def session_times(
    counts: I64, period: Period, session_length: float, gap_mean_s: float, g: np.random.Generator
) -> I64:
    """Epoch-ms times for ``counts[i]`` exposures of each user (rows grouped by user, sorted).

    Each user has ``1 + Poisson(n / session_length)`` sessions; a session starts on a uniform
    day at an hour drawn from the real hour-of-day profile; exposures within it are separated
    by exponential gaps. Returns int64 local-clock ms (UTC+8), shape (counts.sum(),).
    """
    n_users = counts.shape[0]
    n_sess = 1 + g.poisson(counts / session_length)
    row_user = np.repeat(np.arange(n_users), counts)
    sess_base = np.cumsum(n_sess) - n_sess
    sess = sess_base[row_user] + (g.random(row_user.shape[0]) * n_sess[row_user]).astype(np.int64)
    total = int(n_sess.sum())
    hours = g.choice(24, size=total, p=np.asarray(HOUR_SHARE) / np.sum(HOUR_SHARE))
    start = (
        (period.first_day + g.integers(0, period.n_days, size=total)) * DAY_MS
        + hours * HOUR_MS
        + (g.random(total) * HOUR_MS).astype(np.int64)
    )
    order = np.argsort(sess, kind="stable")
    sorted_sess = sess[order]
    gaps = np.asarray(g.exponential(gap_mean_s * 1000.0, size=sorted_sess.shape[0])).astype(
        np.int64
    )
    first = np.r_[True, sorted_sess[1:] != sorted_sess[:-1]]
    gaps[first] = 0
    csum = np.cumsum(gaps)
    group_start = np.maximum.accumulate(np.where(first, np.arange(csum.shape[0]), 0))
    offset = csum - csum[group_start]
    local = np.empty_like(offset)
    local[order] = start[sorted_sess] + offset
    return _end_clamp(local, sess, period)


def _end_clamp(local: I64, sess: I64, period: Period) -> I64:
    """Move sessions that run past the last day (plus logging lag) back by one day."""
    limit = (period.last_day + 1) * DAY_MS - HOUR_MS
    late = np.zeros(int(sess.max()) + 1 if sess.size else 0, dtype=bool)
    late[sess[local >= limit]] = True
    shifted = local - np.where(late[sess], DAY_MS, 0)
    return np.asarray(shifted, dtype=np.int64)


def bucket_times(local: I64, g: np.random.Generator, lag_mean_min: float) -> tuple[I64, I64, I64]:
    """(time_ms, date YYYYMMDD, hourmin HHMM) from local-clock ms, shape (n,) each.

    Like the real logs, ``date``/``hourmin`` name the hour in which the row was recorded, a
    Gamma(9)-distributed delay (capped at 55 min) after ``time_ms``.
    """
    lag = np.minimum(g.gamma(9.0, lag_mean_min / 9.0, size=local.shape[0]), 55.0)
    rec = local + (lag * 60_000).astype(np.int64)
    day = rec // DAY_MS
    hour = (rec % DAY_MS) // HOUR_MS
    days = np.unique(day)
    names = np.datetime_as_string(days.astype("datetime64[D]"), unit="D")
    codes = np.char.replace(names, "-", "").astype(np.int64)
    date = codes[np.searchsorted(days, day)]
    return local - UTC_OFFSET_MS, date, hour * 100


def draw_tabs(probs: F64, g: np.random.Generator) -> I64:
    """One categorical draw per row of ``probs`` (shape (n, 15), rows sum to 1), int64 (n,)."""
    cdf = np.cumsum(probs, axis=1)
    u = g.random(probs.shape[0]) * cdf[:, -1]
    return np.asarray((u[:, None] >= cdf[:, :-1]).sum(axis=1), dtype=np.int64)


def policy_videos(world: SyntheticWorld, users: I64, counts: I64, g: np.random.Generator) -> I64:
    """Videos chosen by the biased softmax policy, ``counts[i]`` for each of ``users`` (n,).

    Vectorised inverse-CDF sampling over the (users x videos) softmax matrix; rows grouped by
    user like ``np.repeat(users, counts)``. Returns int64 video ids.
    """
    logits = world.policy_logits(users)
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    cdf = np.cumsum(probs, axis=1)
    cdf /= cdf[:, -1:]
    cdf += np.arange(users.shape[0])[:, None]
    row = np.repeat(np.arange(users.shape[0]), counts)
    flat = np.searchsorted(cdf.ravel(), row + g.random(row.shape[0]) * (1 - 1e-12), side="right")
    return np.asarray(flat - row * world.n_videos, dtype=np.int64)


@dataclass(frozen=True, eq=False)
class GroupedPolicy:
    """The standard logging policy sampled exactly through the videos' topic groups.

    The policy score ``beta_aff * topic(u, v) + beta_pop * log pop_v`` depends on a video only
    through its topic group ``G`` (``SyntheticWorld.topic_groups``) and its popularity, so the
    softmax factorises: ``P(v | u) = P(G | u) P(v | G)`` with
    ``P(G | u) ∝ exp(beta_aff * topic(u, G)) * M_G``,
    ``M_G = sum_{v in G} exp(beta_pop * log pop_v)`` and ``P(v | G) ∝ exp(beta_pop * log pop_v)``.
    This is the SAME distribution as ``policy_videos`` (no approximation), at O(users x groups)
    per block plus O(log videos) per row instead of O(users x videos).
    """

    group: I64
    """Group of each video, shape (n_videos,)."""
    member: I64
    """One video of each group (its topic affinity is the group's), shape (n_groups,)."""
    log_mass: F64
    """``log M_G`` per group, shape (n_groups,)."""
    order: I64
    """Video ids sorted by group (stable), shape (n_videos,)."""
    cdf: F64
    """Within-group CDF of ``P(v | G)`` along ``order``, plus the group number: group ``G``
    occupies ``(G, G + 1]``, shape (n_videos,)."""

    @classmethod
    def build(cls, world: SyntheticWorld) -> GroupedPolicy:
        """Group tables of ``world`` (O(n_videos log n_videos), once per dataset)."""
        group, member = world.topic_groups()
        order = np.argsort(group, kind="stable")
        score = world.config.params.policy_popularity * world.log_popularity[order]
        bounds = np.searchsorted(group[order], np.arange(member.shape[0] + 1))
        cdf = np.empty(order.shape[0], dtype=np.float64)
        log_mass = np.empty(member.shape[0], dtype=np.float64)
        for j, (lo, hi) in enumerate(itertools.pairwise(bounds)):
            top = float(score[lo:hi].max())
            csum = np.cumsum(np.exp(score[lo:hi] - top))
            cdf[lo:hi] = csum / csum[-1] + j
            log_mass[j] = top + np.log(csum[-1])
        return cls(group=group, member=member, log_mass=log_mass, order=order, cdf=cdf)

    def sample(self, world: SyntheticWorld, users: I64, counts: I64, g: np.random.Generator) -> I64:
        """Like ``policy_videos``: ``counts[i]`` videos for each of ``users``, grouped by user."""
        p = world.config.params
        n_groups = self.member.shape[0]
        aff = world.topic_affinity(users[:, None], self.member[None, :])
        logits = p.policy_affinity * aff + self.log_mass[None, :]
        logits -= logits.max(axis=1, keepdims=True)
        cdf = np.cumsum(np.exp(logits), axis=1)
        cdf /= cdf[:, -1:]
        cdf += np.arange(users.shape[0])[:, None]
        row = np.repeat(np.arange(users.shape[0]), counts)
        u_group, u_video = g.random(row.shape[0]), g.random(row.shape[0])
        flat = np.searchsorted(cdf.ravel(), row + u_group * (1 - 1e-12), side="right")
        chosen = flat - row * n_groups
        pos = np.searchsorted(self.cdf, chosen + u_video * (1 - 1e-12), side="right")
        return np.asarray(self.order[pos], dtype=np.int64)


@dataclass(frozen=True, eq=False)
class Coverage:
    """Catalogue coverage: every video shown exactly once by dedicated standard exposures.

    A random permutation of the catalogue is dealt to users in proportion to their activity
    (multinomial); each user's share replaces that many of her exposures, at random positions
    among them (hence random sessions and times). Together with the policy's exposures every
    video appears at least once, most once or twice, with the policy's heavy head on top.
    """

    per_user: I64
    """Coverage exposures of each user, shape (n_users,), summing to n_videos."""
    start: I64
    """Offset of each user's share in ``videos``, shape (n_users + 1,)."""
    videos: I64
    """The catalogue in random order, shape (n_videos,)."""

    @classmethod
    def build(cls, world: SyntheticWorld) -> Coverage:
        """Deal the catalogue of ``world`` (stream ``rng(seed, "coverage")``)."""
        g = rng(world.config.seed, "coverage")
        share = world.activity / world.activity.sum()
        per_user = g.multinomial(world.n_videos, share).astype(np.int64)
        videos = g.permutation(world.n_videos).astype(np.int64)
        return cls(per_user=per_user, start=np.r_[0, np.cumsum(per_user)], videos=videos)

    def place(self, users: I64, counts: I64, policy: I64, g: np.random.Generator) -> I64:
        """Rows of ``users`` (``counts`` each, grouped by user) with the coverage videos placed.

        ``policy`` holds ``counts - per_user[users]`` policy videos per user (grouped by user);
        every user must have ``counts >= per_user[users]``.
        """
        cover = self.per_user[users]
        row = np.repeat(np.arange(users.shape[0]), counts)
        shuffled = np.argsort(row + g.random(row.shape[0]), kind="stable")
        first = np.cumsum(counts) - counts
        is_cover = np.arange(row.shape[0]) - first[row] < cover[row]
        cov_user = np.repeat(np.arange(users.shape[0]), cover)
        cov_first = np.cumsum(cover) - cover
        cov_pos = self.start[users][cov_user] + np.arange(cov_user.shape[0]) - cov_first[cov_user]
        out = np.empty(row.shape[0], dtype=np.int64)
        out[shuffled[is_cover]] = self.videos[cov_pos]
        out[shuffled[~is_cover]] = policy
        return out


def respond(
    world: SyntheticWorld, users: I64, videos: I64, hour: I64, tab: I64, *, g: np.random.Generator
) -> dict[str, I64]:
    """Draw every feedback signal for exposures (users, videos, hour, tab), each shape (n,)."""
    p = world.config.params
    n = users.shape[0]
    z = world.engagement_logit(users, videos, hour, tab)
    dur = world.duration_ms[videos].astype(np.float64)
    opened = g.random(n) < world.open_probability(z, tab)
    engaged = g.random(n) < sigmoid(z)
    depth = np.minimum(
        1.0, (1.0 + p.complete_stretch) * g.random(n) ** (1.0 / world.depth_exponent(z))
    )
    replay_logit = p.replay_logit + z - np.log(dur / 30_000.0)
    replay = (depth >= 1.0) & (g.random(n) < sigmoid(replay_logit))
    extra = p.replay_scale * (g.random(n) ** (-1.0 / p.replay_shape) - 1.0)
    depth = depth + np.where(replay, np.minimum(extra, 20.0), 0.0)
    u = np.clip(g.random(n), 1e-9, 1 - 1e-9)
    skim = p.skim_median_ms * (u / (1.0 - u)) ** (1.0 / p.skim_shape)
    play = np.where(engaged, depth * dur, skim)
    play = np.where(opened, np.round(play), 0.0).astype(np.int64)
    out = _binary_signals(world, z, play, dur, opened, g=g)
    logged_dur = np.where(world.is_picture[videos], 0, world.duration_ms[videos])
    out.update(play_time_ms=play, duration_ms=logged_dur.astype(np.int64))
    return out


def reach(play: I64, dur: F64, limit: int) -> NDArray[np.bool_]:
    """Official definitions: play >= duration for videos <= ``limit`` ms, else play >= limit.

    (``is_click``: limit 7 s and strictly longer than 7 s; ``long_view``: limit 18 s.)
    """
    short = dur <= limit
    if limit == CLICK_THRESHOLD_MS:
        return np.asarray(np.where(short, play >= dur, play > limit), dtype=np.bool_)
    return np.asarray(np.where(short, play >= dur, play >= limit), dtype=np.bool_)


def _binary_signals(
    world: SyntheticWorld,
    z: F64,
    play: I64,
    dur: F64,
    opened: NDArray[np.bool_],
    *,
    g: np.random.Generator,
) -> dict[str, I64]:
    p = world.config.params
    n = z.shape[0]
    click = reach(play, dur, CLICK_THRESHOLD_MS)
    long_view = reach(play, dur, LONG_VIEW_THRESHOLD_MS)
    lv = long_view.astype(np.float64)

    def bern(logit: F64) -> NDArray[np.bool_]:
        return np.asarray(opened & (g.random(n) < sigmoid(logit)), dtype=np.bool_)

    like = bern(p.like_logit + 0.6 * z + 1.2 * lv)
    profile = bern(p.profile_logit + 0.6 * z + 1.0 * lv)
    follow = bern(p.follow_logit + 0.6 * z + 3.0 * profile)
    comment_open = bern(p.comment_open_logit + 0.6 * z + 1.2 * lv)
    comment = comment_open & (g.random(n) < sigmoid(p.comment_logit + 0.5 * z))
    forward = bern(p.forward_logit + 0.7 * z + 1.0 * lv)
    hate = bern(p.hate_logit - 0.2 * z)
    comment_stay = np.where(
        comment_open, g.lognormal(np.log(p.comment_stay_median_ms), 1.2, size=n), 0.0
    )
    has_stay = profile & (g.random(n) < p.profile_stay_share)
    profile_stay = np.where(has_stay, g.lognormal(np.log(4_000.0), 1.5, size=n), 0.0)
    i8 = np.int64
    return {
        "is_click": click.astype(i8),
        "is_like": like.astype(i8),
        "is_follow": follow.astype(i8),
        "is_comment": comment.astype(i8),
        "is_forward": forward.astype(i8),
        "is_hate": hate.astype(i8),
        "long_view": long_view.astype(i8),
        "profile_stay_time": np.round(profile_stay).astype(i8),
        "comment_stay_time": np.round(comment_stay).astype(i8),
        "is_profile_enter": profile.astype(i8),
    }


def log_chunk(
    world: SyntheticWorld,
    users: I64,
    period: Period,
    random: bool,
    g: np.random.Generator,
    *,
    grouped: GroupedPolicy | None = None,
    coverage: Coverage | None = None,
) -> pl.DataFrame:
    """Rows of the standard (``random=False``) or random log for ``users`` over ``period``.

    Sorted by ``user_id, time_ms`` with exactly the columns and dtypes of ``LOG_SCHEMA``.
    Standard log only: ``grouped`` samples the policy through topic groups (else the dense
    softmax) and ``coverage`` places the users' share of the catalogue among their rows.
    """
    cfg = world.config
    mean = cfg.random_per_user if random else cfg.standard_per_user * period.n_days / _std_days(cfg)
    counts = interaction_counts(world, users, mean, g)
    cover = None if random or coverage is None else coverage.per_user[users]
    if cover is not None:
        counts = np.maximum(counts, cover)
    sess_len = cfg.session_length if not random else max(1.0, cfg.random_per_user / 8.0)
    local = session_times(counts, period, sess_len, cfg.params.gap_mean_s, g)
    time_ms, date, hourmin = bucket_times(local, g, cfg.params.log_lag_mean_min)
    row_users = np.repeat(users, counts)
    if random:
        tab = draw_tabs(np.broadcast_to(np.asarray(RANDOM_TAB_SHARE), (row_users.size, N_TABS)), g)
        videos = g.integers(0, cfg.pool_size, size=row_users.shape[0]).astype(np.int64)
    else:
        tab = draw_tabs(world.tab_mix[row_users], g)
        n_policy = counts if cover is None else counts - cover
        sampler = policy_videos if grouped is None else grouped.sample
        videos = sampler(world, users, n_policy, g)
        if coverage is not None and cover is not None:
            videos = coverage.place(users, counts, videos, g)
    signals = respond(world, row_users, videos, hourmin // 100, tab, g=g)
    frame = pl.DataFrame(
        {
            "user_id": row_users,
            "video_id": videos,
            "date": date,
            "hourmin": hourmin,
            "time_ms": time_ms,
            **signals,
            "is_rand": np.full(row_users.shape[0], int(random)),
            "tab": tab,
        }
    )
    frame = frame.select([pl.col(c).cast(t) for c, t in LOG_SCHEMA.items()])
    return frame.sort(["user_id", "time_ms"])


def _std_days(cfg: SynthConfig) -> int:
    start, _, end = cfg.day_numbers()
    return end - start + 1
