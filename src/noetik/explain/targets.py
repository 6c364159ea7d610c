"""What an attribution explains: one number per decision, as a differentiable function.

A :class:`TargetPath` is ``fn(obs (B, D), history | None, actions (B,) int64) -> (B,)``:

* ``"q"``: the chosen action's Q value in raw reward units: ``min(Q1, Q2)`` of IQL's online
  twin critics (as :meth:`IQLAgent.q_values`), the critics' mean Q of DQN/CQL (as their
  ``scores``), or ``q_values(...)[a]`` of any other agent that has ``q_values``;
* ``"logp"``: ``log_softmax(scores)[a]``, the policy's log-probability of the action (IQL's
  actor, BC, PPO/A2C; for DQN/CQL the softmax of its Q values);
* ``"signal"``: the fitted simulator's probability of a feedback signal (``is_click``...) for
  the state and the recommended video (mapped to the simulator's vocabulary by video id),
  under random exposure (as :meth:`FittedSimulator.predict_torch`), with gradients.

``encoders`` lists the history encoders the target reads: each has an ``item_emb`` embedding
layer whose output :func:`item_vectors_override` can replace, which is how item embeddings
become attribution inputs. Fused critic ensembles (vmapped, no real submodules) are read
through stand-alone copies of their members (cached until the weights change).
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn

from noetik.agents.algorithms.dqn import DQNAgent
from noetik.agents.algorithms.iql import IQLAgent
from noetik.agents.core.base import Agent
from noetik.agents.networks.encoders import Encoder, History
from noetik.agents.networks.heads import FusedEnsemble
from noetik.errors import ConfigError
from noetik.simulators.kuairand.examples import HEADS
from noetik.simulators.kuairand.model import FittedSimulator

__all__ = [
    "TARGETS",
    "Target",
    "TargetFn",
    "TargetPath",
    "default_target",
    "history_encoders",
    "item_vectors",
    "item_vectors_override",
    "target_path",
]

Target = Literal["q", "logp", "signal"]
TARGETS: tuple[str, ...] = get_args(Target)
TargetFn = Callable[[Tensor, History | None, Tensor], Tensor]

_MEMBERS: weakref.WeakKeyDictionary[FusedEnsemble, tuple[tuple[int, ...], list[nn.Module]]]
_MEMBERS = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class TargetPath:
    """A differentiable target of an agent and the history encoders it reads."""

    fn: TargetFn
    """``(obs (B, D) float, history | None, actions (B,) int64) -> (B,)`` target values."""
    encoders: tuple[nn.Module, ...]
    """History encoders read by ``fn`` (each with an ``item_emb`` :class:`nn.Embedding`)."""
    kind: str
    """``"q"``, ``"logp"`` or ``"signal"``."""


def default_target(agent: Agent) -> Target:
    """``"q"`` for agents with Q values (IQL, DQN, CQL...), else ``"logp"``."""
    return "q" if hasattr(agent, "q_values") or isinstance(agent, DQNAgent) else "logp"


def history_encoders(*modules: nn.Module) -> tuple[nn.Module, ...]:
    """Every history encoder (``uses_history`` and an ``item_emb`` embedding) in ``modules``."""
    found: dict[int, nn.Module] = {}
    for module in modules:
        for m in module.modules():
            if getattr(m, "uses_history", False) and isinstance(
                getattr(m, "item_emb", None), nn.Embedding
            ):
                found.setdefault(id(m), m)
    return tuple(found.values())


def _members(fused: FusedEnsemble) -> list[nn.Module]:
    """Stand-alone eval-mode copies of ``fused``'s members, cached until its weights change."""
    key = tuple(v for p in fused.parameters() for v in (p.data_ptr(), p._version))
    cached = _MEMBERS.get(fused)
    if cached is not None and cached[0] == key:
        return cached[1]
    dtype = next(fused.parameters()).dtype  # the template keeps its construction dtype
    members = [
        fused.member(i).to(dtype).eval().requires_grad_(False) for i in range(fused.n_members)
    ]
    _MEMBERS[fused] = (key, members)
    return members


def _nets(module: nn.Module) -> list[nn.Module]:
    return _members(module) if isinstance(module, FusedEnsemble) else [module]


def _pick(values: Tensor, actions: Tensor) -> Tensor:
    return values.gather(1, actions.view(-1, 1)).squeeze(1)


def _q_path(agent: Agent) -> TargetPath:
    if isinstance(agent, IQLAgent):
        twins, scale = _nets(agent.q_net), agent.reward_scale

        def iql_q(obs: Tensor, h: History | None, a: Tensor) -> Tensor:
            return torch.stack([m(obs, h, a) for m in twins]).amin(0) / scale

        return TargetPath(iql_q, history_encoders(*twins), "q")
    if isinstance(agent, DQNAgent):
        critics, dqn_scale = _nets(agent.q.net), agent.rewards.scale

        def dqn_q(obs: Tensor, h: History | None, a: Tensor) -> Tensor:
            return torch.stack([m(obs, h, a) for m in critics]).mean(0) / dqn_scale

        return TargetPath(dqn_q, history_encoders(*critics), "q")
    q_values = getattr(agent, "q_values", None)
    if q_values is None:
        raise ConfigError(
            f"target 'q' needs an agent with Q values, {type(agent).__name__} "
            "has none (use target='logp')"
        )

    def generic_q(obs: Tensor, h: History | None, a: Tensor) -> Tensor:
        return _pick(q_values(obs, h), a)

    return TargetPath(generic_q, history_encoders(agent), "q")


