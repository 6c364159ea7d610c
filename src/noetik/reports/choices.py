"""The HTML report of a choices run folder (``noetik choices fit --out RUN``).

``noetik report RUN`` renders it when RUN holds ``choices.json``. Sections, in order
(:data:`CHOICE_SECTION_IDS`): the run's configuration, the model comparison (AIC/BIC of the
per-subject and pooled fits, the neural models' in-sample fit when ``choices fit --neural``
trained them, and the held-out scores of every model when ``noetik choices evaluate --out
RUN`` wrote ``evaluation.json``), the explained choices (``explanations.json``: each
network's plain-word explanation of a few trials with bars of the earlier trials'
attributions), parameter recovery (true against fitted values, one panel per parameter) and
the behavioural analysis (findings and curves). A section whose file is missing says ``not
available`` with the command that writes it.

>>> from noetik.reports.choices import write_choices_report
>>> write_choices_report(Path("runs/bandit2arm"))
PosixPath('runs/bandit2arm/report.html')
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from noetik.analysis.choices import behaviour_figure, behaviour_lines
from noetik.errors import ConfigError
from noetik.reports import html as h
from noetik.reports.context import Unavailable, read_json
from noetik.reports.plots import attribution_bars, figure_png
from noetik.utils.io import read_json as read_config
from noetik.utils.io import write_text

__all__ = [
    "CHOICE_SECTIONS",
    "CHOICE_SECTION_IDS",
    "is_choices_run",
    "recovery_figure",
    "write_choices_report",
]

#: The run folder's configuration file (its presence marks a choices run).
CONFIG_FILE = "choices.json"


def is_choices_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` was written by ``noetik choices fit``."""
    return (Path(run_dir) / CONFIG_FILE).is_file()


def _load(run_dir: Path, name: str, command: str) -> Any:
    if not (run_dir / name).is_file():
        raise Unavailable(f"no {name} in {run_dir} (written by {command})")
    return read_json(run_dir / name)


def config_section(run_dir: Path) -> str:
    """The run's ``choices.json`` as a table."""
    config = _load(run_dir, CONFIG_FILE, "noetik choices fit")
    rows = [
        ["data", config.get("data")],
        ["task", config.get("task")],
        ["models", ", ".join(config.get("models", []))],
        ["fits", h.json_text(config.get("fit"))],
        ["parameter recovery", h.json_text(config.get("recovery"))],
        ["mapping", h.json_text(config.get("mapping"))],
    ]
    return h.table(["setting", "value"], rows)


def comparison_section(run_dir: Path) -> str:
    """AIC/BIC of every model's per-subject and pooled fits; held-out scores when present."""
    fits = _load(run_dir, "fits.json", "noetik choices fit")
    models = fits["models"]
    best = min(m["subjects"]["aic"] for m in models.values())
    rows = []
    for name, m in sorted(models.items(), key=lambda kv: kv[1]["subjects"]["aic"]):
        s, p = m["subjects"], m["pooled"]
        rows.append(
            [
                name,
                len(m["parameters"]),
                round(s["nll_total"], 1),
                round(s["aic"], 1),
                round(s["aic"] - best, 1),
                round(s["bic"], 1),
                round(p["nll"], 1),
                round(p["aic"], 1),
                round(p["bic"], 1),
                ", ".join(
                    f"{n}={v:.3g}" for n, v in zip(m["parameters"], p["params"], strict=True)
                ),
            ]
        )
    parts = [
        h.para(
            f"{fits['task']}: {fits['n_subjects']} subjects, {fits['n_trials']:,} trials. "
            "Per-subject fits sum AIC = 2k + 2 NLL and BIC = k ln n + 2 NLL over subjects; "
            "pooled fits share one parameter set. Lower is better."
        ),
        h.table(
            [
                "model",
                "k",
                "NLL (per subject)",
                "AIC",
                "ΔAIC",
                "BIC",
                "NLL (pooled)",
                "AIC (pooled)",
                "BIC (pooled)",
                "pooled parameters",
            ],
            rows,
            caption="Information criteria (sorted by per-subject AIC)",
        ),
    ]
    neural = fits.get("neural") or {}
    if neural:
        parts.append(_neural_table(neural))
    evaluation = run_dir / "evaluation.json"
    if evaluation.is_file():
        parts.append(_heldout(read_json(evaluation)))
    else:
        parts.append(
            h.note(
                "Held-out scores: run noetik choices evaluate DATA ... --out RUN to add them here."
            )
        )
    return "\n".join(parts)


