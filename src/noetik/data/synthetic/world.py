"""The latent world of the synthetic KuaiRand data and its TRUE response model.

Users have topic interests ``theta_u`` (Dirichlet), taste vectors ``x_u``, an engagement
propensity ``b_u``, an activity level and a preferred tab mix. Videos have a primary topic and
sometimes a secondary one (their tags), a taste vector ``y_v``, a quality ``q_v``, a heavy-tailed
popularity and a duration. ``SyntheticWorld.from_config`` rebuilds all of it from the config
alone, so a learned simulator can be checked against ``click_probability`` (the truth).

All user and video ids are the integer ids written to the files (0-based, dense).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from noetik.data.synthetic.config import (
    N_TABS,
    STANDARD_TAB_SHARE,
    TWO_COLUMN_TABS,
    SynthConfig,
)
from noetik.utils.seeding import rng

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

#: Inverse CDF of the video duration (ms), log-linear between these (quantile, value) knots,
#: read off the real Pure ``video_features_basic`` file.
DURATION_KNOTS: tuple[tuple[float, float], ...] = (
    (0.0, 5_000.0),
    (0.01, 7_444.0),
    (0.05, 10_725.0),
    (0.10, 14_593.0),
    (0.25, 31_950.0),
    (0.50, 81_170.0),
    (0.75, 148_228.0),
    (0.90, 237_830.0),
    (0.95, 303_456.0),
    (0.99, 510_023.0),
    (1.0, 1_177_720.0),
)

#: Play-time thresholds of the official definitions (ms).
CLICK_THRESHOLD_MS = 7_000
LONG_VIEW_THRESHOLD_MS = 18_000

_TWO_COLUMN = np.zeros(N_TABS, dtype=bool)
_TWO_COLUMN[list(TWO_COLUMN_TABS)] = True


def sigmoid(x: F64) -> F64:
    """Logistic function, elementwise (float64 in, float64 out)."""
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * x)), dtype=np.float64)


def inverse_cdf(u: F64, knots: tuple[tuple[float, float], ...]) -> F64:
    """Quantile function log-linear between ``knots`` ((probability, value > 0) pairs)."""
    probs = np.array([k[0] for k in knots])
    logs = np.log(np.array([k[1] for k in knots]))
    return np.asarray(np.exp(np.interp(u, probs, logs)), dtype=np.float64)


@dataclass(frozen=True, eq=False)
class SyntheticWorld:
    """Latent users and videos plus the true response model (see ``docs/synthetic.md``)."""

    config: SynthConfig
    theta: NDArray[np.float32]
    """Topic interests, shape (n_users, n_topics), float32 rows summing to 1."""
    user_taste: NDArray[np.float32]
    """Taste vectors ``x_u``, shape (n_users, taste_dim), float32."""
    user_bias: F64
    """Engagement propensity ``b_u``, shape (n_users,)."""
    activity: F64
    """Activity multiplier (mean 1, log-normal), shape (n_users,)."""
    tab_mix: F64
    """Each user's tab probabilities in the standard feed, shape (n_users, 15)."""
    topic1: I64
    """Primary topic of each video, shape (n_videos,)."""
    topic2: I64
    """Secondary topic (equal to ``topic1`` when the video has one tag), shape (n_videos,)."""
    weight2: F64
    """Weight of the secondary topic (0 or 1/3; the primary has ``1 - weight2``)."""
    video_taste: NDArray[np.float32]
    """Taste vectors ``y_v``, shape (n_videos, taste_dim), float32."""
    quality: F64
    """Quality ``q_v``, shape (n_videos,)."""
    log_popularity: F64
    """Log popularity (heavy-tailed popularity ``exp``), shape (n_videos,)."""
    duration_ms: I64
    """True duration in ms (also for picture posts), shape (n_videos,)."""
    is_picture: NDArray[np.bool_]
    """Picture posts: ``duration_ms`` logged as 0 and a null ``video_duration``."""

    @classmethod
    def from_config(cls, config: SynthConfig) -> SyntheticWorld:
        """Draw the latent world of ``config`` (deterministic in ``config.seed``)."""
        users = _draw_users(config)
        videos = _draw_videos(config)
        return cls(config=config, **users, **videos)

    @property
    def n_users(self) -> int:
        """Number of users."""
        return int(self.theta.shape[0])

    @property
    def n_videos(self) -> int:
        """Number of videos."""
        return int(self.topic1.shape[0])

    # ----------------------------------------------------------------------------------------
    # Affinity and engagement
    # ----------------------------------------------------------------------------------------

    def topic_affinity(self, user_ids: I64, video_ids: I64) -> F64:
        """``topic_scale * log(K * theta_u . w_v + eps)`` for paired (broadcast) int arrays."""
        p = self.config.params
        th = self.theta
        w2 = self.weight2[video_ids]
        match = (1.0 - w2) * th[user_ids, self.topic1[video_ids]] + w2 * th[
            user_ids, self.topic2[video_ids]
        ]
        k = self.config.n_topics
        return np.asarray(p.topic_scale * np.log(k * match + p.topic_eps), dtype=np.float64)

    def affinity(self, user_ids: I64, video_ids: I64) -> F64:
        """Topic affinity plus taste ``x_u . y_v``; int arrays of one shape, float64 out."""
        taste: F64 = np.asarray(
            np.einsum("...d,...d->...", self.user_taste[user_ids], self.video_taste[video_ids]),
            dtype=np.float64,
        )
        return self.topic_affinity(user_ids, video_ids) + taste

    def hour_effect(self, hour: I64) -> F64:
        """Time-of-day offset ``eta_h = A cos(2 pi (h - 3) / 24)`` for local hours 0 … 23."""
        amp = self.config.params.hour_amplitude
        return np.asarray(amp * np.cos(2 * np.pi * (hour - 3) / 24.0), dtype=np.float64)

    def engagement_logit(self, user_ids: I64, video_ids: I64, hour: I64, tab: I64) -> F64:
        """``z = b0 + aff(u, v) + q_v + b_u + eta_hour + tau_tab``; arrays of one shape."""
        p = self.config.params
        tau = np.asarray(p.tab_offsets, dtype=np.float64)
        return (
            p.base_logit
            + self.affinity(user_ids, video_ids)
            + self.quality[video_ids]
            + self.user_bias[user_ids]
            + self.hour_effect(hour)
            + tau[tab]
        )

    def open_probability(self, z: F64, tab: I64) -> F64:
        """P(the video is played at all): ``sigmoid(o2 + z)`` in two-column tabs, else const."""
        p = self.config.params
        two = _TWO_COLUMN[tab]
        return np.where(
            two,
            sigmoid(p.open_logit_two_column + z),
            sigmoid(np.full_like(z, p.open_logit_single_column)),
        )

    def depth_exponent(self, z: F64) -> F64:
        """Watch-depth exponent ``kappa = max(0.2, exp(depth_log_base + depth_slope * z))``."""
        p = self.config.params
        kappa = np.exp(p.depth_log_base + p.depth_slope * np.clip(z, -8.0, 8.0))
        return np.asarray(np.maximum(kappa, 0.2), dtype=np.float64)

    def _reach_probability(
        self, user_ids: I64, video_ids: I64, hour: I64, tab: I64, limit: int
    ) -> F64:
        """P(play >= min(duration, limit)) under the response model (see ``docs``)."""
        z = self.engagement_logit(user_ids, video_ids, hour, tab)
        return self.reach_given_logit(z, video_ids, tab, limit)

    def reach_given_logit(self, z: F64, video_ids: I64, tab: I64, limit: int) -> F64:
        """P(play >= min(duration, limit)) given the engagement logit ``z`` (broadcast shapes).

        ``limit`` is ``CLICK_THRESHOLD_MS`` (click) or ``LONG_VIEW_THRESHOLD_MS`` (long view);
        ``click_probability`` and ``long_view_probability`` are this at ``engagement_logit``.
        """
        p = self.config.params
        dur = self.duration_ms[video_ids].astype(np.float64)
        thr = np.minimum(dur, float(limit))
        frac = np.minimum(1.0, thr / (dur * (1.0 + p.complete_stretch)))
        engaged = 1.0 - frac ** self.depth_exponent(z)
        skim = 1.0 / (1.0 + (thr / p.skim_median_ms) ** p.skim_shape)
        q = sigmoid(z)
        return self.open_probability(z, tab) * (q * engaged + (1.0 - q) * skim)

    def click_probability(self, user_ids: I64, video_ids: I64, hour: I64, tab: I64) -> F64:
        """TRUE P(is_click = 1) for (user, video, local hour 0-23, tab 0-14).

        Integer arrays of one (broadcastable) shape; returns float64 of that shape.
        ``is_click`` is the valid-play definition applied to the true duration.
        """
        return self._reach_probability(
            _i64(user_ids), _i64(video_ids), _i64(hour), _i64(tab), CLICK_THRESHOLD_MS
        )

    def long_view_probability(self, user_ids: I64, video_ids: I64, hour: I64, tab: I64) -> F64:
        """TRUE P(long_view = 1); same arguments and shapes as ``click_probability``."""
        return self._reach_probability(
            _i64(user_ids), _i64(video_ids), _i64(hour), _i64(tab), LONG_VIEW_THRESHOLD_MS
        )

    def topic_groups(self) -> tuple[I64, I64]:
        """Videos grouped by their topics ``(t1, t2, w2)``, which alone enter ``topic_affinity``.

        Returns (group of each video, shape (n_videos,); one member video of each group, shape
        (n_groups,)); groups are numbered in increasing ``(t1, t2, w2)`` order. At most
        ``n_topics ** 2`` groups, whatever the catalogue size.
        """
        k = self.config.n_topics
        key = (self.topic1 * k + self.topic2) * 2 + (self.weight2 > 0)
        _, member, group = np.unique(key, return_index=True, return_inverse=True)
        return np.asarray(group, dtype=np.int64).ravel(), np.asarray(member, dtype=np.int64)

    def policy_logits(self, user_ids: I64) -> F64:
        """Logging-policy scores, shape (len(user_ids), n_videos), float64.

        ``beta_aff * topic_affinity(u, v) + beta_pop * log_popularity_v``: the production
        recommender knows the topic interests and the popularity, not the taste factors.
        """
        p = self.config.params
        users = _i64(user_ids)[:, None]
        videos = np.arange(self.n_videos, dtype=np.int64)[None, :]
        aff = self.topic_affinity(users, videos)
        return p.policy_affinity * aff + p.policy_popularity * self.log_popularity[None, :]


