"""Plain-word findings of a behavioural analysis, from its JSON form
(:meth:`~noetik.analysis.choices.ChoiceBehaviour.as_dict`), so a saved analysis reads the
same as a fresh one.

>>> from noetik.analysis.choices import behaviour_lines
>>> for line in behaviour_lines(behaviour.as_dict()):
...     print(line)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from noetik.utils.bootstrap import format_estimate

__all__ = ["behaviour_lines", "estimate_text"]


def estimate_text(entry: Mapping[str, Any] | None) -> str:
    """``mean [low, high]`` of a ``{"mean", "low", "high"}`` dict (``n/a`` when undefined)."""
    if not entry or entry.get("mean") is None or not math.isfinite(float(entry["mean"])):
        return "n/a"
    return format_estimate(float(entry["mean"]), float(entry["low"]), float(entry["high"]))


def _defined(entry: Mapping[str, Any] | None) -> bool:
    return estimate_text(entry) != "n/a"


def _excludes(entry: Mapping[str, Any], value: float) -> bool:
    """The interval lies wholly above or below ``value``."""
    low, high = float(entry["low"]), float(entry["high"])
    return (low > value) or (high < value)


def _sign_word(entry: Mapping[str, Any], above: str, below: str, neither: str) -> str:
    """``above`` / ``below`` when ``entry``'s interval excludes 0 on that side, else
    ``neither``."""
    if not _excludes(entry, 0.0):
        return neither
    return above if entry["mean"] > 0 else below


def behaviour_lines(report: Mapping[str, Any]) -> list[str]:
    """One sentence per measure, each with its 95 % interval over subjects."""
    ws = report["win_stay"]
    curve = report["learning_curve"]
    per = report["perseveration"]
    sens = report["sensitivity"]
    n, k = report["n_subjects"], report["n_options"]
    rule = "net outcome > 0" if report["win_rule"] == "positive" else "above own median"
    lines = [
        f"{report['task']}: {n} subjects, {report['n_trials']:,} trials, {k} options; "
        f"a win is a trial with {rule} (95% intervals over subjects).",
        f"Win-stay {estimate_text(ws['win_stay'])}, lose-shift {estimate_text(ws['lose_shift'])}"
        f" (a player ignoring outcomes has win-stay = 1 - lose-shift; stay overall "
        f"{estimate_text(ws['stay'])}).",
    ]
    first, last = curve["best"][0], curve["best"][-1]
    change = curve["improvement"]
    verdict = _sign_word(change, "rises", "falls", "shows no clear change")
    lines.append(
        f"Learning curve: P(best option) {estimate_text(first)} in the first bin, "
        f"{estimate_text(last)} in the last (chance {curve['chance']:.2f}); it {verdict} "
        f"(last - first {estimate_text(change)})."
    )
    excess = per["excess"]
    kind = _sign_word(excess, "perseveration", "alternation", "no repeat bias")
    lines.append(
        f"Repeat rate {estimate_text(per['repeat'])} against {estimate_text(per['expected'])} "
        f"from the subjects' own choice frequencies: excess {estimate_text(excess)} ({kind})."
    )
    stay = sens["stay"]
    cases = [
        f"{name.replace('_', ' ')} {estimate_text(stay[name])}"
        for name in ("gain_only", "loss_only", "both", "neither")
        if _defined(stay.get(name))
    ]
    lines.append("Stay after a trial with " + ", ".join(cases) + ".")
    if _defined(stay.get("gain_minus_loss")):
        lines.append(
            f"Stay after a gain minus after a loss: {estimate_text(stay['gain_minus_loss'])}."
        )
    slopes = sens["slopes"]
    if _defined(slopes.get("gain")) or _defined(slopes.get("loss")):
        lines.append(
            f"Per unit of outcome, a gain changes P(stay) by {estimate_text(slopes['gain'])}, "
            f"a loss by {estimate_text(slopes['loss'])} (asymmetry -loss - gain "
            f"{estimate_text(slopes['asymmetry'])}; {sens['n_regressed']} subjects regressed)."
        )
    else:
        lines.append(
            "Slopes of stay on gain and loss magnitudes are not identified in this task "
            "(each trial brings one fixed gain or one fixed loss)."
        )
    two = report.get("two_step")
    if two:
        lines.append(
            f"Two-step: model-free index (reward main effect) {estimate_text(two['model_free'])},"
            f" model-based index (reward x transition) {estimate_text(two['model_based'])}."
        )
    return lines
