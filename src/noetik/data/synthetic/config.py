"""Configuration of the synthetic KuaiRand generator: sizes, dates and every model parameter.

``SynthConfig`` is everything needed to regenerate a dataset bit for bit: the writer stores it
as ``noetik_synth.json`` next to the CSV files and ``SyntheticWorld.from_config`` rebuilds the
latent world (and therefore the true response model) from it alone. The default parameters were
chosen with ``scripts/calibrate_synth.py`` against the real KuaiRand-Pure sample; see
``docs/synthetic.md`` for the equations they enter.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from noetik.data.schema import Release
from noetik.errors import ConfigError

#: Number of tabs (scenarios) in KuaiRand: 0 … 14.
N_TABS = 15

#: Share of standard-log rows per tab in the real Pure sample (tab 0 … 14).
STANDARD_TAB_SHARE: tuple[float, ...] = (
    0.0887,
    0.7577,
    0.0303,
    0.0015,
    0.0598,
    0.0029,
    0.0491,
    0.0006,
    0.0047,
    0.0006,
    0.0003,
    0.0010,
    0.0023,
    0.0003,
    0.0002,
)

#: Share of random-log rows per tab in the real Pure sample (almost all in the main feed).
RANDOM_TAB_SHARE: tuple[float, ...] = (
    0.0,
    0.9915,
    0.0005,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0,
    0.0080,
    0.0,
    0.0,
    0.0,
)

#: Share of standard-log rows per local (UTC+8) hour 0 … 23 in the real Pure sample.
HOUR_SHARE: tuple[float, ...] = (
    0.0408,
    0.0244,
    0.0163,
    0.0098,
    0.0079,
    0.0089,
    0.0163,
    0.0252,
    0.0324,
    0.0390,
    0.0452,
    0.0508,
    0.0578,
    0.0566,
    0.0515,
    0.0515,
    0.0551,
    0.0594,
    0.0573,
    0.0534,
    0.0558,
    0.0578,
    0.0645,
    0.0622,
)

#: Tabs with a two-column (cover grid) UI: a video is only played when the user opens it.
TWO_COLUMN_TABS: tuple[int, ...] = (0, 3, 7, 8, 11, 12)


@dataclass(frozen=True)
class ModelParams:
    """Parameters of the generative model (defaults calibrated to the real Pure sample)."""

    # --- latent world ---------------------------------------------------------------------
    topic_zipf: float = 1.0
    """Topic frequencies are proportional to ``rank ** -topic_zipf``."""
    interest_alpha: float = 0.15
    """Concentration of the Dirichlet prior of a user's topic interests (small = focused)."""
    topic_scale: float = 0.98
    """Weight of the log topic match in the affinity."""
    topic_eps: float = 0.3
    """Smoothing inside the log topic match ``log(K * theta . w + eps)``."""
    taste_dim: int = 8
    """Dimension of the latent taste vectors outside the topics."""
    taste_scale: float = 0.5
    """Standard deviation of the taste dot product ``x_u . y_v``."""
    quality_sd: float = 0.6
    """Standard deviation of a video's quality ``q_v`` (added to the engagement logit)."""
    user_bias_sd: float = 0.5
    """Standard deviation of a user's engagement propensity ``b_u``."""
    popularity_sd: float = 1.5
    """Standard deviation of the heavy-tailed log popularity (log-normal popularity)."""
    popularity_quality: float = 0.6
    """Regression of log popularity on quality (popular videos are better on average)."""
    picture_share: float = 0.03
    """Share of picture posts: no duration in the metadata (``duration_ms == 0`` in the logs)."""
    picture_popularity: float = -0.8
    """Shift of the log popularity of picture posts (the feed shows them less)."""
    activity_sd: float = 0.8
    """Log-normal spread of users' activity (number of interactions)."""
    # --- engagement -----------------------------------------------------------------------
    base_logit: float = -1.2
    """Intercept ``b0`` of the engagement logit ``s = b0 + aff + q_v + b_u + eta_hour``."""
    hour_amplitude: float = 0.08
    """Amplitude of the time-of-day effect ``eta_h`` (higher at night, lower in the evening)."""
    open_logit_two_column: float = -3.8
    """Offset of the open probability ``sigmoid(offset + s)`` in two-column tabs."""
    open_logit_single_column: float = 5.0
    """Logit of playing at all in single-column tabs (constant, about 0.993)."""
    depth_log_base: float = -1.75
    """``kappa = exp(depth_log_base + depth_slope * s)``: watch depth Beta(kappa, 1)."""
    depth_slope: float = 0.6
    """Slope of the log watch-depth exponent on the engagement logit."""
    complete_stretch: float = 0.35
    """Watch fraction ``min(1, (1 + stretch) * B)``: mass at completion."""
    replay_logit: float = 3.3
    """Logit of replaying a completed video (plus ``s`` minus ``log(d / 30 s)``)."""
    replay_scale: float = 0.08
    """Scale ``m`` of the Lomax extra-play fraction ``R`` of replays."""
    replay_shape: float = 1.1
    """Shape ``alpha`` of the Lomax extra-play fraction of replays."""
    skim_median_ms: float = 1800.0
    """Median play time of a skip (log-logistic)."""
    skim_shape: float = 1.6
    """Shape of the log-logistic skip time."""
    tab_offsets: tuple[float, ...] = (
        0.2,
        0.0,
        0.0,
        -2.0,
        0.5,
        -0.9,
        -1.9,
        1.5,
        -0.5,
        3.0,
        2.0,
        -3.0,
        0.5,
        0.8,
        -2.0,
    )
    """Engagement logit offset ``tau_tab`` per tab (tab 0 … 14)."""
    # --- logging policy -------------------------------------------------------------------
    policy_affinity: float = 5.0
    """Weight of the (topic) affinity in the logging policy's softmax."""
    policy_popularity: float = 0.8
    """Weight of log popularity in the logging policy's softmax."""
    # --- other feedback -------------------------------------------------------------------
    like_logit: float = -5.65
    """Intercept of ``P(like) = sigmoid(c + 0.6 z + 1.2 long_view)`` (given a play)."""
    follow_logit: float = -7.9
    """Intercept of ``P(follow) = sigmoid(c + 0.6 s + 3 profile_enter)``."""
    comment_open_logit: float = -4.5
    """Intercept of opening the comments ``sigmoid(c + 0.6 s + 1.2 long_view)``."""
    comment_logit: float = -4.1
    """Intercept of writing a comment once the comments are open ``sigmoid(c + 0.5 s)``."""
    forward_logit: float = -8.6
    """Intercept of ``P(forward) = sigmoid(c + 0.7 s + 1 long_view)``."""
    hate_logit: float = -7.1
    """Intercept of ``P(hate) = sigmoid(c - 0.4 s)`` (negative feedback)."""
    profile_logit: float = -5.35
    """Intercept of ``P(profile_enter) = sigmoid(c + 0.6 s + 1 long_view)``."""
    profile_stay_share: float = 0.005
    """Share of profile visits with a recorded ``profile_stay_time`` (almost always 0)."""
    comment_stay_median_ms: float = 6200.0
    """Median ``comment_stay_time`` when the comments were opened (log-normal, sd 1.2)."""
    # --- time -----------------------------------------------------------------------------
    gap_mean_s: float = 25.0
    """Mean gap between consecutive exposures of a session (exponential)."""
    log_lag_mean_min: float = 10.3
    """Mean delay (Gamma(9), minutes) between ``time_ms`` and the hour bucket ``hourmin``."""


