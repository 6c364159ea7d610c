"""One trial of a sweep: train one agent config into its run folder, then measure it.

:func:`plan_trials` expands a :class:`~noetik.analysis.sweeps.config.SweepConfig` into its
trials (every agent config built and checked before anything runs). :func:`run_trial` is the
plain function that runs one, the same wherever it runs (in this process, or in a Ray Tune
trial): it trains into ``<sweep>/trials/<name>/`` (a complete run folder) with one torch
thread, measures the agent and records the trial in ``<sweep>/trials/<name>.json``. A
recorded trial of the same spec is reused; a record of another spec is refused.
:func:`attempt_trial` wraps it so that a failure becomes one line (its traceback goes to
``<sweep>/trials/<name>.error.txt``).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from noetik.agents.core.base import Agent, AgentConfig
from noetik.agents.core.runs import RUN_FILE, train_run
from noetik.agents.core.task import DataSource, TaskConfig
from noetik.agents.fast.threads import intra_op_threads
from noetik.analysis.sweeps.config import MeasureConfig, SweepConfig
from noetik.analysis.sweeps.measure import measure_agent
from noetik.errors import ConfigError, NoetikError, TrainingInterrupted
from noetik.utils.config import from_json
from noetik.utils.io import read_json, write_json, write_text

__all__ = [
    "TRIALS",
    "TrialSpec",
    "attempt_trial",
    "finished_outcome",
    "plan_trials",
    "run_trial",
]

#: The folder of a sweep that holds its trials' run folders and records.
TRIALS = "trials"


@dataclass(frozen=True)
class TrialSpec:
    """Everything one trial needs (JSON-ready: it travels to Ray Tune trials as a dict)."""

    name: str
    """The trial's name: its run folder is ``trials/<name>`` (term-weight, grid values, seed)."""
    algo: str
    """Registered algorithm."""
    agent: dict[str, Any]
    """The complete agent config (JSON form), seed and interpretability weight included."""
    seed: int
    """The agent's seed."""
    term: str
    """The interpretability term swept."""
    weight: float
    """Its weight in this trial."""
    params: dict[str, Any]
    """The grid's values of this trial (agent field -> value)."""
    steps: int
    """Gradient updates."""
    data: str
    """KuaiRand folder (absolute)."""
    simulator: str
    """Simulator folder (absolute) of the engagement measurement."""
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    """How the trained agent is measured."""

    def to_json(self) -> dict[str, Any]:
        """The JSON form (:meth:`from_json` reads it back)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))  # type: ignore[no-any-return]

    @classmethod
    def from_json(cls, data: Any) -> TrialSpec:
        """The spec of a JSON form written by :meth:`to_json`."""
        return from_json(cls, data, "trial spec")

    def agent_config(self) -> AgentConfig:
        """The agent config of the trial."""
        return agent_config(self.algo, self.agent, f"trial '{self.name}'")


def agent_config(algo: str, fields: dict[str, Any], where: str) -> AgentConfig:
    """The config of registered algorithm ``algo`` built from ``fields`` (one-line
    :class:`ConfigError` naming ``where`` for an unknown algorithm or a bad field)."""
    from noetik.agents import ALGOS

    if algo not in ALGOS:
        raise ConfigError(f"{where}: unknown algo '{algo}'; choose one of {', '.join(ALGOS)}")
    config: AgentConfig = ALGOS[algo].from_dict(fields, where=where)
    return config


def _set(fields: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A copy of nested ``fields`` with ``dotted`` (``a.b``) set to ``value``."""
    head, _, rest = dotted.partition(".")
    out = dict(fields)
    if not rest:
        out[head] = value
        return out
    inner = out.get(head, {})
    if not isinstance(inner, dict):
        raise ConfigError(f"grid key '{dotted}': '{head}' is not a nested config")
    out[head] = _set(inner, rest, value)
    return out


def _label(value: Any) -> str:
    """``value`` as a folder-name part (``:g`` numbers, other characters than letters,
    digits, ``.`` and ``-`` as ``-``)."""
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return re.sub(r"[^A-Za-z0-9.\-]+", "-", text).strip("-") or "x"


def plan_trials(
    config: SweepConfig, simulator: str, where: str = "sweep config"
) -> list[TrialSpec]:
    """Every trial of ``config`` (grid x weights x seeds, in that nesting order), each agent
    config built and checked; ``simulator`` is the (absolute) simulator folder and ``where``
    names the config in errors."""
    keys = list(config.grid)
    trials: list[TrialSpec] = []
    for values in itertools.product(*(config.grid[k] for k in keys)):
        params = dict(zip(keys, values, strict=True))
        for weight in config.weights:
            for seed in config.seeds:
                fields = dict(config.agent)
                for key, value in params.items():
                    fields = _set(fields, key, value)
                fields = _set(fields, f"interpretability.{config.term}", weight)
                fields["seed"] = seed
                parts = [f"{config.term}-{weight:g}"]
                parts += [f"{k.rsplit('.', 1)[-1]}-{_label(v)}" for k, v in params.items()]
                name = "_".join([*parts, f"seed-{seed}"])
                agent = agent_config(config.algo, fields, f"{where}: trial '{name}'")
                trials.append(
                    TrialSpec(
                        name=name,
                        algo=config.algo,
                        agent=agent.to_dict(),
                        seed=seed,
                        term=config.term,
                        weight=weight,
                        params=json.loads(json.dumps(params)),
                        steps=config.steps,
                        data=config.data,
                        simulator=simulator,
                        measure=config.measure,
                    )
                )
    names = [t.name for t in trials]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: two trials would share a name; grid values must differ")
    return trials


