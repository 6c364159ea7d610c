"""Leaderboard plumbing: which dataset a run's lenses read."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from noetik.agents.algorithms.bc import BCConfig
from noetik.agents.core.base import ProblemSpec
from noetik.agents.core.runs import task_transitions
from noetik.agents.core.task import DataSource, EnvTask, TaskConfig
from noetik.data.synthetic import SynthConfig, synthesize
from noetik.evaluation.leaderboard import LeaderboardConfig, _Datasets
from noetik.evaluation.ope import logged
from noetik.evaluation.task_env import task_data
from noetik.simulators.kuairand.examples import HEADS
from noetik.simulators.kuairand.store import FORMAT, VERSION


def test_offline_and_online_runs_resolve_to_one_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sim = tmp_path / "sim"
    sim.mkdir()
    meta = {"data_dir": str(tmp_path / "data"), "cache_dir": "cache"}
    header = {"format": FORMAT, "version": VERSION, "heads": list(HEADS)}
    (sim / "simulator.json").write_text(json.dumps({**header, "meta": meta}))
    data, cache = str(tmp_path / "data"), str(tmp_path / "cache")
    assert task_data(TaskConfig(DataSource("data", "cache"))) == (data, cache)
    online = TaskConfig(env=EnvTask("noetik/KuaiRand-v0", {"sim_dir": "sim"}))
    assert task_data(online) == (data, cache)  # the simulator's dataset, same key
    named = TaskConfig(env=EnvTask("noetik/KuaiRand-v0", {"data_dir": "data"}))
    assert task_data(named)[0] == data
    assert task_data(TaskConfig(env=EnvTask("noetik/KuaiRand-v0"))) == (None, None)  # built-in
    assert task_data(TaskConfig()) == (None, None)


def test_ope_lens_keeps_the_behaviour_model_in_the_dataset_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synthesize(tmp_path / "data", SynthConfig.for_release("pure", users=40, videos=120, seed=1))
    task = TaskConfig(DataSource(str(tmp_path / "data"), str(tmp_path / "cache")))
    fits: list[int] = []
    fit = logged.fit_propensity

    def small_fit(train: Any, calib: Any, config: Any, content: Any = None) -> Any:
        fits.append(1)  # the default, fewer steps
        return fit(train, calib, dataclasses.replace(config, steps=5, hidden=(8,)), content)

    monkeypatch.setattr(logged, "fit_propensity", small_fit)
    spec = ProblemSpec.from_transitions(task_transitions(task, "train"))
    agent = BCConfig(device="cpu").create(spec).eval()
    first = _Datasets(LeaderboardConfig(online=False)).ope_lens(agent, task)
    assert len(fits) == 1
    assert len(list((tmp_path / "cache" / "ope").glob("propensity-*/propensity.json"))) == 1
    # a later `noetik evaluate` (a new _Datasets) loads the model instead of fitting it again
    assert _Datasets(LeaderboardConfig(online=False)).ope_lens(agent, task) == first
    assert len(fits) == 1
