"""Run a sweep: its trials one after another in this process, or as Ray Tune trials.

Both paths call the same :func:`~noetik.analysis.sweeps.trial.attempt_trial` on the same
trial specs, so a trial's metrics do not depend on where it ran. Without ``ray`` nothing here
imports Ray. With it, :func:`~noetik.utils.ray_engine.ray_session` connects to a Ray instance
started on this machine's cores (or to the cluster at ``ray_address``) and a Tune ``Tuner``
runs one trial per grid point with one CPU each (``tune.with_resources``); Tune keeps its own
files in ``<sweep>/tune`` and its console output off, the progress shown is noetik's (trials
done). Trials that finished in the folder before are reused without running (nor starting
Ray). A trial that fails (or whose worker dies after Ray's retries) is reported by name in
one line once every other trial has finished; the finished ones are kept and a rerun reuses
them.

The sweep folder holds ``sweep.json`` (the config, paths absolute), ``trials/<name>/`` (each
trial's run folder) with ``trials/<name>.json`` (its record), ``sim/`` (the simulator, when
the config names none) and the results (:data:`~noetik.analysis.sweeps.results.RESULT_FILES`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.progress import Progress, TaskID

from noetik.analysis.sweeps.config import SweepConfig
from noetik.analysis.sweeps.results import write_results
from noetik.analysis.sweeps.trial import TrialSpec, attempt_trial, finished_outcome, plan_trials
from noetik.errors import ConfigError, NoetikError
from noetik.utils.io import write_json
from noetik.utils.progress import maybe_progress

__all__ = ["SweepFailed", "SweepResult", "run_sweep", "tune_trial"]

#: The sweep's copy of its config.
CONFIG_FILE = "sweep.json"
#: What the progress task of the trials is called.
DESCRIPTION = "Sweep trials"


class SweepFailed(NoetikError):
    """Trials of a sweep failed: the message names each and why, in one line."""


@dataclass(frozen=True)
class SweepResult:
    """What :func:`run_sweep` did."""

    trials: list[TrialSpec]
    """The trials, in the config's order."""
    outcomes: list[dict[str, Any]]
    """Each trial's outcome: ``{"trial", "metrics", "train_s", "eval_s"}``."""
    files: list[Path]
    """The result files written."""


def _simulator(config: SweepConfig, sweep: Path) -> tuple[str, bool]:
    """The simulator folder of the sweep and whether it must be fitted first."""
    if config.simulator is not None:
        if not (Path(config.simulator) / "simulator.json").is_file():
            raise ConfigError(f"field 'simulator': no fitted simulator in {config.simulator}")
        return config.simulator, False
    sim = sweep / "sim"
    return str(sim), not (sim / "simulator.json").is_file()


def _fit_simulator(data: str, sim: str) -> None:
    """Fit the default simulator on ``data`` into ``sim`` (seed 0)."""
    from noetik.data.dataset import load_kuairand
    from noetik.simulators.kuairand import ResponseModelConfig, fit_response_model

    fit_response_model(load_kuairand(data), ResponseModelConfig(seed=0)).save(Path(sim))


def run_sweep(
    config: SweepConfig,
    sweep: Path,
    *,
    ray: bool = False,
    ray_address: str | None = None,
    num_cpus: int | None = None,
    progress: Progress | None = None,
    where: str = "sweep config",
) -> SweepResult:
    """Run every trial of ``config`` into folder ``sweep`` and write its results.

    ``ray`` (or a ``ray_address``) runs the trials as Ray Tune trials: on a Ray instance
    started with ``num_cpus`` CPUs (None: this machine's cores), or on the cluster at
    ``ray_address``. ``progress`` shows the trials done; ``where`` names the config in
    errors. A bad config raises :class:`ConfigError` before anything is written; failed
    trials raise :class:`SweepFailed` (one line) after the others finished, and no results
    are written then.
    """
    config = config.resolved(Path.cwd())
    sweep = Path(sweep).resolve()
    if not Path(config.data).is_dir():
        raise ConfigError(f"{where}: field 'data': no such folder {config.data}")
    simulator, fit = _simulator(config, sweep)
    trials = plan_trials(config, simulator, where)
    write_json(sweep / CONFIG_FILE, config.to_json())
    if fit:
        _fit_simulator(config.data, simulator)
    done = {t.name: o for t in trials if (o := finished_outcome(t, sweep)) is not None}
    pending = [t for t in trials if t.name not in done]
    with maybe_progress(progress) as shown:
        task = shown.add_task(DESCRIPTION, total=len(trials), completed=len(done))
        if pending and (ray or ray_address is not None):  # no Ray start for reused trials
            ran = _on_ray(pending, sweep, shown, task, address=ray_address, num_cpus=num_cpus)
        else:
            ran = []
            for spec in pending:
                ran.append(attempt_trial(spec, sweep))
                shown.advance(task)
    done.update((o["trial"], o) for o in ran)
    outcomes = [done[t.name] for t in trials]
    failed = [o for o in outcomes if "error" in o]
    if failed:
        lines = [f"trial '{o['trial']}' failed: {o['error']}" for o in failed]
        raise SweepFailed(
            "; ".join(lines) + f" ({len(failed)} of {len(trials)} trials failed; the "
            f"others are kept in {sweep} and reused when the sweep is run again)"
        )
    title = f"Engagement vs interpretability: {config.algo}, weight of {config.term}"
    files = write_results(sweep, trials, outcomes, title)
    return SweepResult(trials, outcomes, files)