def _neural_table(neural: dict[str, Any]) -> str:
    """The networks trained on every subject: in-sample fit and training."""
    rows = [
        [
            name,
            n["weights"],
            round(n["nll_total"], 1),
            round(n["nll_per_decision"], 3),
            round(n["normalised_likelihood"], 3),
            f"{n['best_update']} of {n['updates']}",
            round(n["seconds"], 1),
            n["folder"],
        ]
        for name, n in neural.items()
    ]
    return "\n".join(
        [
            h.table(
                [
                    "model",
                    "weights",
                    "NLL (in sample)",
                    "NLL / decision",
                    "normalised likelihood",
                    "updates kept",
                    "seconds",
                    "saved in",
                ],
                rows,
                caption="Neural models of choice, one network for all subjects (in sample)",
            ),
            h.note(
                "A network has no per-subject parameters and thousands of weights, so AIC/BIC do "
                "not apply: compare it with the cognitive models on held-out choices."
            ),
        ]
    )


def explanations_section(run_dir: Path) -> str:
    """Each network's explained trials: plain words and attribution bars over earlier trials."""
    explained = _load(run_dir, "explanations.json", "noetik choices fit --neural gru")
    if not explained:
        raise Unavailable("explanations.json holds no explanation")
    parts = [
        h.para(
            "Integrated gradients of the log-probability of the predicted option over the "
            "earlier trials' inputs (baseline: those trials did not happen). Blue pushed "
            "towards the predicted option, red against it; the ten largest earlier trials."
        )
    ]
    for model, entries in explained.items():
        for e in entries:
            parts.append(h.para(e["text"]))
            top = e["top"]
            if top:
                labels = [t["trial"] for t in top]
                values = np.asarray([t["attribution"] for t in top])
                title = f"{model}: subject {e['subject']}, trial {e['trial']}"
                parts.append(h.img(attribution_bars(labels, values, title), title))
    return "\n".join(parts)


def _heldout(result: dict[str, Any]) -> str:
    parts = []
    for scheme, entry in result["schemes"].items():
        models = sorted(entry["models"], key=lambda n: entry["models"][n]["nll"]["mean"])
        rows = []
        for name in models:
            s = entry["models"][name]
            versus = entry["versus_best"].get(name)
            rows.append(
                [
                    name,
                    h.interval(s["normalised_likelihood"]),
                    h.interval(s["nll"]),
                    h.interval(s["accuracy"]),
                    "best" if versus is None else h.interval(versus["likelihood_ratio"]),
                ]
            )
        parts.append(
            h.table(
                [
                    "model",
                    "normalised likelihood",
                    "NLL / decision",
                    "accuracy",
                    f"likelihood ratio to {entry['best']}",
                ],
                rows,
                caption=f"Held out, {scheme.replace('_', ' ')} (chance {result['chance']:.3f}; "
                "95 % intervals over subjects)",
            )
        )
    return "\n".join(parts)


