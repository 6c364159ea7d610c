"""The leaderboard: runs compared across four lenses, each metric as ``{"mean", "low", "high"}``.

* ``online``: sessions in the simulator of the run's own task
  (:func:`~noetik.evaluation.online.sessions.evaluate_online` in
  :func:`~noetik.evaluation.task_env.online_env`);
* ``ope``: off-policy estimates on the held-out (test) split of an offline run's logged data
  (:func:`~noetik.evaluation.ope.logged.evaluate_logged`);
* ``random_log``: ranking metrics on a random-exposure log
  (:func:`~noetik.evaluation.random_log.evaluate_random_log`), with the popularity and random
  scorers as reference rows (``algo`` ``reference``);
* ``real_exposure``: unbiased importance-sampling estimates of the one-step click, long-view
  and reward rates of the agent's policy over the random-exposure pool, on the same log
  (:func:`~noetik.evaluation.real_exposure.evaluate_real_exposure`: π as the ``ope`` lens
  builds it, over the videos of the dataset's whole random log); the reference rows hold it
  for the uniform policy (``reference:random``: the logging policy itself, w ≡ 1) and for
  π ∝ 1 + popularity (``reference:popularity``: softmax of log(1 + training exposures)). A
  run whose scores are not policy logits gets a note (its π is a softmax of other scores), so
  does one whose effective sample size is below ``MIN_RELIABLE_ESS`` (unreliable intervals).

Written as JSON (one entry per run, keyed by lens) and as CSV (one row per run, lens and
metric). A lens that does not apply to a run (e.g. ``ope`` for a run trained in a simulator) is
an empty object; a lens refused for a run (no simulator fitted on its data) is an empty object
with the reason in the entry's ``notes``, which also say when the ``ope`` lens evaluated a
subsample of the test episodes (catalogue scale). Each entry names its task (data and reward)
and the environment of its online lens, so runs of different tasks are never compared silently.
"""

from __future__ import annotations

import contextlib
import csv
import gc
import io
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.progress import Progress

from noetik.agents.core.base import Agent
from noetik.agents.core.runs import load_run, task_transitions
from noetik.agents.core.task import TaskConfig
from noetik.data.dataset import load_kuairand
from noetik.data.transitions import build_transitions
from noetik.errors import ConfigError
from noetik.evaluation.online.sessions import USER_BLOCK, evaluate_online
from noetik.evaluation.task_env import online_env, task_data
from noetik.simulators.kuairand.world import release_worlds
from noetik.utils.io import write_json, write_text
from noetik.utils.shards import ShardEngine

Lens = dict[str, dict[str, float]]
#: ``(dataset folder, cache folder)`` as absolute paths (None: built-in data, default cache).
DataKey = tuple[str | None, str | None]
LENSES = ("online", "ope", "random_log", "real_exposure")


@dataclass(frozen=True)
class LeaderboardConfig:
    """What ``noetik evaluate`` measures for each run."""

    online: bool = True
    """Run the online lens, each run in the simulator of its own task (see
    :mod:`noetik.evaluation.task_env`)."""
    env_kwargs: tuple[tuple[str, Any], ...] = ()
    """Evaluation options applied on top of each run's environment (e.g. ``leave_model``, or
    ``sim_dir``: the simulator fitted on the offline runs' data)."""
    n_users: int = 1_000
    """Simulated users of the online lens (one session each)."""
    block_users: int = USER_BLOCK
    """Users simulated together from one seed (the online lens's unit of seeding and of
    sharding: :class:`~noetik.evaluation.online.sessions.UserBlock`)."""
    seed: int = 0
    """Seed of the simulated users and of every bootstrap interval."""
    ope: bool = True
    """Run the OPE lens for runs trained on logged data."""
    random_log: str | None = None
    """Random-exposure CSV of the random-log lens (official schema; its users must be in the
    runs' dataset, e.g. the held-out log of ``noetik sim fit --holdout-log``); None: skipped."""
    real_exposure: bool = True
    """Run the ``real_exposure`` lens on the ``random_log`` CSV (when one is given)."""


