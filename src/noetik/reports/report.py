"""``write_report``: one self-contained ``report.html`` for a run folder.

Sections, in order (each an ``<section id=...>`` with an ``<h2>``): :data:`SECTION_IDS`. A
section whose inputs are missing says ``not available: <reason>``; a section that fails says
so with the error instead of stopping the report. Plots are base64 PNGs, the style sheet and
the one (image-counting) script are inline, every piece of text is HTML-escaped: the file
opens offline in any browser.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from noetik.errors import ConfigError
from noetik.reports import html as h
from noetik.reports.choices import is_choices_run, write_choices_report
from noetik.reports.context import ReportInputs, RunData, Unavailable
from noetik.reports.extra_sections import behaviour_section, tradeoff_section
from noetik.reports.model_sections import explanations_section, faithfulness_section
from noetik.reports.run_sections import (
    config_section,
    leaderboard_section,
    simulator_section,
    training_section,
)
from noetik.reports.trust_section import trust_section
from noetik.utils.io import write_text

__all__ = ["SECTIONS", "SECTION_IDS", "write_report"]

Builder = Callable[[RunData], str]
#: ``(id, title, builder)`` of every section, in report order.
SECTIONS: tuple[tuple[str, str, Builder], ...] = (
    ("config", "Run configuration", lambda d: config_section(d.inputs)),
    ("training", "Training curves", lambda d: training_section(d.inputs)),
    ("leaderboard", "Leaderboard", lambda d: leaderboard_section(d.inputs)),
    ("simulator", "Simulator fidelity", lambda d: simulator_section(d.inputs)),
    ("explanations", "Explained recommendations", explanations_section),
    ("faithfulness", "Faithfulness of the attributions", faithfulness_section),
    ("trust", "Simulator trust: agreement with real exposure", lambda d: trust_section(d.inputs)),
    ("tradeoff", "Engagement versus interpretability", tradeoff_section),
    ("behaviour", "Behavioural analysis", behaviour_section),
)
#: The section ids, in report order.
SECTION_IDS: tuple[str, ...] = tuple(s[0] for s in SECTIONS)


def _build(section_id: str, title: str, builder: Builder, data: RunData) -> h.Section:
    """One section; missing inputs or a failure become a ``not available`` line."""
    try:
        body = builder(data)
    except Unavailable as exc:
        body = h.unavailable(str(exc))
    except Exception as exc:  # one broken section must not lose the whole report
        body = h.unavailable(f"failed with {type(exc).__name__}: {exc}")
    return h.Section(section_id, title, body)


def write_report(
    run_dir: Path,
    out_path: Path | None = None,
    *,
    leaderboard: Path | None = None,
    sim_dir: Path | None = None,
    tradeoff_dir: Path | None = None,
    trust: Path | None = None,
    users: int = 3,
    seed: int = 0,
) -> Path:
    """Write the HTML report of run folder ``run_dir`` to ``out_path`` (default
    ``run_dir/report.html``, written atomically) and return its path.

    ``leaderboard``: a ``leaderboard.json`` or the folder holding one (default: the first
    in the run folder, its parent or its grandparent); ``sim_dir``: the simulator folder
    (default: the run's ``sim_dir`` env option); ``tradeoff_dir``: the output folder of
    ``scripts/tradeoff_sweep.py``; ``trust``: the ``trust.json`` of ``noetik sim trust`` (or
    its folder; default: found in, beside or above the run folder); ``users``: sample users
    whose recommendations are explained; ``seed``: seed of every sample. A choices run
    folder (``noetik choices fit``) gets the report of
    :func:`~noetik.reports.choices.write_choices_report` instead.
    """
    if users < 1:
        raise ConfigError(f"users must be >= 1, got {users}")
    run_dir = Path(run_dir)
    if is_choices_run(run_dir):  # a folder of noetik choices fit: its own sections
        return write_choices_report(run_dir, out_path)
    inputs = ReportInputs.read(
        run_dir,
        leaderboard=leaderboard,
        sim_dir=sim_dir,
        tradeoff_dir=tradeoff_dir,
        trust=trust,
        users=users,
        seed=seed,
    )
    data = RunData(inputs)
    data.agent()  # a damaged or mistyped run stops here with one line, not in every section
    sections = [_build(i, title, builder, data) for i, title, builder in SECTIONS]
    meta = inputs.meta
    subtitle = (
        f"{meta.get('algo', '?')} trained for {meta.get('steps', '?')} steps "
        f"(seed {meta.get('seed', '?')}) in {run_dir}"
    )
    out = Path(out_path) if out_path is not None else run_dir / "report.html"
    write_text(out, h.page(f"Noetik report: {run_dir.name}", subtitle, sections))
    return out
