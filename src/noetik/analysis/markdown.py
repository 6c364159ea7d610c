"""A :class:`BehaviourReport` as Markdown: summary tables and the findings."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from noetik.analysis.behaviour import BehaviourReport
from noetik.analysis.emotion import EMOTIONS
from noetik.analysis.stats import Finding
from noetik.analysis.text import findings, num, pct

Row = tuple[str, Finding, str]


def _times(x: float) -> str:
    return f"{num(x)}x"


def _cells(e: Finding, fmt: str) -> list[str]:
    f: Callable[[float], str] = {"num": num, "pct": pct, "x": _times}[fmt]
    return [f(e.value), f"{f(e.low)}–{f(e.high)}", "yes" if e.robust else "no"]


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(r) + " |" for r in rows]


def _estimate_table(rows: list[Row], level: int) -> list[str]:
    header = ["quantity", "estimate", f"{level} % CI", "robust"]
    return _table(header, [[name, *_cells(e, fmt)] for name, e, fmt in rows])


def _attention_rows(r: BehaviourReport) -> list[Row]:
    a = r.attention
    peak = a.hour_share[a.peak_hour]
    return [
        (f"share of interactions at the peak hour, {a.peak_hour:02d}:00", peak, "pct"),
        (f"peak / trough hour ({a.trough_hour:02d}:00) ratio", a.peak_to_trough, "x"),
        ("click rate, best minus worst hour", a.click_range, "num"),
        ("mean session length (interactions)", a.length_mean, "num"),
        ("median session length (interactions)", a.length_median, "num"),
        ("median session duration (min)", a.minutes_median, "num"),
        ("median break between sessions (h)", a.return_median_h, "num"),
        ("breaks ending within 24 h", a.return_within_24h, "pct"),
    ]


def _preference_rows(r: BehaviourReport) -> list[Row]:
    p = r.preferences
    if p is None:
        return []
    return [
        ("user tag entropy (bits)", p.entropy, "num"),
        ("... with tags shuffled across users", p.entropy_shuffled, "num"),
        ("concentration (shuffled - observed bits)", p.concentration, "num"),
        ("share of a user's top tag", p.top_tag_share, "pct"),
        ("early-vs-late JS divergence (bits)", p.drift_js, "num"),
        ("... with time shuffled", p.drift_js_shuffled, "num"),
        ("drift excess (observed - shuffled)", p.drift_excess, "num"),
    ]


def _emotion_lines(r: BehaviourReport, level: int) -> list[str]:
    e = r.emotion
    rows = [[s, *_cells(e.overall[s], "pct")] for s in ("is_click", "long_view", *EMOTIONS)]
    lines = _table(["signal", "rate", f"{level} % CI", "robust"], rows)
    chosen = [
        p
        for p in e.precedence
        if p.signal == p.previous
        or (p.signal == "is_like" and p.previous in ("is_click", "long_view"))
    ]
    header = [
        "signal",
        "after",
        "P(after)",
        "P(otherwise)",
        "lift",
        f"{level} % CI",
        "robust",
        "user-shuffled",
        "session-shuffled",
        "events",
    ]
    body = [
        [
            p.signal,
            p.previous,
            pct(p.after.value),
            pct(p.otherwise.value),
            *_cells(p.lift, "x"),
            f"{num(p.user_shuffled_lift)}x",
            f"{num(p.shuffled_lift)}x",
            str(p.n_events),
        ]
        for p in chosen
    ]
    return [*lines, "", *_table(header, body)]


def _habit_lines(r: BehaviourReport, level: int) -> list[str]:
    header = [
        "reward",
        "outcome",
        "sessions",
        "bin means",
        "slope",
        f"{level} % CI",
        "within-user slope",
        f"{level} % CI",
        "Spearman (bins)",
    ]
    body = []
    for c in r.habits.curves:
        slope, within = _cells(c.slope, "num"), _cells(c.within_slope, "num")
        body.append(
            [
                c.reward,
                c.outcome,
                str(c.n_sessions),
                " / ".join(num(v.value) for v in c.values),
                slope[0] + (" *" if c.slope.robust else ""),
                slope[1],
                within[0] + (" *" if c.within_slope.robust else ""),
                within[1],
                num(c.spearman.value),
            ]
        )
    return _table(header, body)


def behaviour_markdown(report: BehaviourReport, heading_level: int = 3) -> str:
    """Markdown summary: overview line, one table per question, and the findings."""
    h = "#" * heading_level
    level = round(100 * (1 - report.config.alpha))
    lines = [
        f"{h} Behaviour: {report.source}",
        "",
        f"{report.n_rows:,} interactions of {report.n_users:,} users, "
        f"{report.first_date}–{report.last_date}; {report.attention.n_sessions:,} sessions; "
        f"{level} % bootstrap intervals over users ({report.config.n_boot} replicates, "
        f"seed {report.config.seed}).",
        "",
        f"{h}# Attention over time",
        "",
        *_estimate_table(_attention_rows(report), level),
        "",
        f"{h}# Preferences and drift",
        "",
        *(
            _estimate_table(_preference_rows(report), level)
            if report.preferences
            else ["No tags in this log."]
        ),
        "",
        f"{h}# Emotional response",
        "",
        *_emotion_lines(report, level),
        "",
        f"{h}# Habit formation",
        "",
        *_habit_lines(report, level),
        "",
        "Slopes: change of the outcome per unit of the session's reward (* robust).",
        "",
        f"{h}# Findings",
        "",
        *(f"* {s}" for s in findings(report)),
        "",
    ]
    return "\n".join(lines)


def _lift_of(report: BehaviourReport, signal: str, previous: str) -> Finding:
    return next(
        p.lift for p in report.emotion.precedence if (p.signal, p.previous) == (signal, previous)
    )


def comparison_markdown(reports: Mapping[str, BehaviourReport]) -> str:
    """One row per labelled report: the headline numbers side by side (e.g. the real data,
    the synthetic data and logs simulated under several policies)."""
    header = [
        "log",
        "users",
        "like rate",
        "hate rate",
        "like after like",
        "like after click",
        "tag entropy (bits)",
        "concentration (bits)",
        "drift excess (bits)",
    ]
    rows = []
    for label, r in reports.items():
        p = r.preferences
        tags = (
            [
                _short(p.entropy, "num"),
                _short(p.concentration, "num"),
                _short(p.drift_excess, "num"),
            ]
            if p
            else ["–"] * 3
        )
        rows.append(
            [
                label,
                f"{r.n_users:,}",
                _short(r.emotion.overall["is_like"], "pct"),
                _short(r.emotion.overall["is_hate"], "pct"),
                _short(_lift_of(r, "is_like", "is_like"), "x"),
                _short(_lift_of(r, "is_like", "is_click"), "x"),
                *tags,
            ]
        )
    return "\n".join(_table(header, rows))


def _short(e: Finding, fmt: str) -> str:
    """``value (low–high)`` with a trailing ``*`` when robust."""
    value, span, _ = _cells(e, fmt)
    return f"{value} ({span}){' *' if e.robust else ''}"