def _i64(a: object) -> I64:
    return np.asarray(a, dtype=np.int64)


def topic_weights(config: SynthConfig) -> F64:
    """Frequencies of the topics, Zipf with exponent ``topic_zipf``, shape (n_topics,)."""
    ranks = np.arange(1, config.n_topics + 1, dtype=np.float64)
    w = ranks**-config.params.topic_zipf
    return np.asarray(w / w.sum(), dtype=np.float64)


def _draw_users(config: SynthConfig) -> dict[str, Any]:
    p = config.params
    g = rng(config.seed, "world-users")
    n = config.n_users
    theta = g.dirichlet(np.full(config.n_topics, p.interest_alpha), size=n)
    # Dirichlet draws with tiny alpha can underflow to exact zeros; keep rows normalised.
    theta = np.maximum(theta, 1e-9)
    theta /= theta.sum(axis=1, keepdims=True)
    taste = g.normal(0.0, np.sqrt(p.taste_scale / np.sqrt(p.taste_dim)), size=(n, p.taste_dim))
    bias = g.normal(0.0, p.user_bias_sd, size=n)
    activity = g.lognormal(-0.5 * p.activity_sd**2, p.activity_sd, size=n)
    share = np.asarray(STANDARD_TAB_SHARE) + 1e-4
    tab_mix = g.dirichlet(40.0 * share / share.sum(), size=n)
    return {
        "theta": theta.astype(np.float32),
        "user_taste": taste.astype(np.float32),
        "user_bias": bias,
        "activity": activity,
        "tab_mix": tab_mix,
    }