class _Datasets:
    """What the lenses read, built once per dataset (keyed by its absolute path) for all the
    runs of one leaderboard: the dataset, its training split (the popularity reference and the
    behaviour model learn from it), the OPE splits with the behaviour model, and the random log
    with the reference scorers' rows."""

    def __init__(self, config: LeaderboardConfig) -> None:
        self.config = config
        self.slots: dict[str | None, dict[str, Any]] = {}
        self.references: list[dict[str, Any]] = []

    def _get(self, data: DataKey, name: str, build: Callable[[], Any]) -> Any:
        slot = self.slots.setdefault(data[0], {})
        if name not in slot:
            slot[name] = build()
        return slot[name]

    def dataset(self, data: DataKey) -> Any:
        """The dataset ``data`` = (folder, cache folder) names."""
        return self._get(data, "ds", lambda: load_kuairand(data[0], cache_dir=data[1]))

    def train(self, data: DataKey) -> Any:
        """Its training split's transitions (the default task's episodes and states)."""
        return self._get(
            data, "train", lambda: build_transitions(self.dataset(data), split="train")
        )

    def ope_lens(self, agent: Agent, task: TaskConfig) -> tuple[Lens, str | None]:
        """The ``ope`` lens on the test split under ``task``'s reward, episodes, split and
        states (the behaviour model fitted once per dataset and task, and kept on disk in
        ``<the dataset's cache folder>/ope``, keyed by a hash of the training split and the
        propensity config, so later ``noetik evaluate`` calls load it instead of refitting),
        and a note when it evaluated a subsample of the test episodes (catalogue scale)."""
        data = task_data(task)
        from noetik.evaluation.ope.logged import (
            LoggedOPEConfig,
            LoggedSplits,
            behaviour_model,
            evaluate_logged,
            evaluated_episodes,
        )

        cache = Path(self.dataset(data).cache.directory) / "ope"
        config = LoggedOPEConfig(seed=self.config.seed, cache_dir=str(cache))

        def build() -> tuple[Any, Any]:
            ds = self.dataset(data)
            train = task_transitions(task, "train", ds)
            mu = behaviour_model(train, config, dataset=ds)  # before the test split: lower peak
            return LoggedSplits(train, task_transitions(task, "test", ds), dataset=ds), mu

        problem = {k: v for k, v in task.to_json().items() if k not in ("env", "simulator")}
        splits, mu = self._get(data, "ope:" + json.dumps(problem, sort_keys=True), build)
        lens = evaluate_logged(agent, splits, config, propensity=mu)
        evaluated, episodes = evaluated_episodes(agent, splits.test, config)
        if evaluated is None or evaluated >= episodes:
            return lens, None
        return lens, (
            f"evaluated a seeded subsample of {evaluated:,} of the {episodes:,} test episodes "
            f"(catalogue scale, {agent.spec.n_actions:,} actions: about "
            f"{config.catalogue_max_steps:,} steps, each scored against every item)"
        )

    def release_ope(self) -> None:
        """Drop every dataset's OPE splits and behaviour model (rebuilt when asked again)."""
        for slot in self.slots.values():
            for name in [n for n in slot if n.startswith("ope:")]:
                del slot[name]

    def random_log_lens(self, agent: Agent, task: TaskConfig) -> Lens:
        """The random-log lens of ``agent`` on the log of the users of ``data``."""
        from noetik.evaluation.random_log import RandomLogConfig, agent_scorer
        from noetik.evaluation.random_log import evaluate_random_log as evaluate

        data = task_data(task)
        log = self._get(data, "random_log", lambda: self._random_log(data))
        return evaluate(agent_scorer(agent), log, RandomLogConfig(seed=self.config.seed))

    def real_exposure_lens(self, agent: Agent, task: TaskConfig) -> tuple[Lens, str | None]:
        """The ``real_exposure`` lens of ``agent`` on the random log of ``data`` under the
        task's reward (the reference rows added once per dataset and reward), and a note when
        the agent's scores are not policy logits or the effective sample size is small."""
        from noetik.evaluation.real_exposure import (
            RealExposureConfig,
            evaluate_real_exposure,
            low_ess_note,
        )

        data = task_data(task)
        log = self._get(data, "random_log", lambda: self._random_log(data))
        pool = self._get(data, "exposure_pool", lambda: self._exposure_pool(data, log))
        config = RealExposureConfig(seed=self.config.seed)
        key = "real_exposure:" + task.reward.describe()
        self._get(data, key, lambda: self._exposure_references(data, log, pool, task))
        lens = evaluate_real_exposure(agent, log, config, pool=pool, reward=task.reward)
        notes = (
            []
            if agent.capabilities.policy_logits
            else [
                f"π = {config.policy} of scores that are not policy logits "
                f"(temperature {config.temperature:g}, epsilon {config.epsilon:g})"
            ]
        )
        notes += [n for n in (low_ess_note(lens),) if n is not None]
        return lens, "; ".join(notes) or None

    def _exposure_pool(self, data: DataKey, log: Any) -> Any:
        from noetik.evaluation.real_exposure import exposure_pool

        return exposure_pool(self.dataset(data), log)

    def _exposure_references(self, data: DataKey, log: Any, pool: Any, task: TaskConfig) -> None:
        """The ``real_exposure`` lens of the uniform and popularity policies, added to the
        reference rows of ``data`` (new rows named after the reward when a second reward
        is evaluated on the same dataset)."""
        from noetik.evaluation.real_exposure import (
            RealExposureConfig,
            constant_scorer,
            evaluate_real_exposure,
            popularity_pool_scorer,
        )

        config = RealExposureConfig(seed=self.config.seed)
        first = not any(k.startswith("real_exposure:") for k in self.slots.get(data[0], {}))
        for name, scorer in (
            ("popularity", popularity_pool_scorer(self.train(data), pool)),
            ("random", constant_scorer()),
        ):
            lens = evaluate_real_exposure(scorer, log, config, pool=pool, reward=task.reward)
            entry = self.slots[data[0]]["references"][name]
            if not first:  # another reward on the same data: rows of their own
                where = f"{entry['run']} [{task.reward.describe()}]"
                entry = _entry(where, "reference")
                self.references.append(entry)
            entry["real_exposure"] = lens

    def _random_log(self, data: DataKey) -> Any:
        """The random log of ``config.random_log`` on ``data``, adding the reference rows."""
        from noetik.evaluation.random_log import (
            RandomLogConfig,
            evaluate_random_log,
            load_random_log,
            popularity_scorer,
            random_scorer,
        )

        log = load_random_log(self.dataset(data), log=self.config.random_log)
        config = RandomLogConfig(seed=self.config.seed)
        several = sum("random_log" in slot for slot in self.slots.values()) > 0
        entries = self.slots.setdefault(data[0], {}).setdefault("references", {})
        for name, scorer in (
            ("popularity", popularity_scorer(self.train(data))),
            ("random", random_scorer(self.config.seed)),
        ):
            lens = evaluate_random_log(scorer, log, config)
            where = f"reference:{name}" + (f"@{data[0]}" if several else "")
            entries[name] = _entry(where, "reference", random_log=lens)
            self.references.append(entries[name])
        return log


