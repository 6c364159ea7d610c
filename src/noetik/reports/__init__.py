"""The HTML report of a run: one self-contained ``report.html`` (``noetik report RUN_DIR``).

>>> from noetik.reports import write_report
>>> write_report(Path("runs/iql"), sim_dir=Path("runs/sim"), tradeoff_dir=Path("results/tradeoff"))
PosixPath('runs/iql/report.html')

Sections: run configuration, training curves, leaderboard, simulator fidelity, explained
recommendations (text, runner-ups, attributions, attention), faithfulness of the
attributions, the engagement-versus-interpretability trade-off and the behavioural analysis.
"""

from __future__ import annotations

from noetik.reports.report import SECTION_IDS, write_report

__all__ = ["SECTION_IDS", "write_report"]