def recovery_figure(recovery: dict[str, Any]) -> Figure:
    """True (x) against fitted (y) parameters: one row per model, one panel per parameter,
    each titled with its Pearson correlation."""
    names = list(recovery)
    cols = max(len(recovery[m]["parameters"]) for m in names)
    fig = Figure(figsize=(2.6 * cols, 2.4 * len(names)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(names), cols, squeeze=False)
    for i, model in enumerate(names):
        r = recovery[model]
        true, fitted = np.asarray(r["true"]), np.asarray(r["fitted"])
        for j in range(cols):
            ax = axes[i, j]
            if j >= len(r["parameters"]):
                ax.set_visible(False)
                continue
            param = r["parameters"][j]
            x, y = true[:, j], fitted[:, j]
            ax.scatter(x, y, s=9, alpha=0.7)
            low, high = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
            ax.plot([low, high], [low, high], color="grey", lw=1, ls="--")
            corr = r["pearson"].get(param)
            shown = "nan" if corr is None or not math.isfinite(corr) else f"{corr:.2f}"
            ax.set_title(f"{model}: {param} (r = {shown})", fontsize=8)
            ax.tick_params(labelsize=7)
            if i == len(names) - 1 or j == 0:
                ax.set_xlabel("true", fontsize=7)
                ax.set_ylabel("fitted", fontsize=7)
    return fig


def recovery_section(run_dir: Path) -> str:
    """Correlations of true and refitted parameters, and their scatter plots."""
    recovery = _load(run_dir, "recovery.json", "noetik choices fit --recovery N")
    if not recovery:
        raise Unavailable("recovery.json holds no model")
    rows = []
    for model, r in recovery.items():
        for p in r["parameters"]:
            rows.append([model, r["env_id"], p, r["pearson"][p], r["spearman"][p]])
        n = len(r["true"])
    return "\n".join(
        [
            h.para(
                f"{n} simulated participants per model, parameters drawn uniformly from their "
                "typical ranges, each playing the model's task environment and refitted by "
                "maximum likelihood."
            ),
            h.table(["model", "environment", "parameter", "Pearson r", "Spearman r"], rows),
            h.img(figure_png(recovery_figure(recovery)), "parameter recovery"),
        ]
    )


def behaviour_section(run_dir: Path) -> str:
    """Findings and curves of the behavioural analysis."""
    report = _load(run_dir, "behaviour.json", "noetik choices fit or choices analyse --out")
    lines = behaviour_lines(report)
    items = "".join(f"<li>{h.esc(line)}</li>" for line in lines)
    return "\n".join(
        [f"<ul>{items}</ul>", h.img(figure_png(behaviour_figure(report)), "behaviour")]
    )


#: ``(id, title, builder)`` of every section, in report order.
CHOICE_SECTIONS: tuple[tuple[str, str, Callable[[Path], str]], ...] = (
    ("config", "Run configuration", config_section),
    ("comparison", "Model comparison", comparison_section),
    ("explanations", "Explained choices", explanations_section),
    ("recovery", "Parameter recovery", recovery_section),
    ("behaviour", "Behavioural analysis", behaviour_section),
)
#: The section ids, in report order.
CHOICE_SECTION_IDS: tuple[str, ...] = tuple(s[0] for s in CHOICE_SECTIONS)


def _build(section_id: str, title: str, builder: Callable[[Path], str], run: Path) -> h.Section:
    try:
        body = builder(run)
    except Unavailable as exc:
        body = h.unavailable(str(exc))
    except Exception as exc:  # one broken section must not lose the whole report
        body = h.unavailable(f"failed with {type(exc).__name__}: {exc}")
    return h.Section(section_id, title, body)


def write_choices_report(run_dir: Path, out_path: Path | None = None) -> Path:
    """Write the report of choices run folder ``run_dir`` to ``out_path`` (default
    ``run_dir/report.html``, atomically) and return its path."""
    run_dir = Path(run_dir)
    if not is_choices_run(run_dir):
        raise ConfigError(f"{run_dir}: not a choices run folder (no {CONFIG_FILE})")
    config = read_config(run_dir / CONFIG_FILE, "choices run configuration")
    if not isinstance(config, dict):
        raise ConfigError(f"{run_dir / CONFIG_FILE}: damaged choices run configuration")
    sections = [_build(i, title, builder, run_dir) for i, title, builder in CHOICE_SECTIONS]
    models = [*config.get("models", []), *(config.get("neural") or {})]
    subtitle = f"models of {config.get('task', '?')} choices ({', '.join(models)}) in {run_dir}"
    out = Path(out_path) if out_path is not None else run_dir / "report.html"
    write_text(out, h.page(f"Noetik choices report: {run_dir.name}", subtitle, sections))
    return out