def _entry(run: str, algo: str, **lenses: Lens) -> dict[str, Any]:
    return {"run": run, "algo": algo, **{k: lenses.get(k, {}) for k in LENSES}}


def _online_lens(
    agent: Agent,
    task: TaskConfig,
    config: LeaderboardConfig,
    run: str,
    entry: dict[str, Any],
    *,
    engine: ShardEngine | None = None,
    progress: Progress | None = None,
) -> None:
    """Add the online lens to ``entry`` (or the reason it is refused to its notes); its
    users sharded over ``engine`` when given (e.g. Ray)."""
    try:
        env = online_env(task, dict(config.env_kwargs), run)
    except ConfigError as exc:
        entry["notes"]["online"] = str(exc)
        return
    entry["online_env"] = env.describe()
    entry["online"] = evaluate_online(
        agent,
        env.env_id,
        config.n_users,
        env.options,
        config.seed,
        block_users=config.block_users,
        engine=engine,
        progress=progress,
        description=f"{run}: simulated users",
    )
    if agent.config.catalogue.applies(agent.spec.n_actions):
        # the world of a 4.37M-video catalogue holds gigabytes; the OPE lens needs them more
        # than the next run needs the world (measured: 15.6 GB with it kept, in one process)
        release_worlds()
        gc.collect()


def _ope_lens(agent: Agent, task: TaskConfig, datasets: _Datasets, entry: dict[str, Any]) -> None:
    """Add the ope lens to ``entry`` (and to its notes, whether it subsampled episodes)."""
    lens, note = datasets.ope_lens(agent, task)
    entry["ope"] = lens
    if note is not None:
        entry["notes"]["ope"] = note
    if agent.config.catalogue.applies(agent.spec.n_actions):
        # at catalogue scale the splits hold gigabytes that the random-log lens needs more
        # than the next run needs the splits (measured: 13.2 GB with them kept; the
        # behaviour model stays on disk, so a later run refits nothing)
        datasets.release_ope()
        gc.collect()


