"""Report sections about the run itself: its configuration, training curves, the leaderboard
and the fidelity of the simulator behind it."""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from noetik.data.dataset import load_kuairand
from noetik.reports import html as h
from noetik.reports.context import ReportInputs, Unavailable, find_input, read_json
from noetik.reports.plots import line_panels

__all__ = [
    "config_section",
    "flatten",
    "leaderboard_section",
    "resolve_leaderboard",
    "simulator_section",
    "training_section",
]

#: Held-out random-log users scored at most by the simulator-fidelity section.
MAX_VALIDATION_USERS = 300

#: What the ``real_exposure`` table's metrics mean (printed under it).
REAL_EXPOSURE_NOTE = (
    "Each run's policy π over the random-exposure pool, weighted w = π(shown video) × pool "
    "size: <signal>_is is unbiased, <signal>_snips self-normalised, <signal>_logged the "
    "uniform logging policy's own rate; intervals resample users. ess = (Σw)² / Σw² is the "
    "effective number of rows behind the estimates (small: wide intervals, little evidence)."
)


def flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """``(dotted key, leaf value)`` pairs of nested dicts; lists as compact JSON and floats
    as their exact ``repr`` (configuration values are shown unrounded)."""
    if isinstance(value, dict):
        out: list[tuple[str, Any]] = []
        for key in sorted(value, key=str):
            out += flatten(value[key], f"{prefix}.{key}" if prefix else str(key))
        return out
    if isinstance(value, list | tuple):
        return [(prefix, json.dumps(value, default=str))]
    return [(prefix, repr(value) if isinstance(value, float) else value)]


def config_section(inputs: ReportInputs) -> str:
    """The task (what the agent was trained to maximise, on which data), ``run.json`` and the
    agent's ``config.json`` as key/value tables."""
    config_path = inputs.run_dir / "config.json"
    if config_path.is_file():
        config = h.table(["config.json", "value"], flatten(read_json(config_path)))
    else:
        config = h.unavailable(f"no {config_path}")
    task = h.table(["task.json", "value"], flatten(inputs.task.to_json()))
    run = h.table(["run.json", "value"], flatten(inputs.meta))
    reward = h.esc(inputs.task.reward.describe())
    head = f"<p>The agent was trained to maximise <b>{reward}</b>.</p>"
    return f'{head}<div class="grid"><div>{task}{run}</div><div>{config}</div></div>'


def training_section(inputs: ReportInputs) -> str:
    """Every numeric column of ``metrics.csv`` against ``step``, as small multiples."""
    path = inputs.run_dir / "metrics.csv"
    if not path.is_file():
        raise Unavailable(f"no {path} (the trainer writes it while training)")
    frame = pl.read_csv(path, infer_schema_length=None)
    if frame.height == 0 or "step" not in frame.columns:
        raise Unavailable(f"{path} has no rows or no 'step' column")
    numeric = [c for c, t in frame.schema.items() if t.is_numeric() and c != "step"]
    if not numeric:
        raise Unavailable(f"{path} has no numeric column besides 'step'")
    x = frame["step"].cast(pl.Float64).to_numpy()
    series = {c: frame[c].cast(pl.Float64).to_numpy() for c in numeric}
    last = [(c, float(v[-1]), float(np.nanmin(v)), float(np.nanmax(v))) for c, v in series.items()]
    return "\n".join(
        [
            h.para(f"{frame.height:,} logged points up to step {int(x[-1]):,} ({path.name})."),
            h.img(line_panels(x, series, xlabel="step"), "training curves"),
            h.details(
                "last, min and max of each column", h.table(["column", "last", "min", "max"], last)
            ),
        ]
    )


def resolve_leaderboard(inputs: ReportInputs) -> Path:
    """``leaderboard.json``: the one given (file or folder), else the first found in the run
    folder, beside it (its parent) or one level up (``noetik evaluate OUT/runs/* --out OUT``)."""
    missing = (
        "no leaderboard.json in or beside the run folder; run noetik evaluate "
        f"{inputs.run_dir} --out {inputs.run_dir}"
    )
    return find_input(inputs.leaderboard, inputs.run_dir, ("leaderboard.json",), missing)


def _same_run(name: str, run_dir: Path) -> bool:
    try:
        return Path(name).resolve() == run_dir.resolve()
    except OSError:
        return False


