"""Behavioural analysis of KuaiRand logs (real, synthetic or simulated under a policy).

>>> from noetik.analysis import BehaviourConfig, analyse_behaviour, findings
>>> report = analyse_behaviour(load_kuairand(None), BehaviourConfig(seed=0))
>>> print("\\n".join(findings(report)))
>>> behaviour_section(report)   # [(title, plain text, PNG bytes)] for the HTML report

Four questions, every answer with a 95 % bootstrap interval over users and a robust flag:
attention over time, preference structure and drift, emotional response, habit formation.
"""

from __future__ import annotations

from noetik.analysis.attention import AttentionResult
from noetik.analysis.behaviour import BehaviourConfig, BehaviourReport, analyse_behaviour
from noetik.analysis.emotion import EmotionResult, Precedence, RateTable
from noetik.analysis.figures import (
    behaviour_figures,
    behaviour_section,
    figure_png,
    save_figures,
)
from noetik.analysis.habits import HabitCurve, HabitResult
from noetik.analysis.markdown import behaviour_markdown
from noetik.analysis.preferences import PreferenceResult
from noetik.analysis.stats import Finding, UserBootstrap
from noetik.analysis.text import findings, findings_by_section

__all__ = [
    "AttentionResult",
    "BehaviourConfig",
    "BehaviourReport",
    "EmotionResult",
    "Finding",
    "HabitCurve",
    "HabitResult",
    "Precedence",
    "PreferenceResult",
    "RateTable",
    "UserBootstrap",
    "analyse_behaviour",
    "behaviour_figures",
    "behaviour_markdown",
    "behaviour_section",
    "figure_png",
    "findings",
    "findings_by_section",
    "save_figures",
]
