"""Leaderboard plumbing: which dataset a run's lenses read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from noetik.agents.core.runs import RunSource
from noetik.evaluation.leaderboard import _data_dir
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
    assert _data_dir(RunSource(data_dir="data", cache_dir="cache")) == (data, cache)
    online = RunSource(env_id="noetik/KuaiRand-v0", env_kwargs=(("sim_dir", "sim"),))
    assert _data_dir(online) == (data, cache)  # the simulator's dataset, same key
    named = RunSource(env_id="noetik/KuaiRand-v0", env_kwargs=(("data_dir", "data"),))
    assert _data_dir(named)[0] == data
    assert _data_dir(RunSource(env_id="noetik/KuaiRand-v0")) == (None, None)  # built-in
    assert _data_dir(RunSource()) == (None, None)
