"""Heuristic recommenders with the agent contract (``scores / act / save / load``): baselines.

* ``random`` (:class:`RandomConfig`): a uniform draw over the action space at every step.
* ``popular`` (:class:`PopularConfig`): items ranked by their logged exposure count (or the
  sum of one signal, e.g. clicks); at each step the most popular item the user has not seen
  in the history window (so step t of a fresh session shows the t-th most popular item).

The simulator's one-step oracle (``greedy``) lives in :mod:`noetik.evaluation.oracle`: it reads
the simulator, which the agents stage does not.

``fit(data)`` is a count (popular) or a no-op; it never runs gradient steps. With ``out_dir``
it writes ``<out_dir>/checkpoint`` like the trainer, so ``Agent.load`` works the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from noetik.agents.core.base import Agent, AgentConfig, Capabilities, ProblemSpec, register
from noetik.agents.networks.encoders import History
from noetik.data.ondisk import DiskTransitions
from noetik.data.rewards import SIGNALS
from noetik.data.transitions import Transitions
from noetik.errors import ConfigError
from noetik.utils.arrays import IdIndex

if TYPE_CHECKING:
    from noetik.agents.core.trainer import Hook, TrainerConfig, TrainResult

__all__ = [
    "HeuristicAgent",
    "PopularAgent",
    "PopularConfig",
    "RandomAgent",
    "RandomConfig",
    "popularity_counts",
]


class HeuristicAgent(Agent):
    """Common part: no gradient steps; ``fit`` counts (or does nothing) and saves. Their
    scores are no policy's logits (``capabilities``: none, unless a subclass says so)."""

    def update(self, batch: Any) -> dict[str, Tensor]:
        """Nothing to learn."""
        return {}

    def observe(self, data: Any) -> None:
        """Learn what the heuristic needs from ``data`` (default: nothing)."""

    def fit(
        self,
        data: Any,
        steps: int = 0,
        out_dir: str | Path | None = None,
        *,
        hooks: Iterable[Hook] = (),
        resume: bool = False,
        trainer: TrainerConfig | None = None,
    ) -> TrainResult:
        """:meth:`observe` ``data``; write ``<out_dir>/checkpoint`` when a folder is given."""
        from noetik.agents.core.trainer import TrainResult

        self.observe(data)
        folder = out_dir if out_dir is not None else (trainer.out_dir if trainer else None)
        run_dir = Path(folder) if folder is not None else None
        if run_dir is not None:
            self.save(run_dir / "checkpoint")
        return TrainResult(0, {}, run_dir)


