"""What every report section reads: the run folder, the optional inputs, the data (loaded once).

A section that cannot be shown raises :class:`Unavailable` with the reason; the report prints
``not available: <reason>`` in its place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from noetik.agents.core.base import Agent
from noetik.agents.core.runs import read_run, task_transitions
from noetik.agents.core.task import TaskConfig
from noetik.data.dataset import KuaiRandDataset, load_kuairand
from noetik.data.transitions import Transitions

__all__ = ["ReportInputs", "RunData", "Unavailable", "read_json"]


class Unavailable(Exception):
    """A section's inputs are missing; the message says which and how to produce them."""


def read_json(path: Path) -> Any:
    """The JSON value of ``path``; :class:`Unavailable` when missing or unreadable."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise Unavailable(f"no {path}") from None
    except (OSError, ValueError) as exc:
        raise Unavailable(f"cannot read {path} ({exc})") from None


@dataclass(frozen=True)
class ReportInputs:
    """The run and the optional inputs of one report."""

    run_dir: Path
    """Run folder written by ``noetik train``."""
    meta: dict[str, Any]
    """Its ``run.json``."""
    task: TaskConfig
    """The run's task (data, reward, episodes, environment)."""
    leaderboard: Path | None = None
    """``leaderboard.json`` given by the user (a file or a folder holding it)."""
    sim_dir: Path | None = None
    """Simulator folder given by the user (default: the run's ``sim_dir`` env option)."""
    tradeoff_dir: Path | None = None
    """Folder written by ``scripts/tradeoff_sweep.py``."""
    trust: Path | None = None
    """``trust.json`` of ``noetik sim trust`` given by the user (a file or its folder)."""
    users: int = 3
    """Sample users whose recommendations are explained."""
    seed: int = 0
    """Seed of every sample (users, decisions, bootstrap)."""

    @classmethod
    def read(cls, run_dir: Path, **options: Any) -> ReportInputs:
        """Inputs of run folder ``run_dir`` (ConfigError when it is not one)."""
        meta, task = read_run(run_dir)
        return cls(Path(run_dir).resolve(), meta, task, **options)

    def simulator_dir(self) -> Path | None:
        """The simulator folder: the one given, else the run's ``sim_dir`` env option."""
        if self.sim_dir is not None:
            return self.sim_dir
        named = self.task.env.options.get("sim_dir") if self.task.env else self.task.simulator
        return Path(str(named)) if named else None

    def data_dir(self) -> str | None:
        """Dataset of the run (an online run: its simulator's data; None: built-in data)."""
        if self.task.data.folder is not None:
            return self.task.data.folder
        named = self.task.env.options.get("data_dir") if self.task.env else None
        if named:
            return str(named)
        sim = self.simulator_dir()
        if sim is not None and (sim / "simulator.json").is_file():
            data = read_json(sim / "simulator.json").get("meta", {}).get("data_dir")
            return str(data) if data else None
        return None


@dataclass
class RunData:
    """The run's agent, dataset and transitions, each loaded on first use and then shared."""

    inputs: ReportInputs
    """The report's inputs."""
    _cache: dict[str, Any] = field(default_factory=dict)

    def agent(self) -> Agent:
        """The run's agent in eval mode (on the CPU)."""
        if "agent" not in self._cache:
            agent = Agent.load(self.inputs.run_dir, device="cpu")
            agent.eval()
            self._cache["agent"] = agent
        agent_: Agent = self._cache["agent"]
        return agent_

    def dataset(self) -> KuaiRandDataset:
        """The dataset the run learned from."""
        if "ds" not in self._cache:
            cache = self.inputs.task.data.cache_dir
            self._cache["ds"] = load_kuairand(self.inputs.data_dir(), cache_dir=cache)
        ds: KuaiRandDataset = self._cache["ds"]
        return ds

    def transitions(self) -> Transitions:
        """Every transition of the standard log (offline runs only)."""
        if self.inputs.task.online:
            raise Unavailable(
                "the run was trained in a simulator (--env); explanations need a "
                "run trained on logged data (--data)"
            )
        if "transitions" not in self._cache:
            transitions = task_transitions(self.inputs.task, None, self.dataset())
            n_actions = self.agent().spec.n_actions
            if len(transitions.vocab) != n_actions:
                raise Unavailable(
                    f"the agent's {n_actions} actions do not match the "
                    f"{len(transitions.vocab)} videos of the data"
                )
            self._cache["transitions"] = transitions
        t: Transitions = self._cache["transitions"]
        return t

    def history_len(self) -> int:
        """K of the agent's encoder (0 when it reads no history)."""
        encoder = self.agent().config.encoder
        return int(encoder.history_len) if encoder.uses_history else 0