def leaderboard_section(inputs: ReportInputs) -> str:
    """One table per lens: a row per metric, a column per run, cells ``mean [low, high]``."""
    path = resolve_leaderboard(inputs)
    entries = read_json(path)
    if not isinstance(entries, list) or not entries:
        raise Unavailable(f"{path} holds no leaderboard entries")
    names = [f"{Path(str(e.get('run', '?'))).name} ({e.get('algo', '?')})" for e in entries]
    current = [_same_run(str(e.get("run", "")), inputs.run_dir) for e in entries]
    header = [n + (" [this run]" if c else "") for n, c in zip(names, current, strict=True)]
    parts = [
        h.para(f"{len(entries)} entries from {path}; each cell is the mean with its 95 % interval.")
    ]
    lenses = {
        "online": "Online (simulated sessions)",
        "ope": "Off-policy estimates (test split)",
        "random_log": "Random-exposure log",
        "real_exposure": "Real exposure: importance-weighted one-step rates on the random log",
    }
    for lens, title in lenses.items():
        metrics: list[str] = []
        for e in entries:
            metrics += [m for m in (e.get(lens) or {}) if m not in metrics]
        if not metrics:
            continue
        rows = [[m, *(h.interval((e.get(lens) or {}).get(m)) for e in entries)] for m in metrics]
        parts += [f"<h3>{h.esc(title)}</h3>", h.table(["metric", *header], rows)]
        if lens == "real_exposure":
            parts.append(h.note(REAL_EXPOSURE_NOTE))
    if not current.count(True):
        parts.append(h.note(f"{inputs.run_dir} itself is not among these entries."))
    return "\n".join(parts)


def _validation_table(result: dict[str, Any]) -> str:
    """Signals x metrics: the simulator, its baselines and the observed value."""
    first = next(iter(result.values()))
    names = ["simulator", *first.get("baselines", {})]
    rows = []
    for signal, entry in result.items():
        models = [entry, *entry.get("baselines", {}).values()]
        metrics = ("auc", "mean_pred") if "auc" in entry else ("rmse", "corr", "mean_pred")
        for metric in metrics:
            observed = entry.get("mean_true") if metric == "mean_pred" else None
            rows.append([signal, metric, *(m.get(metric) for m in models), observed])
    return h.table(["signal", "metric", *names, "observed"], rows)


def _validate(sim_dir: Path, meta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Score the simulator on its held-out random-log users (at most MAX_VALIDATION_USERS)."""
    from noetik.simulators.kuairand import load_simulator
    from noetik.simulators.kuairand.examples import write_random_rows
    from noetik.simulators.kuairand.validate import validate

    users = np.asarray(meta.get("heldout_random_users") or [], dtype=np.int64)
    if not len(users):
        raise Unavailable(
            "the simulator holds out no random-log user (noetik sim fit --random-users 0.7)"
        )
    users = users[:MAX_VALIDATION_USERS]
    sim = load_simulator(sim_dir)
    ds = load_kuairand(sim.meta["data_dir"], cache_dir=sim.meta.get("cache_dir"))
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "heldout_random.csv"
        n_rows = write_random_rows(ds, users, log)
        result = validate(sim, log)
    return f"{n_rows:,} random-exposure rows of {len(users):,} held-out users", result


def simulator_section(inputs: ReportInputs) -> str:
    """Provenance and training loss of the simulator, and its held-out validation scores."""
    sim_dir = inputs.simulator_dir()
    if sim_dir is None:
        raise Unavailable(
            "no simulator folder: the run names no sim_dir; pass --sim SIM_DIR "
            "(written by noetik sim fit)"
        )
    payload = read_json(sim_dir / "simulator.json")
    meta: dict[str, Any] = payload.get("meta", {})
    facts = [
        ("folder", str(sim_dir)),
        ("data", meta.get("data_dir")),
        ("release", meta.get("release")),
        ("standard-log rows", meta.get("n_standard_rows")),
        ("random-exposure rows", meta.get("n_random_rows")),
        ("random-log users trained on", len(meta.get("train_random_users") or [])),
        ("random-log users held out", len(meta.get("heldout_random_users") or [])),
    ]
    config = flatten(payload.get("config", {}), "config")
    parts = [h.table(["simulator", "value"], facts + config)]
    losses = {
        f"{k} loss": np.asarray(v, dtype=np.float64)
        for k, v in (meta.get("losses") or {}).items()
        if v
    }
    if losses:
        epochs = np.arange(1, max(len(v) for v in losses.values()) + 1, dtype=np.float64)
        padded = {
            k: np.pad(v, (0, len(epochs) - len(v)), constant_values=math.nan)
            for k, v in losses.items()
        }
        parts.append(h.img(line_panels(epochs, padded, xlabel="epoch"), "simulator loss"))
    parts.append("<h3>Validation on held-out random exposure</h3>")
    try:
        what, result = _validate(sim_dir, meta)
    except Unavailable as exc:
        parts.append(h.unavailable(str(exc)))
    else:
        parts += [
            h.para(
                f"Scored on {what} (AUC for binary signals, RMSE and correlation for "
                "the watch ratio; baselines: per-video popularity and the same network "
                "trained without the debiasing)."
            ),
            _validation_table(result),
        ]
    return "\n".join(parts)