def _logp_path(agent: Agent) -> TargetPath:
    if isinstance(agent, DQNAgent):
        critics, scale = _nets(agent.q.net), agent.rewards.scale

        def dqn_logp(obs: Tensor, h: History | None, a: Tensor) -> Tensor:
            q = torch.stack([m(obs, h) for m in critics]).mean(0) / scale
            return _pick(torch.log_softmax(q, dim=-1), a)

        return TargetPath(dqn_logp, history_encoders(*critics), "logp")
    encoder = getattr(agent, "encoder", None)
    reads = history_encoders(encoder if isinstance(encoder, Encoder) else agent)

    def logp(obs: Tensor, h: History | None, a: Tensor) -> Tensor:
        return _pick(torch.log_softmax(agent.scores(obs, h), dim=-1), a)

    return TargetPath(logp, reads, "logp")


def _signal_path(agent: Agent, simulator: FittedSimulator | None, signal: str) -> TargetPath:
    if simulator is None:
        raise ConfigError("target 'signal' needs simulator= (a FittedSimulator)")
    if signal not in HEADS:
        raise ConfigError(f"signal must be one of {', '.join(HEADS)}, got {signal!r}")
    head = HEADS.index(signal)
    if agent.spec.video_ids is None:
        raise ConfigError("target 'signal' needs an agent whose spec has video_ids")
    pos, found = simulator.vocab.index.lookup(agent.spec.video_ids)
    table = torch.as_tensor(pos, dtype=torch.int64).where(torch.as_tensor(found), -1)
    table = table.to(simulator.device)
    video_ids, model = agent.spec.video_ids, simulator.model

    def signal_fn(obs: Tensor, h: History | None, a: Tensor) -> Tensor:
        items = table[a.to(table.device)]
        if bool((items < 0).any()):
            bad = int(video_ids[int(a[items < 0][0])])
            raise ConfigError(f"video_id {bad} is not in the simulator's vocabulary")
        flag = torch.ones(len(items), device=items.device)
        logits = model(obs.to(items.device), items, flag)[:, head]
        return torch.sigmoid(logits).to(obs.dtype).to(obs.device)

    return TargetPath(signal_fn, (), "signal")


def target_path(
    agent: Agent,
    target: str,
    *,
    simulator: FittedSimulator | None = None,
    signal: str = "is_click",
) -> TargetPath:
    """The differentiable ``target`` of ``agent`` (see the module docs); ``simulator`` and
    ``signal`` (a :data:`HEADS` name) are used by ``target="signal"`` only."""
    if target == "q":
        return _q_path(agent)
    if target == "logp":
        return _logp_path(agent)
    if target == "signal":
        return _signal_path(agent, simulator, signal)
    raise ConfigError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")


def item_vectors(encoders: tuple[nn.Module, ...], items: Tensor) -> Tensor:
    """(B, K, E * d) the item representation of each history position in each of the E
    ``encoders``, concatenated: learned embedding plus projected side features (when the
    encoder has them). Padding items are zero vectors."""
    parts = []
    for enc in encoders:
        emb: nn.Embedding = enc.item_emb  # type: ignore[assignment]
        n = emb.num_embeddings - 1
        idx = items.clamp(0, n)
        vec = emb(idx)
        feat: Any = getattr(enc, "item_feat", None)
        if feat is not None:
            vec = vec + feat(enc.item_features[idx])  # type: ignore[index]
        parts.append(vec)
    return torch.cat(parts, dim=-1)


@contextlib.contextmanager
def item_vectors_override(encoders: tuple[nn.Module, ...], vectors: Tensor) -> Iterator[None]:
    """Within the block, encoder ``e`` reads chunk ``e`` of ``vectors`` (N, K, E * d) as its
    item representations (in place of embedding + side features), for any batch size N."""
    handles = []
    start = 0
    try:
        for enc in encoders:
            emb: nn.Embedding = enc.item_emb  # type: ignore[assignment]
            chunk = vectors[..., start : start + emb.embedding_dim]
            start += emb.embedding_dim
            handles.append(emb.register_forward_hook(_replace_with(chunk)))
            feat: Any = getattr(enc, "item_feat", None)
            if isinstance(feat, nn.Module):
                handles.append(feat.register_forward_hook(_zero_output))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _replace_with(value: Tensor) -> Callable[[nn.Module, Any, Tensor], Tensor]:
    def hook(module: nn.Module, args: Any, output: Tensor) -> Tensor:
        return value.to(output.dtype)

    return hook


def _zero_output(module: nn.Module, args: Any, output: Tensor) -> Tensor:
    return torch.zeros_like(output)
