"""Where a run is evaluated online: the environment of its own task, never one of other data.

* An **online** run is evaluated in the environment it learned in (its task's id and options,
  the task's reward included); evaluation options (``--env-option``, e.g. the leave model or
  a larger population) are applied on top, except the reward, which stays the task's, and a
  simulator or dataset other than its own, which is refused.
* An **offline** run is evaluated in ``noetik/KuaiRand-v0`` built on a simulator fitted on
  the run's own data: the one given for the evaluation (``sim_dir``), else the one recorded
  in its task (``noetik train --sim``), else, for the built-in data only, the default
  simulator. A simulator fitted on other data is refused, and so is a run on real data with
  no simulator: the message says how to fit one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from noetik.agents.core.task import TaskConfig
from noetik.data.builtin import builtin_dataset_dir
from noetik.errors import ConfigError
from noetik.simulators.kuairand.store import read_meta

__all__ = ["KUAIRAND_ENV", "OnlineEnv", "online_env", "task_data"]

KUAIRAND_ENV = "noetik/KuaiRand-v0"


@dataclass(frozen=True)
class OnlineEnv:
    """The environment a run is evaluated in."""

    env_id: str
    """Gymnasium id."""
    options: dict[str, Any]
    """Its options (``gymnasium.make_vec`` keyword arguments)."""

    def describe(self) -> str:
        """One line: the id and the options that define the users and the reward."""
        shown = {k: v for k, v in self.options.items() if k in ("sim_dir", "data_dir")}
        reward = self.options.get("reward")
        text = self.env_id + "".join(f" {k}={v}" for k, v in shown.items())
        if reward is not None:
            text += " reward " + " + ".join(f"{w:g}*{s}" for s, w in reward)
        return text


def _absolute(path: Any) -> str | None:
    return None if not path else str(Path(str(path)).expanduser().resolve())


def task_data(task: TaskConfig) -> tuple[str | None, str | None]:
    """``(dataset folder, cache folder)`` a run learned from, absolute (None: the built-in
    data, the default cache). An online run's is its environment's ``data_dir``, else its
    simulator's dataset."""
    data, cache = task.data.folder, task.data.cache_dir
    if task.env is not None:
        options = task.env.options
        data = options.get("data_dir")
        if not data and options.get("sim_dir"):
            meta = read_meta(Path(str(options["sim_dir"])))
            data, cache = meta.get("data_dir"), meta.get("cache_dir")
    return _absolute(data), _absolute(cache)


def _same_folder(a: str | None, b: str | None) -> bool:
    """Whether two dataset folders are the same (None: the built-in dataset)."""
    return _absolute(a or builtin_dataset_dir()) == _absolute(b or builtin_dataset_dir())


def online_env(
    task: TaskConfig, overrides: dict[str, Any] | None = None, run: str = "the run"
) -> OnlineEnv:
    """The environment of the online lens for a run of ``task`` (see the module docs);
    ``overrides`` are the evaluation's own options. Raises :class:`ConfigError` when the run
    cannot be evaluated online faithfully."""
    extra = dict(overrides or {})
    if "reward" in extra:
        raise ConfigError(
            "--env-option reward: each run is evaluated with its own task's reward "
            "(set it when training with --reward)"
        )
    if task.env is not None:
        own = task.env_options()
        for key in ("sim_dir", "data_dir"):
            given = extra.pop(key, None)
            if given is not None and _absolute(given) != _absolute(own.get(key)):
                raise ConfigError(
                    f"{run} learned in {task.env.id} with {key}={own.get(key)}; "
                    f"--env-option {key}={given} would evaluate it in another environment"
                )
        return OnlineEnv(task.env.id, {**own, **extra})
    sim_dir = extra.pop("sim_dir", None) or task.simulator
    folder = task.data.folder
    if sim_dir is None and folder is not None:
        raise ConfigError(
            f"{run} learned from {folder}; the online lens needs a simulator fitted on it: "
            f"noetik sim fit {folder} --out SIM, then evaluate with --env-option sim_dir=SIM "
            "(or train with --sim SIM); use --no-online to skip the lens"
        )
    options: dict[str, Any] = {"reward": task.reward.weights, **extra}
    if sim_dir is not None:
        fitted_on = read_meta(Path(str(sim_dir))).get("data_dir")
        if not _same_folder(fitted_on, folder):
            raise ConfigError(
                f"{run} learned from {folder or 'the built-in data'}, but simulator {sim_dir} "
                f"was fitted on {fitted_on}; give a simulator fitted on the run's data"
            )
        options["sim_dir"] = _absolute(sim_dir)
    if folder is not None:
        options.setdefault("data_dir", folder)
    return OnlineEnv(KUAIRAND_ENV, options)
