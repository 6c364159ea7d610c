"""The leaderboard: runs compared across three lenses, each metric as ``{"mean", "low", "high"}``.

* ``online``: sessions in a simulator (:func:`~noetik.evaluation.online.sessions.evaluate_online`);
* ``ope``: off-policy estimates on the held-out (test) split of an offline run's logged data
  (:func:`~noetik.evaluation.ope.logged.evaluate_logged`);
* ``random_log``: ranking metrics on a random-exposure log
  (:func:`~noetik.evaluation.random_log.evaluate_random_log`), with the popularity and random
  scorers as reference rows (``algo`` ``reference``).

Written as JSON (one entry per run, keyed by lens) and as CSV (one row per run, lens and
metric). A lens that does not apply to a run (e.g. ``ope`` for a run trained in a simulator) is
an empty object.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from noetik.agents.core.base import Agent
from noetik.agents.core.runs import RunSource, read_run
from noetik.data.dataset import load_kuairand
from noetik.data.transitions import build_transitions
from noetik.evaluation.online.sessions import evaluate_online
from noetik.simulators.kuairand.store import read_meta
from noetik.utils.io import write_json, write_text

Lens = dict[str, dict[str, float]]
#: ``(dataset folder, cache folder)`` as absolute paths (None: built-in data, default cache).
DataKey = tuple[str | None, str | None]
LENSES = ("online", "ope", "random_log")


@dataclass(frozen=True)
class LeaderboardConfig:
    """What ``noetik evaluate`` measures for each run."""

    env_id: str | None = "noetik/KuaiRand-v0"
    """Simulator of the online lens (None: no online lens)."""
    env_kwargs: tuple[tuple[str, Any], ...] = ()
    """Options of the simulator, as ``gymnasium.make_vec`` keyword arguments."""
    n_users: int = 1_000
    """Simulated users of the online lens (one session each)."""
    seed: int = 0
    """Seed of the simulated users and of every bootstrap interval."""
    ope: bool = True
    """Run the OPE lens for runs trained on logged data."""
    random_log: str | None = None
    """Random-exposure CSV of the random-log lens (official schema; its users must be in the
    runs' dataset, e.g. the held-out log of ``noetik sim fit --holdout-log``); None: skipped."""


def _data_dir(source: RunSource) -> DataKey:
    """``(dataset, cache folder)`` a run learned from, as absolute paths (None: the built-in
    data, the default cache). An online run's is its environment's ``data_dir``, else its
    simulator's dataset."""
    data, cache = source.data_dir, source.cache_dir
    env = dict(source.env_kwargs)
    if source.online:
        data = env.get("data_dir")
        if not data and env.get("sim_dir"):
            meta = read_meta(Path(str(env["sim_dir"])))
            data, cache = meta.get("data_dir"), meta.get("cache_dir")
    return _absolute(data), _absolute(cache)


def _absolute(path: Any) -> str | None:
    return None if not path else str(Path(str(path)).resolve())


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
        """Its training split's transitions."""
        return self._get(
            data, "train", lambda: build_transitions(self.dataset(data), split="train")
        )

    def ope_lens(self, agent: Agent, data: DataKey) -> Lens:
        """The ``ope`` lens on the test split (the behaviour model fitted once per dataset)."""
        from noetik.evaluation.ope.logged import (
            LoggedOPEConfig,
            LoggedSplits,
            evaluate_logged,
            propensity_for,
        )

        config = LoggedOPEConfig(seed=self.config.seed)

        def build() -> tuple[Any, Any]:
            test = build_transitions(self.dataset(data), split="test")
            splits = LoggedSplits(self.train(data), test)
            return splits, propensity_for(splits, config)

        splits, mu = self._get(data, "ope", build)
        return evaluate_logged(agent, splits, config, propensity=mu)

    def random_log_lens(self, agent: Agent, data: DataKey) -> Lens:
        """The random-log lens of ``agent`` on the log of the users of ``data``."""
        from noetik.evaluation.random_log import RandomLogConfig, agent_scorer
        from noetik.evaluation.random_log import evaluate_random_log as evaluate

        log = self._get(data, "random_log", lambda: self._random_log(data))
        return evaluate(agent_scorer(agent), log, RandomLogConfig(seed=self.config.seed))

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
        for name, scorer in (
            ("popularity", popularity_scorer(self.train(data))),
            ("random", random_scorer(self.config.seed)),
        ):
            lens = evaluate_random_log(scorer, log, config)
            where = f"reference:{name}" + (f"@{data[0]}" if several else "")
            self.references.append(_entry(where, "reference", random_log=lens))
        return log


def _entry(run: str, algo: str, **lenses: Lens) -> dict[str, Any]:
    return {"run": run, "algo": algo, **{k: lenses.get(k, {}) for k in LENSES}}


def evaluate_run(
    run_dir: Path, config: LeaderboardConfig, datasets: _Datasets | None = None
) -> dict[str, Any]:
    """The leaderboard entry of one run folder: every lens of ``config`` that applies
    (``datasets``: what several runs share; a fresh one when None)."""
    datasets = datasets if datasets is not None else _Datasets(config)
    meta, source = read_run(run_dir)
    agent = Agent.load(run_dir)
    agent.eval()
    lenses: dict[str, Lens] = {}
    if config.env_id is not None:
        kwargs = dict(config.env_kwargs)
        lenses["online"] = evaluate_online(
            agent, config.env_id, config.n_users, kwargs, config.seed
        )
    # the OPE lens weighs softmax(scores): only agents whose scores are a policy's logits
    if config.ope and not source.online and agent.capabilities.policy_logits:
        lenses["ope"] = datasets.ope_lens(agent, _data_dir(source))
    if config.random_log is not None:
        lenses["random_log"] = datasets.random_log_lens(agent, _data_dir(source))
    return _entry(str(run_dir), meta["algo"], **lenses)


def evaluate_runs(
    run_dirs: Sequence[Path],
    config: LeaderboardConfig,
    track: Callable[[Sequence[Path]], Any] = iter,
) -> list[dict[str, Any]]:
    """One entry per run (``track`` wraps the loop, e.g. in a progress bar), then the
    reference rows of the random-log lens when it runs."""
    datasets = _Datasets(config)
    entries = [evaluate_run(Path(run), config, datasets) for run in track(run_dirs)]
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