def _draw_videos(config: SynthConfig) -> dict[str, Any]:
    p = config.params
    g = rng(config.seed, "world-videos")
    n = config.n_videos
    topics = topic_weights(config)
    topic1 = g.choice(config.n_topics, size=n, p=topics)
    has2 = g.random(n) < 0.24
    topic2 = np.where(has2, g.choice(config.n_topics, size=n, p=topics), topic1)
    has2 &= topic2 != topic1
    weight2 = np.where(has2, 1.0 / 3.0, 0.0)
    taste = g.normal(0.0, np.sqrt(p.taste_scale / np.sqrt(p.taste_dim)), size=(n, p.taste_dim))
    quality = g.normal(0.0, p.quality_sd, size=n)
    duration = np.round(inverse_cdf(g.random(n), DURATION_KNOTS)).astype(np.int64)
    picture = g.random(n) < p.picture_share
    log_pop = (
        p.popularity_quality * quality / max(p.quality_sd, 1e-9)
        + g.normal(0.0, p.popularity_sd, size=n)
        + p.picture_popularity * picture
        - 0.2 * np.log(duration / 60_000.0)
    )
    return {
        "topic1": topic1.astype(np.int64),
        "topic2": topic2.astype(np.int64),
        "weight2": weight2,
        "video_taste": taste.astype(np.float32),
        "quality": quality,
        "log_popularity": log_pop,
        "duration_ms": duration,
        "is_picture": picture,
    }
