"""Agents: one contract (``fit / update / scores / act / save / load``), encoders, one trainer.

Algorithms register their config class with :func:`register`; :data:`ALGOS` maps each name
to it, so ``Agent.load(folder)`` can rebuild any saved agent. See docs/agents.md.
"""

from __future__ import annotations

from noetik.agents.core.base import (
    ALGOS,
    Agent,
    AgentConfig,
    BatchSource,
    Capabilities,
    ProblemSpec,
    register,
    resolve_device,
)
from noetik.agents.core.batches import Batch, DeviceReplay, HostReplay
from noetik.agents.core.trainer import Hook, Trainer, TrainerConfig, TrainResult, seed_everything
from noetik.agents.networks.encoders import (
    Encoder,
    EncoderConfig,
    History,
    HistoryTransformerEncoder,
    MLPEncoder,
    make_encoder,
)
from noetik.agents.networks.heads import EnsembleLinear, EnsembleMLP, FusedEnsemble, ItemScorer

__all__ = [
    "ALGOS",
    "Agent",
    "AgentConfig",
    "Batch",
    "BatchSource",
    "Capabilities",
    "DeviceReplay",
    "Encoder",
    "EncoderConfig",
    "EnsembleLinear",
    "EnsembleMLP",
    "FusedEnsemble",
    "History",
    "HistoryTransformerEncoder",
    "Hook",
    "HostReplay",
    "ItemScorer",
    "MLPEncoder",
    "ProblemSpec",
    "TrainResult",
    "Trainer",
    "TrainerConfig",
    "make_encoder",
    "register",
    "resolve_device",
    "seed_everything",
]

# Algorithms register themselves in ALGOS when imported.
from noetik.agents.algorithms import a2c, bc, cql, dqn, heuristics, iql, ppo  # noqa: F401