@dataclass(frozen=True)
class SynthConfig:
    """Sizes, dates, seed and model parameters of one synthetic KuaiRand dataset."""

    release: Release = Release.PURE
    """Release whose file names (and 27K part files) are written."""
    n_users: int = 1_000
    """Number of users (ids 0 … n_users-1)."""
    n_videos: int = 2_000
    """Number of videos (ids 0 … n_videos-1)."""
    seed: int = 0
    """Master seed: same config, byte-identical files."""
    pool_size: int = 2_000
    """Random-exposure pool: videos 0 … pool_size-1 (7,583 in the real data)."""
    standard_per_user: float = 52.65
    """Mean number of standard-log interactions per user over the whole standard period."""
    random_per_user: float = 43.47
    """Mean number of random-exposure interactions per user (4_22 … 5_08)."""
    session_length: float = 3.0
    """Mean number of standard exposures per session (users return in sessions)."""
    n_topics: int = 40
    """Number of latent topics; tag ``k + 1`` stands for topic ``k``."""
    start_date: str = "2022-04-08"
    """First day of the standard logs (local date, UTC+8)."""
    split_date: str = "2022-04-22"
    """First day of the second standard period and of the random log."""
    end_date: str = "2022-05-08"
    """Last day of the logs (inclusive)."""
    chunk_rows: int = 1_000_000
    """Target number of log rows generated at once (bounds memory)."""
    grouped_policy: bool = False
    """Sample the standard logging policy through the videos' topic groups (exact, scales).

    The policy score depends on a video only through its topic group ``(t1, t2, w2)`` and its
    popularity, so ``P(v | u) = P(group | u) P(v | group)`` is the SAME distribution as the dense
    (users x videos) softmax, drawn at O(users x groups + rows x log videos) cost instead of
    O(users x videos). False keeps the dense sampler (and its exact random stream)."""
    catalogue_coverage: bool = False
    """Show every video of the catalogue at least once in the standard log (the real long tail).

    ``n_videos`` of the standard exposures show each video exactly once, in a random order
    spread over users (in proportion to their activity) and over their sessions; the other
    exposures follow the logging policy. A user gets extra rows only when her share of the
    catalogue exceeds her drawn number of exposures."""
    params: ModelParams = field(default_factory=ModelParams)
    """Parameters of the generative model."""

    def __post_init__(self) -> None:
        checks = {
            "n_users": self.n_users >= 1,
            "n_videos": self.n_videos >= 1,
            "pool_size": 1 <= self.pool_size <= self.n_videos,
            "standard_per_user": self.standard_per_user > 0,
            "random_per_user": self.random_per_user >= 0,
            "session_length": self.session_length >= 1,
            "n_topics": 2 <= self.n_topics <= 999,
            "chunk_rows": self.chunk_rows >= 1_000,
            "seed": self.seed >= 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"invalid synthetic config: {name}={getattr(self, name)!r}")
        if not isinstance(self.release, Release):
            raise ConfigError(f"invalid synthetic config: release={self.release!r}")
        start, split, end = (
            _parse_date(d) for d in (self.start_date, self.split_date, self.end_date)
        )
        if not start < split <= end:
            raise ConfigError("invalid synthetic config: need start_date < split_date <= end_date")
        if len(self.params.tab_offsets) != N_TABS:
            raise ConfigError(f"invalid synthetic config: tab_offsets needs {N_TABS} values")

    @classmethod
    def for_release(
        cls,
        release: Release | str,
        users: int | None = None,
        videos: int | None = None,
        seed: int = 0,
        **overrides: Any,
    ) -> SynthConfig:
        """Defaults imitating ``release`` at its REAL size, with optional overrides.

        ``users``/``videos`` default to the real release's sizes: Pure 27,285 users / 7,583
        videos; 1K 1,000 / 4,369,953 (11,713,045 standard rows, random log 43,028 rows over a
        pool of 7,388 videos); 27K 27,285 / 32,038,725 (322,278,385 standard rows, random log
        1,186,059 rows over the pool of 7,583 videos). The pool is capped at ``videos``. 1K and
        27K switch on ``grouped_policy`` and ``catalogue_coverage`` (every video of the
        catalogue appears in the standard log, about 2.7 rows per video at 1K). Other fields
        can be given as keywords.
        """
        try:
            rel = Release(release)
        except ValueError as exc:
            raise ConfigError(f"unknown release '{release}' (pure, 1k or 27k)") from exc
        size = RELEASE_SIZES[rel]
        n_users = users if users is not None else size.users
        n_videos = videos if videos is not None else size.videos
        large = rel is not Release.PURE
        base: dict[str, Any] = {
            "release": rel,
            "n_users": n_users,
            "n_videos": n_videos,
            "seed": seed,
            "pool_size": min(n_videos, size.pool),
            "standard_per_user": size.standard_per_user,
            "random_per_user": size.random_per_user,
            "session_length": size.session_length,
            "grouped_policy": large,
            "catalogue_coverage": large,
        }
        base.update(overrides)
        return cls(**base)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``from_dict`` inverts it)."""
        out = dataclasses.asdict(self)
        out["release"] = self.release.value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SynthConfig:
        """Rebuild a config written by ``to_dict``; unknown keys are a ``ConfigError``."""
        data = dict(data)
        raw_params = dict(data.pop("params", {}))
        if "tab_offsets" in raw_params:
            raw_params["tab_offsets"] = tuple(raw_params["tab_offsets"])
        try:
            params = ModelParams(**raw_params)
            return cls(release=Release(data.pop("release", "pure")), params=params, **data)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"invalid synthetic config: {exc}") from exc

    def day_numbers(self) -> tuple[int, int, int]:
        """(start, split, end) as days since 1970-01-01 (local calendar)."""
        epoch = dt.date(1970, 1, 1)
        start, split, end = (
            _parse_date(d) for d in (self.start_date, self.split_date, self.end_date)
        )
        return (start - epoch).days, (split - epoch).days, (end - epoch).days


class ReleaseSize(NamedTuple):
    """The real size of one KuaiRand release (``for_release`` defaults)."""

    users: int
    """Number of users."""
    videos: int
    """Number of videos in the catalogue."""
    pool: int
    """Videos of the random-exposure pool."""
    standard_per_user: float
    """Standard-log rows per user (real total over both standard periods / users)."""
    random_per_user: float
    """Random-log rows per user (real total / users)."""
    session_length: float
    """Mean number of standard exposures per session."""


#: Real sizes per release (rows per user = the real row totals over the real user counts:
#: Pure 1,436,609 standard / 1,186,059 random rows; 1K 11,713,045 / 43,028; 27K 322,278,385 /
#: 1,186,059).
RELEASE_SIZES: dict[Release, ReleaseSize] = {
    Release.PURE: ReleaseSize(27_285, 7_583, 7_583, 52.65, 43.47, 3.0),
    Release.K1: ReleaseSize(1_000, 4_369_953, 7_388, 11_713.045, 43.028, 60.0),
    Release.K27: ReleaseSize(27_285, 32_038_725, 7_583, 322_278_385 / 27_285, 43.47, 60.0),
}


def _parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"invalid synthetic config: date '{text}' is not YYYY-MM-DD") from exc
