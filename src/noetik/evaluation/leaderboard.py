"""The leaderboard: runs compared across three lenses, each metric as ``{"mean", "low", "high"}``.

* ``online``: sessions in a simulator (:func:`~noetik.evaluation.online.evaluate_online`);
* ``ope``: off-policy estimates on the held-out (test) split of an offline run's logged data
  (:func:`~noetik.evaluation.logged_ope.evaluate_logged`);
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
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from noetik.agents.base import Agent
from noetik.agents.runs import RunSource, read_run
from noetik.data.dataset import load_kuairand
from noetik.data.transitions import build_transitions
from noetik.evaluation.online import evaluate_online
from noetik.simulators.kuairand.store import CONFIG_FILE as SIM_CONFIG
from noetik.utils.io import write_json, write_text

Lens = dict[str, dict[str, float]]
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


def _data_dir(source: RunSource) -> tuple[str | None, str | None]:
    """``(dataset, cache folder)`` a run learned from, as absolute paths (None: the built-in
    data, the default cache). An online run's is its environment's ``data_dir``, else its
    simulator's dataset."""
    data, cache = source.data_dir, source.cache_dir
    env = dict(source.env_kwargs)
    if source.online:
        data = env.get("data_dir")
        if not data and env.get("sim_dir"):
            meta = json.loads((Path(str(env["sim_dir"])) / SIM_CONFIG).read_text())["meta"]
            data, cache = meta.get("data_dir"), meta.get("cache_dir")
    return _absolute(data), _absolute(cache)


def _absolute(path: Any) -> str | None:
    return None if not path else str(Path(str(path)).resolve())


class _RandomLogs:
    """Random logs loaded once per dataset, with the reference scorers' rows."""

    def __init__(self, csv_path: str, seed: int) -> None:
        self.csv_path, self.seed = csv_path, seed
        self.logs: dict[str | None, Any] = {}
        self.references: list[dict[str, Any]] = []

    def lens(self, agent: Agent, data: tuple[str | None, str | None]) -> Lens:
        """The random-log lens of ``agent`` on the log of the users of ``data`` (dataset,
        cache folder)."""
        from noetik.evaluation.random_log import RandomLogConfig, agent_scorer
        from noetik.evaluation.random_log import evaluate_random_log as evaluate

        log = self._log(*data)
        return evaluate(agent_scorer(agent), log, RandomLogConfig(seed=self.seed))

    def _log(self, data_dir: str | None, cache_dir: str | None) -> Any:
        from noetik.evaluation.random_log import (
            RandomLogConfig,
            evaluate_random_log,
            load_random_log,
            popularity_scorer,
            random_scorer,
        )

        if data_dir not in self.logs:
            ds = load_kuairand(data_dir, cache_dir=cache_dir)
            log = self.logs[data_dir] = load_random_log(ds, log=self.csv_path)
            config = RandomLogConfig(seed=self.seed)
            train = build_transitions(ds, split="train")
            for name, scorer in (("popularity", popularity_scorer(train)),
                                 ("random", random_scorer(self.seed))):  # fmt: skip
                lens = evaluate_random_log(scorer, log, config)
                where = f"reference:{name}" + (f"@{data_dir}" if len(self.logs) > 1 else "")
                self.references.append(_entry(where, "reference", random_log=lens))
        return self.logs[data_dir]


def _entry(run: str, algo: str, **lenses: Lens) -> dict[str, Any]:
    return {"run": run, "algo": algo, **{k: lenses.get(k, {}) for k in LENSES}}


def evaluate_run(
    run_dir: Path, config: LeaderboardConfig, random_logs: _RandomLogs | None = None
) -> dict[str, Any]:
    """The leaderboard entry of one run folder: every lens of ``config`` that applies."""
    meta, source = read_run(run_dir)
    agent = Agent.load(run_dir)
    agent.eval()
    lenses: dict[str, Lens] = {}
    if config.env_id is not None:
        kwargs = dict(config.env_kwargs)
        lenses["online"] = evaluate_online(
            agent, config.env_id, config.n_users, kwargs, config.seed
        )
    if config.ope and not source.online and meta["algo"] not in _NO_OPE:
        lenses["ope"] = _ope_lens(agent, source, config.seed)
    if random_logs is not None:
        lenses["random_log"] = random_logs.lens(agent, _data_dir(source))
    return _entry(str(run_dir), meta["algo"], **lenses)


_SPLITS: dict[tuple[str | None, str | None], Any] = {}
"""Logged splits and behaviour model per dataset, shared by the runs of one process."""


def _ope_lens(agent: Agent, source: RunSource, seed: int) -> Lens:
    """The ``ope`` lens on the test split of the run's data (splits and the behaviour model
    are built once per dataset and reused for every run on it)."""
    from noetik.evaluation.logged_ope import (
        LoggedOPEConfig,
        evaluate_logged,
        load_splits,
        propensity_for,
    )

    config = LoggedOPEConfig(seed=seed)
    key = _data_dir(source)
    if key not in _SPLITS:
        splits = load_splits(source)
        _SPLITS[key] = (splits, propensity_for(splits, config))
    splits, mu = _SPLITS[key]
    return evaluate_logged(agent, splits, config, propensity=mu)


#: Heuristics: their scores are not a policy's logits (uniform noise, exposure counts, expected
#: rewards), so the softmax the OPE lens weighs would not be the policy they run.
_NO_OPE = frozenset({"random", "popular", "greedy"})


def evaluate_runs(
    run_dirs: Sequence[Path],
    config: LeaderboardConfig,
    track: Callable[[Sequence[Path]], Any] = iter,
) -> list[dict[str, Any]]:
    """One entry per run (``track`` wraps the loop, e.g. in a progress bar), then the
    reference rows of the random-log lens when it runs."""
    logs = _RandomLogs(config.random_log, config.seed) if config.random_log else None
    entries = [evaluate_run(Path(run), config, logs) for run in track(run_dirs)]
    return entries + (logs.references if logs is not None else [])


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
                writer.writerow([entry["run"], entry["algo"], lens, metric,
                                 value["mean"], value["low"], value["high"]])  # fmt: skip
    write_text(csv_path, buffer.getvalue())
    return json_path, csv_path
