"""Explanations in words, composed from the numbers of one decision.

Nothing here picks a prepared sentence: every phrase is built from the decision's values (ids,
tags, durations, feedback, probabilities, margins, shares). The wording that depends on
thresholds:

* **Confidence** of the recommendation, from ``p1`` (its probability under
  ``softmax(scores)``) and ``odds = p1 / p2`` (``p2``: the runner-up's probability; for logits
  ``odds = exp(margin)``): *confident* when ``p1 >= 0.5`` or ``odds >= 3``
  (:data:`CONFIDENT_PROBABILITY`, :data:`CONFIDENT_ODDS`), *fairly confident* when
  ``odds >= 1.5`` (:data:`FAIR_ODDS`), *unsure* otherwise. The sentence gives ``p1``, ``p2``,
  the odds and ``p1`` relative to a uniform pick (``p1 * A``).
* **Completeness** of integrated gradients: the shares are called approximate when
  ``|delta| > 0.1 |target - baseline_target|`` (:data:`DELTA_WARN`).
* **Attention agreement** (Spearman correlation of attention rollout and absolute history
  attributions): *agrees* from 0.5, *partly agrees* from 0.1, else *does not agree*
  (:data:`AGREE`, :data:`PARTLY_AGREE`).

Drivers (history items and state slices) are listed by decreasing absolute attribution:
positive ones under "What drove it most", negative ones under "What held it back", each with
its signed share of the total absolute attribution (:func:`share_text`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from noetik.data.state_layout import STATE_LAYOUT, STATE_SLICES, TIME_SIGNALS
from noetik.explain.explain_context import DecisionContext, ItemFacts

if TYPE_CHECKING:
    from noetik.explain.explanation import Explanation, HistoryDriver, StateDriver

__all__ = [
    "AGREE",
    "CONFIDENT_ODDS",
    "CONFIDENT_PROBABILITY",
    "DELTA_WARN",
    "FAIR_ODDS",
    "PARTLY_AGREE",
    "compose_text",
    "confidence_level",
    "describe_group",
    "feedback_phrase",
    "item_phrase",
    "number",
    "percent",
    "share_text",
]

#: Top probability from which the model is called confident.
CONFIDENT_PROBABILITY = 0.5
#: Odds (top probability / runner-up probability) from which the model is called confident.
CONFIDENT_ODDS = 3.0
#: Odds from which the model is called fairly confident (below: unsure).
FAIR_ODDS = 1.5
#: Relative IG completeness gap above which the shares are called approximate.
DELTA_WARN = 0.1
#: Spearman correlation from which attention agrees with the attributions.
AGREE = 0.5
#: Spearman correlation from which attention partly agrees with the attributions.
PARTLY_AGREE = 0.1
_TARGET_NAMES = {"logp": "log-probability", "q": "Q-value", "signal": "predicted signal"}
_METHOD_NAMES = {
    "integrated_gradients": "integrated gradients",
    "saliency": "saliency",
    "input_x_gradient": "gradient x input",
    "layer_integrated_gradients": "layer integrated gradients",
}


# -- naming the data (every value comes from the decision context) -----------------------------
_EVENTS = {
    "is_like": "like",
    "is_follow": "follow",
    "is_comment": "comment",
    "is_forward": "forward",
    "is_hate": "hate",
    "is_profile_enter": "profile visit",
    "is_click": "click",
    "long_view": "long view",
}
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _join(parts: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _seconds(s: float) -> str:
    """A duration in the largest unit that keeps it readable (``43 s``, ``12 min``, ``5.2 h``)."""
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h" if s < 172_800 else f"{s / 86_400:.1f} days"


def item_phrase(item: ItemFacts) -> str:
    """``tags 5, 17; 43 s`` (what is known of a video)."""
    tags = "tags " + ", ".join(str(t) for t in item.tags) if item.tags else "no known tags"
    dur = "duration unknown" if item.duration_s is None else _seconds(item.duration_s)
    return f"{tags}; {dur}"


def feedback_phrase(feedback: Mapping[str, float]) -> tuple[str, str]:
    """``(what the user did, how much was watched)``: the events that happened
    (``like and long view``, or ``view without a click``) and ``watched 38 %`` (or the play
    time when the watch ratio is unknown)."""
    events = [word for sig, word in _EVENTS.items() if feedback.get(sig, 0.0) > 0.5]
    what = _join(events) if events else "view without a click"
    ratio = feedback.get("watch_ratio", 0.0)
    if ratio > 0:
        return what, f"watched {100 * ratio:.0f} %"
    return what, f"{feedback.get('play_time_s', 0.0):.1f} s played"


def _signal(feature: str) -> str:
    """``hist.mean.log1p_play_time_s`` -> ``play_time_s``."""
    name = feature.rsplit(".", 1)[-1]
    return name.removeprefix("log1p_")


def _user_count(ctx: DecisionContext, column: str, value: float) -> int:
    """A user count from the traits, else inverted from its ``log1p`` state value."""
    raw = ctx.traits.get(column)
    return int(raw) if isinstance(raw, int | float) else round(math.expm1(value))


def _dims(ctx: DecisionContext, group: str) -> np.ndarray:
    """(size,) float64 values of slice ``group`` of the state."""
    return ctx.obs[STATE_SLICES[group]].astype(np.float64)


def _flags(ctx: DecisionContext, feature: str) -> str:
    names = [
        n.split(".", 1)[1]
        for n, x in zip(_names("user.flags"), _dims(ctx, "user.flags"), strict=True)
        if x > 0.5
    ]
    return ", ".join(names) if names else "no flag set"


def _counts(ctx: DecisionContext, feature: str) -> str:
    cols = ("follow_user_num", "fans_user_num", "friend_user_num")
    n = [_user_count(ctx, c, x) for c, x in zip(cols, _dims(ctx, "user.counts"), strict=True)]
    return f"{n[0]:,} follows, {n[1]:,} fans, {n[2]:,} friends"


def _range(ctx: DecisionContext, feature: str) -> str:
    """``follow_user_num_range 150 to 250`` for the range column of ``feature``."""
    column = feature.removeprefix("user.log1p_").rsplit("_", 1)[0]
    lo = _value(ctx, "user.range_bounds", f"user.log1p_{column}_lo")
    hi = _value(ctx, "user.range_bounds", f"user.log1p_{column}_hi")
    return f"{column} {round(math.expm1(lo)):,} to {round(math.expm1(hi)):,}"


def _last(ctx: DecisionContext, feature: str) -> str:
    if not ctx.mask.any():
        return "none"
    past = ctx.past(int(np.flatnonzero(ctx.mask)[-1]))
    what, watched = feedback_phrase(past.feedback)
    return f"{what} on video {past.item.video_id}, {watched}"


def _mean(ctx: DecisionContext, feature: str) -> str:
    v = _value(ctx, "hist.mean", feature)
    sig = _signal(feature)
    v = math.expm1(v) if sig in TIME_SIGNALS else v
    return f"mean {sig} {v:.2f} over the last {int(ctx.mask.sum())} videos"


def _gap(ctx: DecisionContext, feature: str) -> str:
    log_gap, none = _dims(ctx, "hist.gap")
    return "none before" if none > 0.5 else _seconds(math.expm1(log_gap))


def _weekday(ctx: DecisionContext, feature: str) -> str:
    day = ctx.context.get("weekday")
    return "unknown" if day is None else _WEEKDAYS[day]


def _tab(ctx: DecisionContext, feature: str) -> str:
    tab = ctx.context.get("tab")
    return "no tab" if tab is None else f"tab {tab}"


def _step(ctx: DecisionContext, feature: str) -> str:
    step = ctx.context.get("step") or 0
    return "session start" if step == 0 else f"step {step}"


_Describe = Callable[[DecisionContext, str], str]
#: Slice -> (label, its value for a decision); a slice not listed names its top dimension.
_GROUPS: dict[str, tuple[str, _Describe]] = {
    "user.active_degree": (
        "their activity level",
        lambda c, f: "user.active_degree=" + str(c.traits.get("user_active_degree") or "unknown"),
    ),
    "user.flags": ("their profile flags", _flags),
    "user.counts": ("their social graph", _counts),
    "user.range_bounds": ("their profile ranges", _range),
    "user.register_days": (
        "their account age",
        lambda c, f: (
            "registered "
            f"{_user_count(c, 'register_days', _dims(c, 'user.register_days')[0]):,}"
            " days ago"
        ),
    ),
    "hist.last": ("their previous video", _last),
    "hist.mean": ("their recent feedback", _mean),
    "hist.cum_mean": (
        "their all-time feedback",
        lambda c, f: f"{_signal(f)} rate {_value(c, 'hist.cum_mean', f):.2f}",
    ),
    "hist.length": (
        "the length of their history",
        lambda c, f: f"{round(math.expm1(_dims(c, 'hist.length')[1])):,} past interactions",
    ),
    "hist.gap": ("the time since their last video", _gap),
    "hist.span": (
        "the time span of their last videos",
        lambda c, f: _seconds(math.expm1(_dims(c, "hist.span")[0])),
    ),
    "hist.tags": (
        "the tags of their recent videos",
        lambda c, f: (
            f"{100 * _value(c, 'hist.tags', f):.0f} % in tag bucket "
            + f.removeprefix("hist.tag_bucket")
        ),
    ),
    "hist.duration": (
        "the length of their recent videos",
        lambda c, f: "mean " + _seconds(math.expm1(_dims(c, "hist.duration")[0])),
    ),
    "ctx.hour": ("the hour", lambda c, f: f"{c.context.get('hour')} h"),
    "ctx.weekday": ("the weekday", _weekday),
    "ctx.tab": ("the app tab", _tab),
    "ctx.step": ("the position in the session", _step),
}


def describe_group(ctx: DecisionContext, group: str, feature: str) -> tuple[str, str]:
    """``(label, value)`` of state slice ``group`` for this decision, e.g. ``("the hour",
    "21 h")``. ``feature`` is the slice's dimension that matters most; slices without a
    specific description name it with its value (``user.onehot_feat3=0.4``)."""
    if group in _GROUPS:
        label, describe = _GROUPS[group]
        return label, describe(ctx, feature)
    label = "their " + group.split(".", 1)[-1].replace("_", " ")
    return label, f"{feature}={_value(ctx, group, feature):.3g}"


def _names(group: str) -> tuple[str, ...]:
    return next(sl.feature_names for sl in STATE_LAYOUT if sl.name == group)


def _value(ctx: DecisionContext, group: str, feature: str) -> float:
    """The state value of dimension ``feature`` of slice ``group`` (its first when unknown)."""
    names = _names(group)
    return float(_dims(ctx, group)[names.index(feature) if feature in names else 0])


# -- numbers -----------------------------------------------------------------------------------
def percent(p: float) -> str:
    """A probability as a percentage with the digits it needs: ``62 %``, ``4.3 %``, ``0.051 %``."""
    v = 100.0 * p
    if v >= 10 or v == 0:
        return f"{v:.0f} %"
    return f"{v:.1f} %" if v >= 1 else f"{v:.2g} %"


def share_text(share: float) -> str:
    """A signed share of the total attribution: ``+38 %``, ``-7 %``, ``+0.4 %``."""
    v = 100.0 * share
    return f"{v:+.1f} %" if abs(v) < 0.95 else f"{v:+.0f} %"


def number(x: float) -> str:
    """A score or margin: 2 decimals, or 2 significant digits below 0.1 (``0.83``, ``0.0042``)."""
    return f"{x:.2f}" if abs(x) >= 0.1 or x == 0 else f"{x:.2g}"


def confidence_level(p1: float, p2: float | None) -> str:
    """``confident``, ``fairly confident`` or ``unsure`` (thresholds in the module docs)."""
    odds = math.inf if not p2 else p1 / p2
    if p1 >= CONFIDENT_PROBABILITY or odds >= CONFIDENT_ODDS:
        return "confident"
    return "fairly confident" if odds >= FAIR_ODDS else "unsure"


# -- sentences ---------------------------------------------------------------------------------
def _video(item: ItemFacts) -> str:
    return f"video {item.video_id}"


def _decision(e: Explanation) -> str:
    top = e.recommended
    whose = "the policy's probability" if e.score_kind == "logit" else "the softmax of Q-values"
    head = f"Recommended {_video(top.item)} ({item_phrase(top.item)}) with "
    head += f"{percent(top.probability)} of {whose} among {e.n_candidates:,} candidates"
    if not e.runner_ups:
        return head + "."
    ru = e.runner_ups[0]
    unit = "logits" if e.score_kind == "logit" else "in Q-value"
    text = f"{head}, {number(ru.margin)} {unit} ahead of {_video(ru.item)}"
    if ru.q_margin is not None:
        text += f" (Q-value margin {ru.q_margin:+.3g})"
    if len(e.runner_ups) > 1:
        rest = ", ".join(f"{_video(c.item)} by {number(c.margin)}" for c in e.runner_ups[1:])
        text += f", then {rest}"
    return text + "."


def _turns(n: int) -> str:
    return "the last interaction" if n == 1 else f"{n} turns ago"


def _history_phrase(d: HistoryDriver) -> str:
    what, watched = feedback_phrase(d.past.feedback)
    item = d.past.item
    return (
        f"the user's {what} on {_video(item)} ({item_phrase(item)}; {watched}; "
        f"{_turns(d.past.turns_ago)}; {share_text(d.share)})"
    )


def _state_phrase(d: StateDriver) -> str:
    return f"{d.label} ({d.value_text}; {share_text(d.share)})"


def _drivers(e: Explanation) -> str:
    """'What drove it most: ...' and 'What held it back: ...', by decreasing |attribution|."""
    items: list[tuple[float, float, str]] = [
        (d.attribution, d.share, _history_phrase(d)) for d in e.history
    ] + [(d.attribution, d.share, _state_phrase(d)) for d in e.state]
    items.sort(key=lambda t: -abs(t[0]))
    pos = [p for a, _, p in items if a > 0]
    neg = [p for a, _, p in items if a < 0]
    if not pos and not neg:
        return "No input moved the decision measurably (every attribution is 0)."
    parts = []
    if pos:
        parts.append("What drove it most (shares of the total attribution): " + _join(pos) + ".")
    if neg:
        parts.append("What held it back: " + _join(neg) + ".")
    return " ".join(parts)


def _confidence(e: Explanation) -> str:
    top = e.recommended
    if not e.runner_ups:
        return f"The model has no alternative: {_video(top.item)} is the only candidate."
    ru = e.runner_ups[0]
    level = confidence_level(top.probability, ru.probability)
    odds = top.probability / ru.probability if ru.probability > 0 else math.inf
    uniform = top.probability * e.n_candidates
    return (
        f"The model is {level}: {percent(top.probability)} for {_video(top.item)} against "
        f"{percent(ru.probability)} for {_video(ru.item)} (odds {odds:.2f} to 1), "
        f"{uniform:,.1f} times a uniform pick among {e.n_candidates:,}."
    )


def _faithfulness(e: Explanation) -> str:
    target = _TARGET_NAMES.get(e.target_kind, e.target_kind)
    method = _METHOD_NAMES.get(e.method, e.method)
    if e.delta is None:
        return f"Attributions: {method} of the recommendation's {target} ({e.target:.3g})."
    change = e.target - e.baseline_target
    rel = abs(e.delta) / max(abs(change), 1e-12)
    text = (
        f"Attributions: {method} ({e.n_steps} steps) of the recommendation's {target}, which "
        f"moved from {e.baseline_target:.3g} at the baseline to {e.target:.3g}; the "
        f"attributions miss {abs(e.delta):.2g} of that change ({100 * rel:.1f} %)"
    )
    return text + (", so read the shares as approximate." if rel > DELTA_WARN else ".")


def _attention(e: Explanation) -> str:
    if e.attention_agreement is None:
        return ""
    rho = e.attention_agreement
    verb = (
        "agrees" if rho >= AGREE else "partly agrees" if rho >= PARTLY_AGREE else "does not agree"
    )
    text = f"The Transformer's attention over the history {verb} with them (Spearman {rho:+.2f})"
    attended = [d for d in e.history if d.attention is not None]
    if attended:
        most = max(attended, key=lambda d: d.attention or 0.0)
        text += (
            f"; of the videos named, it attends most to {_video(most.past.item)} "
            f"({percent(most.attention or 0.0)} of the attention rollout)"
        )
    return text + "."


def compose_text(e: Explanation) -> str:
    """The explanation of ``e`` in a few sentences (see the module docs for the wording)."""
    parts = [_decision(e), _drivers(e), _confidence(e), _faithfulness(e), _attention(e)]
    return " ".join(p for p in parts if p)
