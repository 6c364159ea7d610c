"""The simulator's one-step oracle, ``greedy``: the best expected reward under its response model.

:class:`GreedyAgent` asks the KuaiRand simulator's response model for the expected reward of
every candidate item and shows the best. It knows the model the environment samples from, so it
is a reference for evaluation (an upper bound of one-step greed, a logging policy for the OPE
check), not a learner; it has the agent contract so every lens can run it. Importing
:mod:`noetik.evaluation` registers it as ``greedy`` in :data:`~noetik.agents.ALGOS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from noetik.agents.algorithms.heuristics import HeuristicAgent
from noetik.agents.core.base import AgentConfig, Capabilities, ProblemSpec, register
from noetik.agents.networks.encoders import History
from noetik.data.rewards import DEFAULT_REWARD_WEIGHTS
from noetik.errors import ConfigError
from noetik.simulators.kuairand.env_config import KuaiRandEnvConfig
from noetik.simulators.kuairand.examples import HEADS
from noetik.simulators.kuairand.parts import candidate_pool
from noetik.simulators.kuairand.world import load_world

__all__ = ["GreedyAgent", "GreedyConfig"]


class GreedyAgent(HeuristicAgent):
    """argmax over the candidate pool of the simulator's expected reward for the state."""

    config: GreedyConfig
    #: Nothing beyond the contract: its scores are expected rewards (argmax is its policy, but
    #: their softmax is not), it reads the simulator and learns nothing.
    capabilities = Capabilities()
    pool: Tensor
    """(A,) int64 vocabulary index of each action (non-persistent buffer)."""
    head_weights: Tensor
    """(9,) float32 reward weight of each head used linearly (click, like, ...)."""
    watch_coef: Tensor
    """(A,) float32 reward per unit of predicted watch ratio of each action."""

    def __init__(self, config: GreedyConfig, spec: ProblemSpec) -> None:
        super().__init__(config, spec)
        env = config.env_config()
        world = load_world(env.sim_dir, env.data_dir, config.device)
        self.sim = world.sim
        pool = candidate_pool(world, env)
        if len(pool) != spec.n_actions:
            raise ConfigError(f"the candidate pool has {len(pool)} items, spec {spec.n_actions}")
        reward = env.reward_config
        unsupported = set(reward.as_dict()) - {*HEADS, "play_time_s"}
        if unsupported:
            raise ConfigError(f"greedy: no expected value for {sorted(unsupported)}")
        head_w = reward.weights_for(HEADS).astype(np.float32)
        self.long_view_weight = float(head_w[HEADS.index("long_view")])
        head_w[[HEADS.index("long_view"), HEADS.index("watch_ratio")]] = 0.0
        known = world.tables.action_duration_known[pool].astype(np.float32)
        duration = world.duration_s[pool].astype(np.float32)
        per_ratio, per_second = reward.weights_for(("watch_ratio", "play_time_s")).tolist()
        watch = per_ratio * known + per_second * duration  # float32, as known and duration
        self.register_buffer("pool", torch.from_numpy(pool), persistent=False)
        self.register_buffer("head_weights", torch.from_numpy(head_w), persistent=False)
        self.register_buffer("watch_coef", torch.from_numpy(watch), persistent=False)

    def expected_reward(self, p: Tensor, lo: int, hi: int) -> Tensor:
        """(B, a) expected reward from predictions ``p`` (B, a, 9) of actions ``lo:hi``."""
        click, lv = HEADS.index("is_click"), HEADS.index("long_view")
        out = p @ self.head_weights.to(p.device)
        out = out + p[..., HEADS.index("watch_ratio")] * self.watch_coef[lo:hi].to(p.device)
        if self.long_view_weight:  # long views only come with a click: min(p_lv, p_click)
            out = out + self.long_view_weight * torch.minimum(p[..., lv], p[..., click])
        return out

    @torch.no_grad()
    def scores(self, obs: Tensor, history: History | None = None) -> Tensor:
        """(B, A) float32 expected reward of every action (chunked model calls)."""
        dev = self.sim.device
        x = obs.to(dev, torch.float32)
        b, a = x.shape[0], self.spec.n_actions
        pool = self.pool.to(dev)
        out = torch.empty(b, a, device=dev)
        step = max(1, self.config.chunk_rows // max(b, 1))
        for lo in range(0, a, step):
            hi = min(a, lo + step)
            states = x[:, None, :].expand(b, hi - lo, x.shape[1]).reshape(-1, x.shape[1])
            items = pool[lo:hi].repeat(b)
            p = self.sim.predict_torch(states, items, self.config.exposure).view(b, hi - lo, -1)
            out[:, lo:hi] = self.expected_reward(p, lo, hi)
        return out.to(obs.device)


@register("greedy")
@dataclass(frozen=True)
class GreedyConfig(AgentConfig):
    """Config of :class:`GreedyAgent`: which simulator and pool (as the env's options)."""

    agent_class = GreedyAgent
    sim_dir: str | None = None
    """The simulator run directory (None: the default simulator)."""
    data_dir: str | None = None
    """The dataset of the candidate pool (None: the simulator's)."""
    candidate_pool: str | tuple[int, ...] = "random"
    """``"random"``, ``"all"`` or video ids, as ``KuaiRandEnvConfig.candidate_pool``."""
    reward: tuple[tuple[str, float], ...] = DEFAULT_REWARD_WEIGHTS
    """Reward weights; heads of the model and ``play_time_s`` (no stays)."""
    exposure: Literal["random", "standard"] = "random"
    """Model head: ``"random"`` (debiased) or ``"standard"``."""
    chunk_rows: int = 1 << 18
    """(state, item) pairs per model call."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.candidate_pool, list):
            object.__setattr__(self, "candidate_pool", tuple(self.candidate_pool))
        self.env_config()  # validates the env options

    def env_config(self) -> KuaiRandEnvConfig:
        """The env options these fields stand for."""
        return KuaiRandEnvConfig(
            sim_dir=self.sim_dir,
            data_dir=self.data_dir,
            reward=self.reward,
            candidate_pool=self.candidate_pool,  # type: ignore[arg-type]
            exposure=self.exposure,
            device=self.device,
        )

    @classmethod
    def for_env(cls, env: Any, **changes: Any) -> GreedyConfig:
        """The config matching a ``noetik/KuaiRand-v0`` env (single or vector)."""
        c: KuaiRandEnvConfig = getattr(env, "unwrapped", env).config
        fields: dict[str, Any] = {
            "sim_dir": c.sim_dir,
            "data_dir": c.data_dir,
            "reward": c.reward_config.weights,
            "exposure": c.exposure,
            "candidate_pool": c.candidate_pool,
        }
        return cls(**(fields | changes))