class RandomAgent(HeuristicAgent):
    """Uniform random actions: ``act`` draws uniformly; ``scores`` are fresh uniform noise per
    call, so a caller that takes their argmax (e.g. among the videos a user has not seen yet)
    also picks uniformly at random."""

    config: RandomConfig
    capabilities = Capabilities()  # uniform draws: its scores are noise, it learns nothing

    def __init__(self, config: RandomConfig, spec: ProblemSpec) -> None:
        super().__init__(config, spec)
        self.generator = torch.Generator()
        self.generator.manual_seed(config.seed)

    def reseed(self, seed: int) -> None:
        """Restart the agent's generator from ``config.seed + seed`` (e.g. per block of
        simulated users: the same draws for the block wherever it runs; ``seed`` 0 gives the
        draws of a freshly built agent)."""
        self.generator.manual_seed((self.config.seed + seed) % 2**63)

    def scores(self, obs: Tensor, history: History | None = None) -> Tensor:
        """(B, A) float32 i.i.d. uniform [0, 1) scores from the agent's seeded generator."""
        shape = (obs.shape[0], self.spec.n_actions)
        return torch.rand(shape, generator=self.generator).to(obs.device)

    def item_scores(self, obs: Tensor, history: History | None, items: Tensor) -> Tensor:
        """(B, P) float32 i.i.d. uniform scores of ``items`` (P,) only."""
        shape = (obs.shape[0], len(items))
        return torch.rand(shape, generator=self.generator).to(obs.device)

    @torch.no_grad()
    def act(
        self,
        obs: Tensor,
        history: History | None = None,
        deterministic: bool = True,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """(B,) int64 uniform draws (always random; ``generator`` or the agent's seeded one)."""
        gen = generator if generator is not None else self.generator
        n = (obs.shape[0],)
        return torch.randint(0, self.spec.n_actions, n, generator=gen, device=gen.device).to(
            obs.device
        )


@register("random")
@dataclass(frozen=True)
class RandomConfig(AgentConfig):
    """Config of :class:`RandomAgent` (only ``seed`` matters)."""

    agent_class = RandomAgent


def popularity_counts(
    t: Transitions | DiskTransitions, signal: str | None, spec: ProblemSpec
) -> np.ndarray:
    """(A,) float64 per action of ``spec``: rows showing it (``signal`` None) or the sum of
    ``signal`` over them; logged items are matched to actions by video id when ``spec`` has
    ``video_ids`` (items outside the log count 0), else by index. Transitions on disk give
    their stored counts (a signal's sum needs them in memory)."""
    if signal is not None and signal not in SIGNALS:
        raise ConfigError(f"signal must be one of {SIGNALS}, got {signal!r}")
    if isinstance(t, DiskTransitions):
        if signal is not None:
            raise ConfigError(f"popularity by '{signal}' reads every row: train --in-memory")
        counts = t.stats.action_counts.astype(np.float64)
    else:
        weights = None if signal is None else t.signals[:, SIGNALS.index(signal)]
        counts = np.bincount(t.action, weights=weights, minlength=t.n_actions).astype(np.float64)
    if spec.video_ids is None:
        if t.n_actions != spec.n_actions:
            raise ConfigError(
                f"the log has {t.n_actions} items, the agent {spec.n_actions}; "
                "give the spec video_ids to match them"
            )
        return counts
    logged = np.asarray(t.vocab.video_ids, dtype=np.int64)
    order = np.argsort(logged)
    pos, hit = IdIndex(logged[order]).lookup(spec.video_ids)
    return np.where(hit, counts[order][pos], 0.0)


class PopularAgent(HeuristicAgent):
    """Most popular first; skips items in the history window (see module docs)."""

    config: PopularConfig
    capabilities = Capabilities(offline=True)  # counts the log; scores are ranks, not logits
    counts: Tensor
    """(A,) float64 buffer: exposure (or signal) count of every action."""
    priority: Tensor
    """(A,) float32 buffer: ``A - rank`` (rank 0 = most popular; ties: lower index first)."""

    def __init__(self, config: PopularConfig, spec: ProblemSpec) -> None:
        super().__init__(config, spec)
        self.register_buffer("counts", torch.zeros(spec.n_actions, dtype=torch.float64))
        self.register_buffer("priority", torch.zeros(spec.n_actions, dtype=torch.float32))
        self.set_counts(np.zeros(spec.n_actions))

    def set_counts(self, counts: np.ndarray) -> None:
        """Rank the actions by ``counts`` (A,) (descending; ties by lower index)."""
        counts = np.asarray(counts, dtype=np.float64)
        if counts.shape != (self.spec.n_actions,):
            raise ConfigError(f"counts must have shape ({self.spec.n_actions},)")
        order = np.argsort(-counts, kind="stable")
        priority = np.empty(len(counts), dtype=np.float32)
        priority[order] = len(counts) - np.arange(len(counts), dtype=np.float32)
        self.counts.copy_(torch.from_numpy(counts))
        self.priority.copy_(torch.from_numpy(priority))

    def observe(self, data: Any) -> None:
        """Count ``data``: :class:`Transitions`, or (A,) counts given directly."""
        if isinstance(data, (Transitions, DiskTransitions)):
            data = popularity_counts(data, self.config.signal, self.spec)
        self.set_counts(np.asarray(data))

    def scores(self, obs: Tensor, history: History | None = None) -> Tensor:
        """(B, A) float32 ``A - rank``; -inf on history items when ``exclude_seen``."""
        s = self.priority.to(obs.device).expand(obs.shape[0], -1).clone()
        if history is None or not self.config.exclude_seen:
            return s
        a = self.spec.n_actions
        items = torch.where(history.mask, history.items, a).clamp(0, a)
        wide = torch.cat([s, s.new_zeros(s.shape[0], 1)], dim=1)
        return wide.scatter(1, items, float("-inf"))[:, :a]

    def item_scores(self, obs: Tensor, history: History | None, items: Tensor) -> Tensor:
        """(B, P) float32 :meth:`scores` of ``items`` (P,) only (never the (B, A) matrix)."""
        items = items.to(obs.device)
        s = self.priority.to(obs.device)[items].expand(obs.shape[0], -1).clone()
        if history is None or not self.config.exclude_seen:
            return s
        order = items.argsort()
        ranked = items[order]
        pos = torch.searchsorted(ranked, history.items).clamp(max=len(items) - 1)
        hit = (ranked[pos] == history.items) & history.mask
        rows = torch.arange(s.shape[0], device=s.device)[:, None].expand_as(pos)
        s[rows[hit], order[pos][hit]] = float("-inf")
        return s

    @torch.no_grad()
    def act(
        self,
        obs: Tensor,
        history: History | None = None,
        deterministic: bool = True,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """(B,) int64 argmax of :meth:`scores` (the rule is deterministic)."""
        return self.scores(obs, history).argmax(dim=-1)


@register("popular")
@dataclass(frozen=True)
class PopularConfig(AgentConfig):
    """Config of :class:`PopularAgent`."""

    agent_class = PopularAgent
    signal: str | None = None
    """None: rank by exposures (logged rows); a signal name (e.g. ``"is_click"``): by its sum."""
    exclude_seen: bool = True
    """Skip the items in the history window (needs ``history``; without it: the top item)."""
