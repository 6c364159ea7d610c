"""Leaderboard plumbing: which dataset a run's lenses read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from noetik.agents.core.task import DataSource, EnvTask, TaskConfig
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
