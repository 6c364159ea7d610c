"""Plain-language findings derived from a :class:`BehaviourReport`'s numbers.

Every sentence is built from the estimates it quotes (value, interval, robust flag); which
wording is used (e.g. "concentrated" versus "no more concentrated than chance") follows the
interval, never a fixed list.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from noetik.analysis.attention import WEEKDAYS
from noetik.analysis.behaviour import BehaviourReport
from noetik.analysis.emotion import EmotionResult, Precedence
from noetik.analysis.habits import HabitCurve, HabitResult
from noetik.analysis.preferences import PreferenceResult
from noetik.analysis.stats import Finding

#: (present participle / past tense phrase, infinitive phrase) of each signal.
_VERBS: dict[str, tuple[str, str]] = {
    "is_click": ("clicked", "click"),
    "long_view": ("watched long", "watch long"),
    "is_like": ("liked", "like"),
    "is_hate": ("hated", "hate"),
    "is_comment": ("commented on", "comment on"),
    "is_follow": ("followed the author of", "follow the author of"),
    "is_forward": ("forwarded", "forward"),
}

SECTIONS: tuple[str, ...] = ("attention", "preferences", "emotion", "habits")


def num(x: float) -> str:
    """``x`` with three significant digits (thousands separated above 1,000)."""
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    return f"{x:.3g}"


def pct(x: float) -> str:
    """``x`` (a fraction) as a percentage."""
    return f"{num(100.0 * x)} %"


def interval(e: Finding, fmt: str = "num", level: int = 95) -> str:
    """``"<value> (95 % CI <low>–<high>)"`` in ``fmt`` ``num``, ``pct``, ``x`` (ratio) or
    ``pp`` (percentage points)."""
    formats: dict[str, Callable[[float], str]] = {
        "num": num,
        "pct": pct,
        "x": lambda v: f"{num(v)}x",
        "pp": lambda v: num(100 * v),
    }
    f = formats[fmt]
    unit = " pp" if fmt == "pp" else ""
    return f"{f(e.value)}{unit} ({level} % CI {f(e.low)}–{f(e.high)}{unit})"


def robust_word(e: Finding) -> str:
    """``"robust"`` or ``"not robust"``."""
    return "robust" if e.robust else "not robust"


def _attention(r: BehaviourReport, level: int) -> list[str]:
    a = r.attention
    peak, trough = a.hour_share[a.peak_hour], a.hour_share[a.trough_hour]
    clicks = np.array([e.value for e in a.hour_click])
    best, worst = int(np.nanargmax(clicks)), int(np.nanargmin(clicks))
    excess = np.array([e.value - (e.null or 0.0) for e in a.weekday_share])
    day = int(np.nanargmax(excess))
    one = dict(a.length_hist).get("1", 0.0)
    return [
        f"Activity peaks at {a.peak_hour:02d}:00 with {interval(peak, 'pct', level)} of "
        f"interactions, against {pct(1 / 24)} if spread evenly; the quietest hour, "
        f"{a.trough_hour:02d}:00, has {pct(trough.value)}: a peak-to-trough ratio of "
        f"{interval(a.peak_to_trough, 'x', level)} ({robust_word(a.peak_to_trough)}).",
        f"Click rate {'depends' if a.click_range.robust else 'does not clearly depend'} on "
        f"the hour: {pct(clicks[best])} at {best:02d}:00 versus "
        f"{pct(clicks[worst])} at {worst:02d}:00, a gap of {interval(a.click_range, 'pp', level)}"
        f" ({robust_word(a.click_range)}; the two hours are picked on the point estimates).",
        f"{WEEKDAYS[day]} is the busiest weekday relative to the calendar: "
        f"{interval(a.weekday_share[day], 'pct', level)} of interactions on "
        f"{pct(a.weekday_share[day].null or 0.0)} of the days "
        f"({robust_word(a.weekday_share[day])}).",
        f"Sessions (cut at gaps over {num(r.config.session_gap_minutes)} min) hold "
        f"{interval(a.length_mean, 'num', level)} interactions on average; the median session "
        f"has {num(a.length_median.value)} interaction(s) and lasts "
        f"{num(a.minutes_median.value)} min, and {pct(one)} of sessions are a single video.",
        f"The median break between two sessions of a user is "
        f"{interval(a.return_median_h, 'num', level)} hours; "
        f"{interval(a.return_within_24h, 'pct', level)} of breaks end within 24 h "
        f"({num(a.n_returns)} breaks).",
    ]


def _preferences(p: PreferenceResult | None, min_tagged: int, level: int) -> list[str]:
    if p is None:
        return ["No tag information: the preference analysis needs video tags."]
    if p.n_users == 0:
        return [f"No user has {min_tagged} tagged interactions: too little data for tastes."]
    tops = ", ".join(f"{t} ({pct(e.value)})" for t, e in zip(p.tags[:3], p.tag_share, strict=False))
    c, d = p.concentration, p.drift_excess
    conc = (
        "Individual tastes are concentrated"
        if c.robust and c.value > 0
        else ("Individual tastes are no more concentrated than chance")
    )
    if d.robust and d.value > 0:
        drift = "Preferences drift over time"
    elif d.robust:
        drift = "Preferences are more stable than chance"
    else:
        drift = "No drift of preferences beyond chance"
    return [
        f"The most common tags are {tops} of tagged interactions ({p.n_tags} tags; population "
        f"entropy {num(p.population_entropy)} bits).",
        f"{conc}: a user's tag mix has {interval(p.entropy, 'num', level)} bits of entropy "
        f"against {num(p.entropy_shuffled.value)} bits if their videos were drawn from "
        f"everyone's, a difference of {interval(c, 'num', level)} bits ({robust_word(c)}); "
        f"their most-watched tag takes {interval(p.top_tag_share, 'pct', level)} of their "
        f"interactions ({p.n_users} users with at least {min_tagged} tagged interactions).",
        f"{drift}: the Jensen-Shannon divergence between a user's early and late tag mix is "
        f"{interval(p.drift_js, 'num', level)} bits against {num(p.drift_js_shuffled.value)} "
        f"bits with the order of their interactions shuffled, an excess of "
        f"{interval(d, 'num', level)} bits ({robust_word(d)}).",
    ]


def _lift_sentence(pc: Precedence, level: int) -> str:
    did, do = _VERBS[pc.previous][0], _VERBS[pc.signal][1]
    if pc.n_events < 1 or not math.isfinite(pc.lift.value):
        return (
            f"Too few events to tell whether users who {did} their previous video "
            f"{do} the next one more often ({pc.n_events} events)."
        )
    if not pc.lift.robust:
        meaning = "the interval is too wide to tell"
    elif pc.lift.low > max(pc.user_shuffled_lift, pc.shuffled_lift):
        meaning = "a sequential effect of the previous video"
    elif pc.lift.low > pc.user_shuffled_lift:
        meaning = (
            "the feedback clusters in sessions, but its order within a session does not matter"
        )
    else:
        meaning = "it reflects how often each user gives this feedback, not what came just before"
    return (
        f"Users who {did} their previous video {do} the next one {interval(pc.lift, 'x', level)}"
        f" as often as otherwise ({pct(pc.after.value)} vs {pct(pc.otherwise.value)}; "
        f"{robust_word(pc.lift)}; {pc.n_events} events). Shuffled nulls: "
        f"{num(pc.user_shuffled_lift)}x with each user's videos in random order, "
        f"{num(pc.shuffled_lift)}x with the order shuffled within sessions: {meaning}."
    )


def _emotion(e: EmotionResult, level: int) -> list[str]:
    names = {s: _VERBS[s][1].split()[0] for s in e.overall}
    rates = ", ".join(
        f"{names[s]} {interval(e.overall[s], 'pct', level)}"
        for s in ("is_like", "is_hate", "is_comment", "is_follow", "is_forward")
    )
    out = [f"Feedback rates per interaction: {rates}."]
    for table, what in ((e.by_tab, "tab"), (e.by_duration, "video duration")):
        likes = table.rates["is_like"]
        if len(likes) < 2:
            continue
        vals = np.array([x.value for x in likes])
        hi, lo = int(np.nanargmax(vals)), int(np.nanargmin(vals))
        n_robust = sum(x.robust for x in likes)
        out.append(
            f"The like rate by {what} ranges from {interval(likes[lo], 'pct', level)} "
            f"({table.groups[lo]}) to {interval(likes[hi], 'pct', level)} ({table.groups[hi]}); "
            f"{n_robust} of {len(likes)} groups differ robustly from the overall rate."
        )
    chosen = [
        pc
        for pc in e.precedence
        if pc.signal == pc.previous
        or (pc.signal == "is_like" and pc.previous in ("is_click", "long_view"))
    ]
    return out + [_lift_sentence(pc, level) for pc in chosen]


def _scaled(e: Finding, k: float) -> Finding:
    """``e`` with value and interval multiplied by ``k`` > 0."""
    return Finding(k * e.value, k * e.low, k * e.high, e.null, e.robust)


def _slope_sentence(c: HabitCurve, level: int) -> str:
    is_return = c.outcome.startswith("return_")
    what = (
        f"the chance of a return within {c.outcome[7:]}"
        if is_return
        else ("the next session's length")
    )
    fmt, unit = ("pp", "") if is_return else ("num", " interactions")
    pooled, within = _scaled(c.slope, 0.1), _scaled(c.within_slope, 0.1)
    if within.robust:
        verdict = "the session's reward itself predicts it"
    elif pooled.robust:
        verdict = "the association comes from differences between users, not from the session"
    else:
        verdict = "no association"
    return (
        f"Per +0.1 of a session's {c.reward.replace('_', ' ')}, {what} changes by "
        f"{interval(pooled, fmt, level)}{unit} over all sessions ({robust_word(pooled)}) and "
        f"by {interval(within, fmt, level)}{unit} within users ({robust_word(within)}): "
        f"{verdict} (Spearman over {len(c.values)} bins {num(c.spearman.value)}; "
        f"{c.n_sessions} sessions)."
    )


def _habits(h: HabitResult, level: int) -> list[str]:
    returns = "; ".join(
        f"within {k[7:]}: {interval(v, 'pct', level)}" for k, v in h.returns.items()
    )
    out = [
        f"Share of sessions followed by another session of the same user {returns}; the next "
        f"session holds {interval(h.next_length, 'num', level)} interactions on average."
    ]
    first = next(iter(h.returns), None)
    keep = {first, "next_length"}
    curves = [c for c in h.curves if c.outcome in keep and math.isfinite(c.slope.value)]
    return out + [_slope_sentence(c, level) for c in curves]


def findings_by_section(report: BehaviourReport) -> dict[str, list[str]]:
    """Findings per section (``attention``, ``preferences``, ``emotion``, ``habits``)."""
    level = round(100 * (1 - report.config.alpha))
    return {
        "attention": _attention(report, level),
        "preferences": _preferences(report.preferences, report.config.min_tagged, level),
        "emotion": _emotion(report.emotion, level),
        "habits": _habits(report.habits, level),
    }


def findings(report: BehaviourReport) -> list[str]:
    """Plain-language sentences derived from the report's numbers, each quoting its
    interval and whether it is robust."""
    return [s for section in findings_by_section(report).values() for s in section]