def _record_path(sweep: Path, name: str) -> Path:
    """Where trial ``name`` of the sweep in ``sweep`` is recorded (its spec and outcome)."""
    return sweep / TRIALS / f"{name}.json"


def _error_path(sweep: Path, name: str) -> Path:
    """Where the traceback of a failed attempt of trial ``name`` is written."""
    return sweep / TRIALS / f"{name}.error.txt"


def _trained(run: Path, steps: int) -> bool:
    """Whether ``run`` holds a finished training of ``steps`` updates (the trial's record,
    written before it started, says which config)."""
    if not (run / RUN_FILE).is_file():
        return False
    meta = read_json(run / RUN_FILE, "run file")
    return isinstance(meta, dict) and meta.get("status") == "done" and meta.get("steps") == steps


def _recorded(spec: TrialSpec, sweep: Path) -> tuple[Any, dict[str, Any] | None]:
    """The record of trial ``spec`` in ``sweep`` (None when absent) and its outcome (None
    when unfinished); a record of another spec of this name raises :class:`ConfigError`."""
    path = _record_path(sweep, spec.name)
    if not path.is_file():
        return None, None
    record = read_json(path, "trial record")
    if not isinstance(record, dict) or record.get("spec") != spec.to_json():
        raise ConfigError(
            f"{path} records another trial of this name (the sweep config changed); "
            "use another sweep folder"
        )
    outcome = record.get("outcome")
    return record, None if outcome is None else dict(outcome)


def finished_outcome(spec: TrialSpec, sweep: Path) -> dict[str, Any] | None:
    """The recorded outcome of trial ``spec`` when it finished in ``sweep`` earlier (None
    when it did not, or when its record is of another spec: running it says why)."""
    try:
        return _recorded(spec, sweep)[1]
    except ConfigError:
        return None


def run_trial(spec: TrialSpec, sweep: Path) -> dict[str, Any]:
    """Run trial ``spec`` of the sweep in folder ``sweep`` (or reuse its record): train into
    its run folder (unless it holds this training already), measure, record. Returns the
    outcome ``{"trial", "metrics", "train_s", "eval_s"}`` (JSON values; the seconds are None
    for a part reused). Runs with one torch intra-op thread."""
    record, reused = _recorded(spec, sweep)
    if reused is not None:
        return reused
    record_path = _record_path(sweep, spec.name)
    run = sweep / TRIALS / spec.name
    if record is None and run.exists() and any(run.iterdir()):
        raise ConfigError(f"{run} holds files but no trial record; use another sweep folder")
    write_json(record_path, {"spec": spec.to_json(), "outcome": None})
    with intra_op_threads(1):
        train_s: float | None = None
        if not _trained(run, spec.steps):
            start = time.perf_counter()
            task = TaskConfig(DataSource(spec.data))
            train_run(spec.agent_config(), task, run, spec.steps, overwrite=run.exists())
            train_s = time.perf_counter() - start
        start = time.perf_counter()
        agent = Agent.load(run, device="cpu")
        metrics = measure_agent(agent, spec.simulator, spec.data, spec.measure)
        eval_s = time.perf_counter() - start
    taken = {"trial": spec.name, "metrics": metrics, "train_s": train_s, "eval_s": eval_s}
    outcome: dict[str, Any] = json.loads(json.dumps(taken))  # its form after a round trip
    write_json(record_path, {"spec": spec.to_json(), "outcome": outcome})
    _error_path(sweep, spec.name).unlink(missing_ok=True)  # of an earlier, failed attempt
    return outcome


def attempt_trial(spec: TrialSpec, sweep: Path) -> dict[str, Any]:
    """:func:`run_trial`, or ``{"trial", "error"}`` when it fails: ``error`` is one line (a
    Noetik error's message, else the exception's type and first line and where its
    traceback was written). An interrupted training still stops the sweep."""
    try:
        return run_trial(spec, sweep)
    except TrainingInterrupted:
        raise
    except NoetikError as exc:
        return {"trial": spec.name, "error": str(exc)}
    except Exception as exc:  # a bug or a resource problem: one line, the traceback on disk
        path = _error_path(sweep, spec.name)
        write_text(path, traceback.format_exc())
        lines = [line for line in str(exc).splitlines() if line.strip()]
        first = lines[0].strip() if lines else "(no message)"
        return {"trial": spec.name, "error": f"{type(exc).__name__}: {first} (traceback: {path})"}
