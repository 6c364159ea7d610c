"""Names and meaning of every dimension of the 128-dimensional state (its named slices).

Explanations refer to state dimensions by these names; :mod:`noetik.data.features` computes
the values. See docs/data.md for the table.
"""

from __future__ import annotations

from dataclasses import dataclass

from noetik.data.quirks import ACTIVE_DEGREES, RANGE_COLUMNS
from noetik.data.rewards import SIGNALS
from noetik.data.schema import ONEHOT_FEATURES

STATE_DIM = 128
N_TABS = 15
TAG_BUCKETS = 24
TIME_SIGNALS = ("play_time_s", "profile_stay_s", "comment_stay_s")
CUM_SIGNALS = ("is_click", "long_view", "watch_ratio", "is_like")
USER_FLAGS = ("is_lowactive_period", "is_live_streamer", "is_video_author")
USER_COUNTS = ("follow_user_num", "fans_user_num", "friend_user_num")


@dataclass(frozen=True)
class StateSlice:
    """One named, contiguous block of the state vector."""

    name: str
    """Slice name, e.g. ``hist.mean``."""
    size: int
    """Number of dimensions."""
    description: str
    """What the dimensions hold and how they are scaled."""
    feature_names: tuple[str, ...]
    """One name per dimension (``len == size``)."""


def _sig_name(signal: str) -> str:
    return f"log1p_{signal}" if signal in TIME_SIGNALS else signal


def _layout() -> tuple[StateSlice, ...]:
    degrees = (*ACTIVE_DEGREES, "unknown")
    rng_names = tuple(f"{c}_{e}" for c in RANGE_COLUMNS for e in ("lo", "hi"))
    missing = ("is_live_streamer", *RANGE_COLUMNS, "onehot_feats", "row")
    spec: list[tuple[str, str, tuple[str, ...]]] = [
        (
            "user.active_degree",
            "one-hot of user_active_degree (null/UNKNOWN -> unknown)",
            tuple(f"user.active_degree={d}" for d in degrees),
        ),
        (
            "user.flags",
            "0/1 profile flags (null -> 0, see user.missing)",
            tuple(f"user.{c}" for c in USER_FLAGS),
        ),
        (
            "user.counts",
            "log1p of follow/fans/friend counts",
            tuple(f"user.log1p_{c}" for c in USER_COUNTS),
        ),
        ("user.register_days", "log1p(register_days)", ("user.log1p_register_days",)),
        (
            "user.range_bounds",
            "log1p of parsed range bounds; open upper end (+inf) -> 2*lo",
            tuple(f"user.log1p_{n}" for n in rng_names),
        ),
        (
            "user.onehot",
            "onehot_feat0..17 code / max code in the user table (null -> 0)",
            tuple(f"user.{c}" for c in ONEHOT_FEATURES),
        ),
        (
            "user.missing",
            "1 when the feature is null (row: user absent from the user table)",
            tuple(f"user.missing.{c}" for c in missing),
        ),
        (
            "hist.mean",
            "mean signal over the last K interactions before this one (0 if none)",
            tuple(f"hist.mean.{_sig_name(s)}" for s in SIGNALS),
        ),
        (
            "hist.last",
            "signals of the previous interaction (0 if none)",
            tuple(f"hist.last.{_sig_name(s)}" for s in SIGNALS),
        ),
        (
            "hist.cum_mean",
            "mean over all the user's previous interactions in the log",
            tuple(f"hist.cum_mean.{s}" for s in CUM_SIGNALS),
        ),
        (
            "hist.length",
            "history length / K, and log1p(all previous interactions)",
            ("hist.len_frac", "hist.log1p_n_past"),
        ),
        (
            "hist.gap",
            "log1p(seconds since the previous interaction); 1 when there is none",
            ("hist.log1p_gap_prev_s", "hist.no_prev"),
        ),
        (
            "hist.span",
            "log1p(seconds from the oldest of the last K to now)",
            ("hist.log1p_span_s",),
        ),
        (
            "hist.tags",
            "share of the last K videos with a tag in each bucket (tag id mod 24)",
            tuple(f"hist.tag_bucket{b}" for b in range(TAG_BUCKETS)),
        ),
        (
            "hist.duration",
            "mean log1p(duration s) of the last K videos with known duration",
            ("hist.mean_log1p_duration_s",),
        ),
        ("ctx.hour", "hour of day on the unit circle", ("ctx.hour_sin", "ctx.hour_cos")),
        ("ctx.weekday", "day of week on the unit circle", ("ctx.weekday_sin", "ctx.weekday_cos")),
        ("ctx.tab", "one-hot of the app tab 0..14", tuple(f"ctx.tab={t}" for t in range(N_TABS))),
        (
            "ctx.step",
            "log1p(step in episode) and 1 at the first step",
            ("ctx.log1p_step", "ctx.is_episode_start"),
        ),
    ]
    return tuple(StateSlice(n, len(f), d, f) for n, d, f in spec)


#: The state layout, in order; sizes sum to :data:`STATE_DIM`.
STATE_LAYOUT: tuple[StateSlice, ...] = _layout()
assert sum(s.size for s in STATE_LAYOUT) == STATE_DIM, "state layout must be 128-dimensional"

#: Column range of every slice of :data:`STATE_LAYOUT`.
STATE_SLICES: dict[str, slice] = {}
_pos = 0
for _s in STATE_LAYOUT:
    STATE_SLICES[_s.name] = slice(_pos, _pos + _s.size)
    _pos += _s.size
N_USER_DIMS = STATE_SLICES["user.missing"].stop


def state_feature_names() -> list[str]:
    """The 128 dimension names, e.g. ``user.active_degree=full_active``, ``ctx.hour_sin``."""
    return [name for s in STATE_LAYOUT for name in s.feature_names]
