"""What an attribution explains: one number per decision, as a differentiable function.

A :class:`TargetPath` is ``fn(obs (B, D), history | None, actions (B,) int64) -> (B,)``:

* ``"q"``: the chosen action's Q value in raw reward units, :meth:`Agent.q_values` of an agent
  with ``capabilities.q_values`` (``min(Q1, Q2)`` of IQL's online twin critics, the critics'
  mean Q of DQN/CQL);
* ``"logp"``: :meth:`Agent.policy_log_probs` ``[a]`` = ``log_softmax(scores)[a]``, the policy's
  log-probability of the action, for agents with ``capabilities.policy_logits`` (IQL's actor,
  BC, PPO/A2C; for DQN/CQL the Boltzmann policy of its Q values);
* ``"signal"``: the fitted simulator's probability of a feedback signal (``is_click``...) for
  the state and the recommended video (mapped to the simulator's vocabulary by video id),
  under random exposure (as :meth:`FittedSimulator.predict_torch`), with gradients.

``encoders`` lists the history encoders the target reads: each has an ``item_emb`` embedding
layer whose output :func:`item_vectors_override` can replace, which is how item embeddings
become attribution inputs. :func:`target_path` lists every history encoder of the agent and
:func:`read_encoders` keeps those a forward pass of the target calls. Fused critic ensembles
(vmapped, no real submodules) are read inside :func:`unfused`, where they run member by member
through :meth:`FusedEnsemble.member` views: modules of their own over the stacked weights.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn

from noetik.agents.core.base import Agent
from noetik.agents.networks.encoders import History
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
    "read_encoders",
    "target_path",
    "unfused",
]

Target = Literal["q", "logp", "signal"]
TARGETS: tuple[str, ...] = get_args(Target)
TargetFn = Callable[[Tensor, History | None, Tensor], Tensor]


@dataclass(frozen=True)
class TargetPath:
    """A differentiable target of an agent and the history encoders it reads."""

    fn: TargetFn
    """``(obs (B, D) float, history | None, actions (B,) int64) -> (B,)`` target values."""
    encoders: tuple[nn.Module, ...]
    """History encoders read by ``fn`` (each with an ``item_emb`` :class:`nn.Embedding`); a
    superset until :func:`read_encoders` narrows it."""
    kind: str
    """``"q"``, ``"logp"`` or ``"signal"``."""


def default_target(agent: Agent) -> Target:
    """``"q"`` for agents with Q values (``capabilities.q_values``: IQL, DQN, CQL), else
    ``"logp"``."""
    return "q" if agent.capabilities.q_values else "logp"


@contextlib.contextmanager
def unfused(agent: nn.Module) -> Iterator[None]:
    """Within the block every :class:`FusedEnsemble` of ``agent`` runs member by member
    through views of its stacked weights (:meth:`FusedEnsemble.unfused`), so that
    :func:`history_encoders` finds each member's encoder and hooks on it fire."""
    with contextlib.ExitStack() as stack:
        for module in agent.modules():
            if isinstance(module, FusedEnsemble):
                stack.enter_context(module.unfused())
        yield


def _walk(module: nn.Module) -> Iterator[nn.Module]:
    """``module.modules()``, plus the member views of fused ensembles inside :func:`unfused`."""
    for m in module.modules():
        yield m
        members = m.unfused_members if isinstance(m, FusedEnsemble) else None
        for member in members or ():
            yield from _walk(member)


def history_encoders(*modules: nn.Module) -> tuple[nn.Module, ...]:
    """Every history encoder (``uses_history`` and an ``item_emb`` embedding) in ``modules``
    (with the members of fused ensembles inside :func:`unfused`)."""
    found: dict[int, nn.Module] = {}
    for module in modules:
        for m in _walk(module):
            if getattr(m, "uses_history", False) and isinstance(
                getattr(m, "item_emb", None), nn.Embedding
            ):
                found.setdefault(id(m), m)
    return tuple(found.values())


def read_encoders(path: TargetPath, obs: Tensor, history: History | None) -> TargetPath:
    """``path`` with only the encoders whose ``item_emb`` a forward of ``path.fn`` on the first
    decision of ``obs`` (B, D) / ``history`` calls (no gradient; actions 0)."""
    if history is None or not path.encoders:
        return path
    called: set[int] = set()

    def seen(module: nn.Module, *_: Any) -> None:
        called.add(id(module))

    embeddings: list[nn.Module] = [enc.get_submodule("item_emb") for enc in path.encoders]
    handles = [emb.register_forward_hook(seen) for emb in embeddings]
    try:
        with torch.no_grad():
            first = History(*(t[:1] for t in vars(history).values()))
            path.fn(obs[:1], first, torch.zeros(1, dtype=torch.int64, device=obs.device))
    finally:
        for handle in handles:
            handle.remove()
    read = tuple(enc for enc in path.encoders if id(enc.item_emb) in called)
    return dataclasses.replace(path, encoders=read)


def _pick(values: Tensor, actions: Tensor) -> Tensor:
    return values.gather(1, actions.view(-1, 1)).squeeze(1)


def _q_path(agent: Agent) -> TargetPath:
    if not agent.capabilities.q_values:
        raise ConfigError(
            f"target 'q' needs an agent with Q values, {type(agent).__name__} "
            "has none (use target='logp')"
        )

    def q(obs: Tensor, h: History | None, a: Tensor) -> Tensor:
        return agent.q_values(obs, h, a)

    return TargetPath(q, history_encoders(agent), "q")


def _logp_path(agent: Agent) -> TargetPath:
    if not agent.capabilities.policy_logits:
        raise ConfigError(
            f"target 'logp' needs an agent whose scores are policy logits, "
            f"{type(agent).__name__}'s are not"
        )

    def logp(obs: Tensor, h: History | None, a: Tensor) -> Tensor:
        return agent.action_log_probs(obs, h, a)

    return TargetPath(logp, history_encoders(agent), "logp")


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
