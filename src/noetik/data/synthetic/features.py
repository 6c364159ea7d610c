"""User features, basic video features and video statistic features of the synthetic world.

Marginals follow the real Pure files (category shares, quantiles of the counts, null shares);
several columns are tied to the latent world so that they carry learnable structure:
``user_active_degree`` and the follow/friend counts follow the activity, ``onehot_feat1/9/10``
encode the user's favourite topics, ``tag`` lists the video's topics, ``video_duration`` is the
true duration (null for picture posts) and the statistic features are exposure counts driven by
the popularity times the rates of the true response model.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
from numpy.typing import NDArray

from noetik.data.schema import (
    ONEHOT_FEATURES,
    USER_SCHEMA,
    VIDEO_BASIC_SCHEMA,
    VIDEO_STATISTIC_COLUMNS,
)
from noetik.data.synthetic.config import TWO_COLUMN_TABS
from noetik.data.synthetic.world import (
    CLICK_THRESHOLD_MS,
    F64,
    I64,
    LONG_VIEW_THRESHOLD_MS,
    SyntheticWorld,
    inverse_cdf,
    sigmoid,
)
from noetik.utils.seeding import rng

#: Real shares of ``user_active_degree`` (rare values floored at 0.3 % so they show up).
ACTIVE_DEGREES: tuple[tuple[str, float], ...] = (
    ("full_active", 0.652),
    ("high_active", 0.224),
    ("middle_active", 0.078),
    ("2_14_day_new", 0.023),
    ("low_active", 0.011),
    ("single_low_active", 0.003),
    ("30day_retention", 0.003),
    ("day_new", 0.003),
    ("UNKNOWN", 0.003),
)

#: Inverse-CDF knots (quantile, value) of the real count columns (value 0 handled apart).
COUNT_KNOTS: dict[str, tuple[tuple[float, float], ...]] = {
    "follow_user_num": (
        (0, 1),
        (0.1, 16),
        (0.25, 50),
        (0.5, 155),
        (0.75, 430),
        (0.9, 1021),
        (0.99, 4128),
        (1, 5003),
    ),
    "fans_user_num": (
        (0, 1),
        (0.1, 3),
        (0.25, 12),
        (0.5, 55),
        (0.75, 240),
        (0.9, 700),
        (0.99, 4500),
        (1, 2_000_000),
    ),
    "friend_user_num": (
        (0, 1),
        (0.1, 2),
        (0.25, 6),
        (0.5, 26),
        (0.75, 110),
        (0.9, 340),
        (0.99, 1700),
        (1, 4995),
    ),
    "register_days": (
        (0, 14),
        (0.1, 265),
        (0.25, 683),
        (0.5, 1188),
        (0.75, 1701),
        (0.9, 2108),
        (0.99, 2700),
        (1, 3624),
    ),
}
#: Share of exact zeros of each count column in the real file.
ZERO_SHARE: dict[str, float] = {
    "follow_user_num": 0.007,
    "fans_user_num": 0.042,
    "friend_user_num": 0.124,
    "register_days": 0,
}

#: The real ``_range`` buckets: (lower bound inclusive, label), zero has its own label "0".
RANGES: dict[str, tuple[tuple[int, str], ...]] = {
    "follow_user_num": (
        (1, "(0,10]"),
        (11, "(10,50]"),
        (51, "(50,100]"),
        (101, "(100,150]"),
        (151, "(150,250]"),
        (251, "(250,500]"),
        (501, "500+"),
    ),
    "fans_user_num": (
        (1, "[1,10)"),
        (10, "[10,100)"),
        (100, "[100,1k)"),
        (1000, "[1k,5k)"),
        (5000, "[5k,1w)"),
        (10_000, "[1w,10w)"),
        (100_000, "[10w,100w)"),
        (1_000_000, "[100w,1000w)"),
    ),
    "friend_user_num": (
        (1, "[1,5)"),
        (5, "[5,30)"),
        (30, "[30,60)"),
        (60, "[60,120)"),
        (120, "[120,250)"),
        (250, "250+"),
    ),
    "register_days": (
        (1, "1-7"),
        (8, "8-14"),
        (15, "15-30"),
        (31, "31-60"),
        (61, "61-90"),
        (91, "91-180"),
        (181, "181-365"),
        (366, "366-730"),
        (731, "730+"),
    ),
}

#: Cardinalities of the encrypted categorical features onehot_feat0 … 17 in the real file.
ONEHOT_CARD: tuple[int, ...] = (2, 7, 50, 1471, 12, 34, 3, 118, 454, 7, 5, 5, 2, 2, 2, 2, 2, 2)
#: Onehot features written as floats (they have nulls in the real file) and their null shares.
ONEHOT_NULL: dict[int, float] = {4: 0.032, **{i: 0.026 for i in range(12, 18)}}

VIDEO_TYPES: tuple[tuple[str, float], ...] = (("NORMAL", 0.9899), ("AD", 0.01), ("UNKNOWN", 0.0001))
#: ``music_type`` codes and shares (of videos with music).
MUSIC_TYPES: tuple[tuple[str, float], ...] = (("9", 0.9), ("4", 0.09), ("8", 0.01))
UPLOAD_TYPES: tuple[tuple[str, float], ...] = (
    ("LongImport", 0.40),
    ("Web", 0.33),
    ("ShortImport", 0.125),
    ("Kmovie", 0.12),
    ("UNKNOWN", 0.011),
    ("LongCamera", 0.009),
    ("ShortCamera", 0.006),
    ("ShareFromOtherApp", 0.004),
    ("FollowShoot", 0.0015),
    ("AiCutVideo", 0.0005),
    ("LipsSync", 0.0005),
)


def range_labels(values: I64, column: str) -> NDArray[np.str_]:
    """The real ``<column>_range`` label of each count in ``values`` (shape (n,), int64)."""
    bounds = RANGES[column]
    lows = np.array([b[0] for b in bounds])
    labels = np.array(["0", *(b[1] for b in bounds)])
    idx = np.where(values <= 0, 0, np.searchsorted(lows, values, side="right"))
    return np.asarray(labels[idx])


def _counts(column: str, n: int, rank: F64, g: np.random.Generator) -> I64:
    """Draw a count column; ``rank`` in (0, 1) (activity quantile) shifts it upwards."""
    u = np.clip(0.6 * g.random(n) + 0.4 * rank, 1e-6, 1 - 1e-6)
    values = np.round(inverse_cdf(u, COUNT_KNOTS[column])).astype(np.int64)
    return np.where(g.random(n) < ZERO_SHARE[column], 0, values)


def _category_codes(labels: tuple[tuple[str, float], ...], u: F64) -> I64:
    """Index into ``labels`` (name, weight) of the category each uniform ``u`` falls in."""
    probs = np.array([w for _, w in labels])
    cdf = np.cumsum(probs / probs.sum())
    return np.minimum(np.searchsorted(cdf, u, side="right"), len(labels) - 1).astype(np.int64)


def _categorical(labels: tuple[tuple[str, float], ...], u: F64) -> NDArray[np.str_]:
    return np.asarray(np.array([name for name, _ in labels])[_category_codes(labels, u)])


def _names(names: list[str], codes: I64) -> pl.Series:
    """``names[codes]`` as a polars string Series (fast for millions of rows)."""
    return pl.Series(names, dtype=pl.String).gather(codes)


def _onehot(world: SyntheticWorld, g: np.random.Generator) -> dict[str, NDArray[np.float64]]:
    """Categorical codes; feat1/9/10 reveal the top-3 topics (80 % of users), others noise."""
    n = world.n_users
    top = np.argsort(-world.theta, axis=1, kind="stable")[:, :3]
    out: dict[str, NDArray[np.float64]] = {}
    for i, card in enumerate(ONEHOT_CARD):
        zipf = (np.arange(1, card + 1, dtype=np.float64)) ** -1.1
        codes = g.choice(card, size=n, p=zipf / zipf.sum()).astype(np.float64)
        if i == 5:
            codes = np.where(g.random(n) < 0.994, 0.0, codes)
        informative = {1: 0, 9: 1, 10: 2}.get(i)
        if informative is not None:
            keep = g.random(n) < 0.8
            codes = np.where(keep, (top[:, informative] % card).astype(np.float64), codes)
        out[ONEHOT_FEATURES[i]] = codes
    nulls = g.random(n)
    for i, share in ONEHOT_NULL.items():
        out[ONEHOT_FEATURES[i]] = np.where(nulls < share, np.nan, out[ONEHOT_FEATURES[i]])
    return out


def user_features(world: SyntheticWorld) -> pl.DataFrame:
    """The ``user_features`` table (columns of ``USER_SCHEMA``; ints written as in the file)."""
    g = rng(world.config.seed, "user-features")
    n = world.n_users
    rank = (np.argsort(np.argsort(world.activity)) + 0.5) / n
    score = 1.0 - rank + g.normal(0, 0.15, n)
    degree_u = (np.argsort(np.argsort(score, kind="stable")) + 0.5) / n
    data: dict[str, object] = {
        "user_id": np.arange(n, dtype=np.int32),
        "user_active_degree": _categorical(ACTIVE_DEGREES, degree_u),
        "is_lowactive_period": np.zeros(n, dtype=np.int8),
        "is_live_streamer": np.where(g.random(n) < 0.774, -124, 1).astype(np.int16),
        "is_video_author": (g.random(n) < 0.816).astype(np.int8),
    }
    for column in COUNT_KNOTS:
        values = _counts(column, n, rank, g)
        data[column] = values
        data[f"{column}_range"] = range_labels(values, column)
    onehot = _onehot(world, g)
    frame = pl.DataFrame({**data, **onehot}).fill_nan(None)
    ints = [f for i, f in enumerate(ONEHOT_FEATURES) if i not in ONEHOT_NULL]
    frame = frame.with_columns(pl.col(ints).cast(pl.Int64))
    return frame.select(list(USER_SCHEMA))


def video_basic(world: SyntheticWorld) -> pl.DataFrame:
    """The ``video_features_basic`` table (columns of ``VIDEO_BASIC_SCHEMA``)."""
    g = rng(world.config.seed, "video-basic")
    n = world.n_videos
    n_authors = max(1, int(0.86 * n))
    author_pool = g.choice(8_800_000, size=n_authors, replace=n_authors > 8_800_000)
    authors = author_pool[np.minimum(g.zipf(1.8, size=n) - 1, n_authors - 1)]
    picture = world.is_picture
    upload = _category_codes(UPLOAD_TYPES, g.random(n))
    n_up = len(UPLOAD_TYPES)
    upload = np.where(picture, np.where(g.random(n) < 0.66, n_up, n_up + 1), upload)
    upload_names = [*(name for name, _ in UPLOAD_TYPES), "LongPicture", "PictureSet"]
    landscape = g.random(n) < 0.19
    has_music = g.random(n) >= 0.027
    tags = _tags(world, g)
    data = {
        "video_id": np.arange(n, dtype=np.int32),
        "author_id": authors.astype(np.int64),
        "video_type": _names(
            [t for t, _ in VIDEO_TYPES], _category_codes(VIDEO_TYPES, g.random(n))
        ),
        "upload_dt": _upload_dates(world, g),
        "upload_type": _names(upload_names, upload),
        "visible_status": np.zeros(n),
        "video_duration": np.where(picture, np.nan, world.duration_ms.astype(np.float64)),
        "server_width": np.where(landscape, 1280.0, 720.0),
        "server_height": np.where(landscape, 720.0, 1280.0),
        "music_id": np.where(has_music, g.integers(10**9, 9_200_000_000, size=n), 0),
        "music_type": np.where(
            has_music, np.array([9.0, 4.0, 8.0])[_category_codes(MUSIC_TYPES, g.random(n))], np.nan
        ),
        "tag": tags,
    }
    frame = pl.DataFrame(data).fill_nan(None)
    return frame.select([pl.col(c).cast(t) for c, t in VIDEO_BASIC_SCHEMA.items()])


def _tags(world: SyntheticWorld, g: np.random.Generator) -> pl.Series:
    """ "k+1" for the primary topic, "k+1,j+1" with a secondary topic; about 1.3 % null."""
    frame = pl.DataFrame(
        {
            "first": world.topic1 + 1,
            "second": world.topic2 + 1,
            "both": world.weight2 > 0,
            "null": g.random(world.n_videos) < 0.013,
        }
    )
    first = pl.col("first").cast(pl.String)
    tag = (
        pl.when(pl.col("null"))
        .then(None)
        .when(pl.col("both"))
        .then(pl.concat_str([first, pl.col("second").cast(pl.String)], separator=","))
        .otherwise(first)
    )
    return frame.select(tag.alias("tag")).to_series()


def _upload_dates(world: SyntheticWorld, g: np.random.Generator) -> pl.Series:
    """Pool videos were uploaded 04-09 … 04-11 (as in the real pool), others the 60 days before."""
    n = world.n_videos
    start = dt.date.fromisoformat(world.config.start_date)
    pool = np.arange(n) < world.config.pool_size
    offset = np.where(pool, 1 + g.choice(3, size=n, p=[0.37, 0.45, 0.18]), -g.integers(1, 61, n))
    days = (start - dt.date(1970, 1, 1)).days + offset
    return pl.Series(days.astype(np.int32)).cast(pl.Date).dt.strftime("%Y-%m-%d")


#: Statistic columns derived from another one: (column, base column, ratio); noise is added.
_DERIVED: tuple[tuple[str, str, float], ...] = (
    ("click_like_cnt", "like_cnt", 0.47),
    ("double_click_cnt", "like_cnt", 0.49),
    ("cancel_like_cnt", "like_cnt", 0.085),
    ("direct_comment_cnt", "comment_cnt", 0.75),
    ("reply_comment_cnt", "comment_cnt", 0.18),
    ("delete_comment_cnt", "comment_cnt", 0.04),
    ("comment_like_cnt", "comment_cnt", 1.1),
    ("cancel_follow_cnt", "follow_cnt", 0.2),
    ("share_cnt", "like_cnt", 0.013),
    ("download_cnt", "like_cnt", 0.008),
    ("report_cnt", "like_cnt", 0.0005),
    ("collect_cnt", "like_cnt", 0.12),
    ("cancel_collect_cnt", "collect_cnt", 0.26),
    ("share_all_cnt", "share_cnt", 2.1),
    ("outsite_share_all_cnt", "share_all_cnt", 0.6),
)


#: Up to this many (sampled users x videos) cells the mean rates are evaluated cell by cell
#: with 128 users (every catalogue up to 125,000 videos, e.g. Pure).
_EXACT_RATE_CELLS = 16_000_000
#: Larger catalogues sample ``_FAST_RATE_CELLS // n_videos`` users (16 … 128) and use
#: ``_mean_rates_grouped``.
_FAST_RATE_CELLS = 64_000_000


def rate_sample_size(n_users: int, n_videos: int) -> int:
    """Users sampled for the statistic features' mean true rates (128, fewer for big catalogues)."""
    if 128 * n_videos <= _EXACT_RATE_CELLS:
        return min(128, n_users)
    return min(n_users, 128, max(16, _FAST_RATE_CELLS // n_videos))


def _mean_rates_grouped(world: SyntheticWorld, users: I64, hour: int = 20, tab: int = 1) -> F64:
    """``_mean_rates`` for big catalogues: the same model with few float32 operations per cell.

    The topic affinity comes from a (users x topic groups) table, the taste term from one
    matrix product, ``z``, ``sigma(z)`` and ``kappa(z)`` are shared by the click and long-view
    probabilities, ``min(1, T / (1.35 d)) ** kappa`` is ``exp(kappa * log(...))`` with the
    logarithm per video, and cells are float32 (means accumulated in float64). Equal to
    ``_mean_rates`` up to float32 rounding (about 1e-6, checked by the tests).
    """
    p = world.config.params
    f32 = np.float32
    group, member = world.topic_groups()
    topic = world.topic_affinity(users[:, None], member[None, :]).astype(f32)
    taste = world.user_taste[users]
    user_part = (
        p.base_logit
        + world.user_bias[users]
        + world.hour_effect(np.full(1, hour, dtype=np.int64))
        + np.asarray(p.tab_offsets, dtype=np.float64)[tab]
    ).astype(f32)
    tabs = np.full((1, 1), tab, dtype=np.int64)
    two_column = tab in TWO_COLUMN_TABS
    # single-column tabs: P(open) is a constant, applied to the means
    scale = 1.0 if two_column else float(sigmoid(np.full(1, p.open_logit_single_column))[0])
    out = np.empty((world.n_videos, 2))
    step = max(1, 4_000_000 // max(1, users.shape[0]))
    for lo in range(0, world.n_videos, step):
        vids = np.arange(lo, min(lo + step, world.n_videos), dtype=np.int64)
        z = taste @ world.video_taste[vids].T
        z += topic[:, group[vids]]
        z += world.quality[vids].astype(f32)[None, :]
        z += user_part[:, None]
        engage = 1.0 / (1.0 + np.exp(-z))
        kappa = np.exp(f32(p.depth_log_base) + f32(p.depth_slope) * np.clip(z, -8.0, 8.0))
        np.maximum(kappa, f32(0.2), out=kappa)
        opened = world.open_probability(z.astype(np.float64), tabs) if two_column else None
        dur = world.duration_ms[vids].astype(np.float64)
        for col, limit in enumerate((CLICK_THRESHOLD_MS, LONG_VIEW_THRESHOLD_MS)):
            thr = np.minimum(dur, float(limit))
            log_frac = np.log(np.minimum(1.0, thr / (dur * (1.0 + p.complete_stretch))))
            skim = 1.0 / (1.0 + (thr / p.skim_median_ms) ** p.skim_shape)
            prob = np.exp(kappa * log_frac.astype(f32))
            np.subtract((1.0 - skim).astype(f32), prob, out=prob)
            prob *= engage
            prob += skim.astype(f32)
            if opened is not None:
                prob *= opened.astype(f32)
            out[vids, col] = scale * prob.mean(axis=0, dtype=np.float64)
    return out


def _mean_rates(world: SyntheticWorld, users: I64, hour: int = 20, tab: int = 1) -> F64:
    """Mean (click, long_view) probability over ``users`` per video, shape (n_videos, 2)."""
    out = np.empty((world.n_videos, 2))
    step = max(1, 2_000_000 // max(1, users.shape[0]))
    for lo in range(0, world.n_videos, step):
        vids = np.arange(lo, min(lo + step, world.n_videos), dtype=np.int64)[None, :]
        uu = users[:, None]
        h = np.full((1, 1), hour, dtype=np.int64)
        t = np.full((1, 1), tab, dtype=np.int64)
        out[vids[0], 0] = world.click_probability(uu, vids, h, t).mean(axis=0)
        out[vids[0], 1] = world.long_view_probability(uu, vids, h, t).mean(axis=0)
    return out


def video_statistic(world: SyntheticWorld) -> pl.DataFrame:
    """The ``video_features_statistic`` table: daily averages consistent with the world.

    ``show_cnt`` is proportional to the popularity; play, valid-play and long-play counts are
    ``show_cnt`` times the mean true rates over a sample of users (``rate_sample_size``: 128,
    down to 16 for catalogues of millions of videos); engagement counts scale with the same
    rates. ``counts`` (days observed) is written as an integer like the real file.
    """
    g = rng(world.config.seed, "video-statistic")
    n = world.n_videos
    size = rate_sample_size(world.n_users, n)
    sample = np.sort(g.choice(world.n_users, size=size, replace=False)).astype(np.int64)
    exact = 128 * n <= _EXACT_RATE_CELLS
    rates = _mean_rates(world, sample) if exact else _mean_rates_grouped(world, sample)
    click, lv = rates[:, 0], rates[:, 1]

    def noisy(x: F64, sd: float = 0.15) -> F64:
        return np.asarray(x * g.lognormal(-0.5 * sd**2, sd, size=n), dtype=np.float64)

    show = noisy(4_500.0 * np.exp(world.log_popularity - np.median(world.log_popularity)), 0.3)
    dur = world.duration_ms.astype(np.float64)
    cols: dict[str, F64] = {"show_cnt": show, "play_cnt": noisy(show * 0.56)}
    cols["valid_play_cnt"] = noisy(show * click)
    cols["long_time_play_cnt"] = noisy(show * lv)
    cols["complete_play_cnt"] = noisy(show * lv * np.minimum(1.0, 18_000.0 / dur + 0.25))
    cols["short_time_play_cnt"] = np.maximum(cols["play_cnt"] - cols["valid_play_cnt"], 0.0)
    cols["play_progress"] = np.clip(noisy(0.35 * lv + 0.05), 0.0, 1.5)
    cols["play_duration"] = cols["play_cnt"] * dur * cols["play_progress"]
    cols["like_cnt"] = noisy(show * 0.03 * click, 0.4)
    cols["comment_cnt"] = noisy(show * 0.0012 * click, 0.6)
    cols["comment_stay_duration"] = noisy(cols["comment_cnt"] * 450_000.0, 0.5)
    cols["follow_cnt"] = noisy(show * 0.002 * click, 0.5)
    cols["reduce_similar_cnt"] = noisy(show * 0.001 * (1.0 - click), 0.5)
    for name, base, ratio in _DERIVED:
        cols[name] = noisy(cols[base] * ratio, 0.4)
    frame = {"video_id": np.arange(n, dtype=np.int32), "counts": g.integers(45, 182, size=n)}
    for name in VIDEO_STATISTIC_COLUMNS[1:]:
        if name.endswith("_user_num"):
            base = name.removesuffix("_user_num") + "_cnt"
            cols[name] = cols[base] * g.uniform(0.85, 0.99, size=n)
        frame[name] = cols[name]
    return pl.DataFrame(frame).with_columns(pl.col("counts").cast(pl.Int64))