def _real_exposure_lens(
    agent: Agent, task: TaskConfig, datasets: _Datasets, entry: dict[str, Any]
) -> None:
    """Add the real_exposure lens to ``entry`` (and a note when π is not the agent's own or
    its ESS is small), or the reason it is refused to its notes (e.g. an agent that knows no
    video of the exposure pool)."""
    try:
        lens, note = datasets.real_exposure_lens(agent, task)
    except ConfigError as exc:
        entry["notes"]["real_exposure"] = str(exc)
        return
    entry["real_exposure"] = lens
    if note is not None:
        entry["notes"]["real_exposure"] = note


def evaluate_run(
    run_dir: Path,
    config: LeaderboardConfig,
    datasets: _Datasets | None = None,
    progress: Progress | None = None,
    engine: ShardEngine | None = None,
) -> dict[str, Any]:
    """The leaderboard entry of one run folder: every lens of ``config`` that applies, under
    the run's own task (``datasets``: what several runs share; a fresh one when None;
    ``engine``: runs the online lens's users in shards, e.g. on Ray)."""
    datasets = datasets if datasets is not None else _Datasets(config)
    meta, task, agent = load_run(run_dir)
    name = Path(run_dir).name
    entry = _entry(str(run_dir), meta["algo"])
    entry |= {"task": task.describe(), "notes": {}}
    lenses: list[tuple[str, Callable[[], None]]] = []
    if config.online:
        lenses.append(
            (
                "online",
                lambda: _online_lens(
                    agent, task, config, name, entry, engine=engine, progress=progress
                ),
            )
        )
    # the OPE lens weighs softmax(scores): only agents whose scores are a policy's logits
    if config.ope and not task.online and agent.capabilities.policy_logits:
        lenses.append(("ope", lambda: _ope_lens(agent, task, datasets, entry)))
    if config.random_log is not None:
        lenses.append(
            ("random_log", lambda: entry.update(random_log=datasets.random_log_lens(agent, task)))
        )
    if config.random_log is not None and config.real_exposure:
        lenses.append(("real_exposure", lambda: _real_exposure_lens(agent, task, datasets, entry)))
    for lens, run_lens in lenses:
        with _stage(progress, f"{name}: {lens} lens"):
            run_lens()
    return entry


@contextlib.contextmanager
def _stage(progress: Progress | None, description: str) -> Iterator[None]:
    """A one-step task of ``progress`` around a lens (its start and end show in logs)."""
    if progress is None:
        yield
        return
    task = progress.add_task(description, total=1)
    yield
    progress.update(task, completed=1)


def evaluate_runs(
    run_dirs: Sequence[Path],
    config: LeaderboardConfig,
    track: Callable[[Sequence[Path]], Any] = iter,
    progress: Progress | None = None,
    engine: ShardEngine | None = None,
) -> list[dict[str, Any]]:
    """One entry per run (``track`` wraps the loop, e.g. in a progress bar; ``progress`` also
    shows each lens and the users evaluated), then the reference rows of the random-log lens
    when it runs. ``engine`` shards the online lens's users (``noetik evaluate --ray``)."""
    datasets = _Datasets(config)
    entries = [
        evaluate_run(Path(run), config, datasets, progress, engine) for run in track(run_dirs)
    ]
    return entries + datasets.references


def write_leaderboard(entries: list[dict[str, Any]], out_dir: Path) -> tuple[Path, Path]:
    """``leaderboard.json`` and ``leaderboard.csv`` in ``out_dir`` (atomic writes)."""
    json_path, csv_path = out_dir / "leaderboard.json", out_dir / "leaderboard.csv"
    write_json(json_path, entries)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["run", "algo", "lens", "metric", "mean", "low", "high"])
    for entry in entries:
        for lens in LENSES:
            for metric, value in (entry.get(lens) or {}).items():
                writer.writerow(
                    [
                        entry["run"],
                        entry["algo"],
                        lens,
                        metric,
                        value["mean"],
                        value["low"],
                        value["high"],
                    ]
                )
    write_text(csv_path, buffer.getvalue())
    return json_path, csv_path