def tune_trial(param: dict[str, Any]) -> None:
    """The function of a Ray Tune trial: :func:`attempt_trial` of ``param["spec"]`` (a
    :class:`TrialSpec` as JSON) in sweep folder ``param["sweep"]``, its outcome reported
    once, as JSON text under ``"outcome"``."""
    from ray import tune

    outcome = attempt_trial(TrialSpec.from_json(param["spec"]), Path(param["sweep"]))
    tune.report({"outcome": json.dumps(outcome)})


def trial_name(trial: Any) -> str:
    """The name of a Tune trial (and of its folder under ``<sweep>/tune``): its spec's."""
    return str(trial.config["spec"]["name"])


def _on_ray(
    trials: list[TrialSpec],
    sweep: Path,
    progress: Progress,
    task: TaskID,
    *,
    address: str | None,
    num_cpus: int | None,
) -> list[dict[str, Any]]:
    """The outcomes of ``trials`` run as Ray Tune trials (in ``trials`` order)."""
    from noetik.utils.ray_engine import failure_reason, ray_session

    with ray_session(address, num_cpus=num_cpus) as engine, _quiet_tune():
        from ray import tune

        tuner = tune.Tuner(
            tune.with_resources(tune_trial, {"cpu": 1}),
            param_space={
                "spec": tune.grid_search([t.to_json() for t in trials]),
                "sweep": str(sweep),
            },
            tune_config=tune.TuneConfig(
                trial_name_creator=trial_name,
                trial_dirname_creator=trial_name,
                reuse_actors=True,  # a worker's imports and loaded data serve its next trial
            ),
            run_config=tune.RunConfig(
                name="tune",
                storage_path=str(sweep),
                verbose=0,
                callbacks=[_progress_callback(tune, progress, task)],
                failure_config=tune.FailureConfig(max_failures=engine.max_retries),
            ),
        )
        grid = tuner.fit()
        outcomes: dict[str, dict[str, Any]] = {}
        for result in grid:
            name = result.config["spec"]["name"]
            if result.error is not None:
                reason = failure_reason(result.error, engine.max_retries)
                outcomes[name] = {"trial": name, "error": reason}
            else:
                outcomes[name] = json.loads(result.metrics["outcome"])
    return [outcomes[t.name] for t in trials]


def _progress_callback(tune: Any, progress: Progress, task: TaskID) -> Any:
    """A Tune callback advancing ``task`` of ``progress`` as each trial ends (Tune pickles
    its callbacks with the experiment's state: the display stays out of that copy, and the
    class refers to nothing of this call's)."""

    class TrialsDone(tune.Callback):  # type: ignore[misc,name-defined]
        def __init__(self, progress: Progress | None, task: TaskID) -> None:
            self.progress, self.task = progress, task

        def __getstate__(self) -> dict[str, Any]:
            return {"task": self.task}

        def __setstate__(self, state: dict[str, Any]) -> None:
            self.progress, self.task = None, state["task"]

        def on_trial_complete(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
            if self.progress is not None:
                self.progress.advance(self.task)

        def on_trial_error(self, iteration: int, trials: Any, trial: Any, **info: Any) -> None:
            if self.progress is not None:
                self.progress.advance(self.task)

    return TrialsDone(progress, task)


@contextlib.contextmanager
def _quiet_tune() -> Iterator[None]:
    """Keep Tune's own console output (status tables, result lines) off for the block."""
    import os

    before = os.environ.get("RAY_AIR_NEW_OUTPUT")
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("RAY_AIR_NEW_OUTPUT", None)
        else:
            os.environ["RAY_AIR_NEW_OUTPUT"] = before
