"""The sweep config: a search space of agent configs, trained and measured one trial each.

A sweep is the grid ``grid`` x ``weights`` x ``seeds``: every combination of the
hyperparameter values in ``grid``, of the weights of one interpretability term (``term``) and
of the seeds is one trial, trained for ``steps`` updates on ``data`` and then measured
(``measure``) in the simulator ``simulator``. Written in TOML or JSON, e.g.::

    data = "results/agents/data"
    simulator = "results/agents/sim"
    steps = 1000
    seeds = [0, 1]
    term = "attention_entropy"
    weights = [0.0, 0.01, 0.1, 1.0]

    [agent]                        # fields of the algorithm's config (noetik train --config)
    encoder = { kind = "transformer" }

    [grid]                         # agent fields (dotted for nested ones) -> values tried
    temperature = [3.0, 10.0]

    [measure]
    users = 1000

Relative paths are relative to the config file's folder. :func:`load_sweep_config` refuses
anything mistyped with one line naming the file and the field.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from noetik.errors import ConfigError
from noetik.utils.config import from_json, read_config_file

__all__ = ["TERMS", "MeasureConfig", "SweepConfig", "Term", "load_sweep_config"]

Term = Literal["attention_entropy", "stability", "agreement", "l1_state"]
#: The interpretability terms whose weight a sweep can vary.
TERMS: tuple[Term, ...] = ("attention_entropy", "stability", "agreement", "l1_state")


@dataclass(frozen=True)
class MeasureConfig:
    """How each trained agent is measured (the same for every trial of a sweep)."""

    users: int = 1_000
    """Simulated users, one KuaiRand-v0 session each: the engagement (mean return, 95 %
    interval) of the agent."""
    decisions: int = 500
    """Logged decisions of the test split (a seeded sample) on which attention entropy,
    integrated gradients and faithfulness are measured."""
    seed: int = 0
    """Seed of the simulated users and of the decisions' sample: the same for every trial, so
    trials are compared on the same users and decisions."""
    ig_steps: int = 32
    """Integration steps of the integrated-gradients attributions."""
    faithfulness: bool = True
    """Measure the deletion and insertion AUC of IG and of a random order (the slowest part)."""
    faithfulness_bootstrap: int = 200
    """Bootstrap resamples of the faithfulness intervals."""

    def __post_init__(self) -> None:
        for name in ("users", "decisions", "ig_steps", "faithfulness_bootstrap"):
            if getattr(self, name) < 1:
                raise ConfigError(f"measure.{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class SweepConfig:
    """A sweep: the search space (``grid`` x ``weights`` x ``seeds``), the training budget and
    the measurement of every trial."""

    data: str
    """KuaiRand folder the agents train on (its training split) and are measured on (its test
    split's decisions)."""
    simulator: str | None = None
    """Folder of a fitted simulator (``noetik sim fit``) in which engagement is measured;
    None: one is fitted on ``data`` into the sweep's folder (``sim/``) once."""
    algo: str = "iql"
    """Registered algorithm of every trial (one that trains interpretability terms when a
    weight is non-zero: iql, bc)."""
    agent: dict[str, Any] = field(default_factory=dict)
    """Fields of the algorithm's config shared by every trial (the JSON of ``noetik train
    --config``); not ``seed`` (see ``seeds``)."""
    grid: dict[str, Any] = field(default_factory=dict)
    """Hyperparameters swept: agent field (dotted for a nested one, ``encoder.layers``) ->
    the list of values tried; every combination is tried."""
    seeds: tuple[int, ...] = (0,)
    """Seeds tried for every combination (the agent's seed: weights, sampling)."""
    term: Term = "attention_entropy"
    """The interpretability term whose weight is swept."""
    weights: tuple[float, ...] = (0.0,)
    """Weights of ``term`` tried (0: trained exactly as without the term)."""
    steps: int = 1_000
    """Training budget of every trial: gradient updates."""
    measure: MeasureConfig = field(default_factory=MeasureConfig)
    """How every trial is measured."""

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ConfigError(f"field 'steps' must be >= 1, got {self.steps}")
        for name in ("seeds", "weights"):
            values = getattr(self, name)
            if not values or len(set(values)) != len(values):
                raise ConfigError(f"field '{name}' must be a non-empty list without repeats")
        if not all(math.isfinite(w) and w >= 0 for w in self.weights):
            raise ConfigError("field 'weights' must hold finite weights >= 0")
        if "seed" in self.agent or "seed" in self.grid:
            raise ConfigError("the seed is not an agent field here: list them in 'seeds'")
        swept = f"interpretability.{self.term}"
        if swept in self.grid:
            raise ConfigError(f"field 'grid': '{swept}' is swept by 'weights'")
        for key, values in self.grid.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"field 'grid.{key}' must be a non-empty list of values")
            if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
                raise ConfigError(f"field 'grid.{key}' repeats a value")

    def resolved(self, base: Path) -> SweepConfig:
        """This config with its paths made absolute (relative ones against ``base``)."""

        def absolute(path: str) -> str:
            return str((base / Path(path).expanduser()).resolve())

        simulator = None if self.simulator is None else absolute(self.simulator)
        return dataclasses.replace(self, data=absolute(self.data), simulator=simulator)

    def to_json(self) -> dict[str, Any]:
        """The JSON form of the config (:func:`load_sweep_config` reads it back)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))  # type: ignore[no-any-return]


def load_sweep_config(path: Path) -> SweepConfig:
    """The sweep config in ``path`` (``.toml`` or ``.json``), its relative paths made absolute
    against the file's folder; anything unreadable or mistyped raises a one-line
    :class:`ConfigError` naming the file (and the field)."""
    path = Path(path)
    data = read_config_file(path, "sweep config")
    config = from_json(SweepConfig, data, str(path))
    return config.resolved(path.resolve().parent)
