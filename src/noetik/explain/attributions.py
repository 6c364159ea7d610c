"""Attributions of one decision to its inputs, with Captum: one verb, :func:`attribute`.

>>> a = attribute(agent, obs, history)                 # IG of the chosen action's Q
>>> a.groups["hist.tags"], a.history[:, -1], a.delta    # state slice, last video, IG error

Inputs that are attributed, jointly (Captum with several inputs):

* the state ``obs`` (B, 128), reported per dimension (``state``, named by
  :func:`~noetik.data.state_layout.state_feature_names`) and per named slice (``groups``);
* for history agents (History Transformer), each past interaction: its **item embedding**
  (the output of every read encoder's ``item_emb`` layer, plus projected side features; IQL's
  twin critics each have their own), its 12 feedback **signals** and its **gap** to the
  decision, both in the encoder's input scale (``sign(s) log1p(|s|)``, ``log1p(seconds)``,
  whose zero is the raw zero: the IG path is then straight where the network reads it).
  ``history[b, k]`` is the sum over position ``k``'s embedding, signal and gap dimensions
  (``history_parts`` keeps the three terms apart); padding positions are exactly 0.

Methods: ``integrated_gradients`` (Sundararajan et al. 2017; Gauss-Legendre, all ``n_steps``
in one forward; ``delta`` = sum of attributions - (target - baseline_target), Captum's
convergence delta, computed from the forward that gives the targets), ``saliency``
(|gradient|), ``input_x_gradient``, and ``layer_integrated_gradients`` on the item-embedding
layer(s) only (items -> padding, i.e. zero embeddings; state and signals fixed; ``state`` is
then all zeros). Baselines of ``integrated_gradients``: ``"zeros"`` state and zero history
inputs (the mask is kept), ``"mean"`` the batch's mean state, or a tensor (D,) / (B, D).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import torch
from captum.attr import (  # type: ignore[import-untyped]
    InputXGradient,
    IntegratedGradients,
    LayerIntegratedGradients,
    Saliency,
)
from torch import Tensor

from noetik.agents.core.base import Agent
from noetik.agents.core.serving import best_actions
from noetik.agents.networks.encoders import History
from noetik.data.state_layout import STATE_DIM, STATE_SLICES, state_feature_names
from noetik.errors import ConfigError
from noetik.explain.targets import (
    TARGETS,
    Target,
    TargetPath,
    default_target,
    item_vectors,
    item_vectors_override,
    read_encoders,
    target_path,
    unfused,
)
from noetik.simulators.kuairand.model import FittedSimulator

__all__ = [
    "METHODS",
    "Attribution",
    "Method",
    "Target",
    "attribute",
    "evaluating",
    "group_sums",
    "to_agent",
]

Method = Literal[
    "integrated_gradients", "saliency", "input_x_gradient", "layer_integrated_gradients"
]
METHODS: tuple[str, ...] = get_args(Method)
#: Most rows (steps x decisions) per Captum forward pass.
MAX_ROWS = 4096


@dataclass(frozen=True)
class Attribution:
    """Attributions of B decisions (numpy, on the host)."""

    state: np.ndarray
    """(B, D) float32 attribution of each state dimension."""
    feature_names: tuple[str, ...]
    """D names of the state dimensions (``state_layout`` names when D = 128)."""
    groups: dict[str, np.ndarray]
    """Slice name -> (B,) float32 sum of ``state`` over the slice (empty when D != 128)."""
    history: np.ndarray | None
    """(B, K) float32 attribution of each history position (item embedding + signals + gap;
    0 at padding), None for agents without history."""
    history_mask: np.ndarray | None
    """(B, K) bool, true at valid history positions (None without history)."""
    target: np.ndarray
    """(B,) float32 target at the input."""
    baseline_target: np.ndarray
    """(B,) float32 target at the baseline (IG's; layer IG: items replaced by padding)."""
    delta: np.ndarray | None
    """(B,) float32 IG convergence delta (None for saliency and input x gradient)."""
    method: str
    """The attribution method."""
    target_kind: str
    """``"q"``, ``"logp"`` or ``"signal"``."""
    actions: np.ndarray
    """(B,) int64 explained actions."""
    history_parts: dict[str, np.ndarray] | None = None
    """``{"item", "signals", "gap"}`` -> (B, K) float32 terms of ``history`` (they sum to it)."""
    signal_attr: np.ndarray | None = None
    """(B, K, 12) float32 attribution of each past interaction's feedback signals."""


@contextlib.contextmanager
def evaluating(agent: Agent) -> Iterator[None]:
    """Within the block: ``agent`` in eval mode, gradients on (even inside a caller's
    ``no_grad``/``inference_mode``), Captum's input-gradient warnings silenced."""
    was = agent.training
    if was:
        agent.train(False)
    try:
        with torch.inference_mode(False), torch.enable_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*require gradients.*")
            warnings.filterwarnings("ignore", message="Multiple layers provided.*")
            yield
    finally:
        if was:
            agent.train(True)


def to_agent(agent: Agent, obs: Tensor, history: History | None) -> tuple[Tensor, History | None]:
    """``obs`` and ``history`` on the device and in the float dtype of ``agent``'s parameters."""
    param = next(agent.parameters(), None)
    dtype = param.dtype if param is not None else torch.float32
    device = param.device if param is not None else obs.device
    if history is not None:
        history = History(
            history.items.to(device),
            history.signals.to(device, dtype),
            history.gap_s.to(device, dtype),
            history.mask.to(device),
        )
    return obs.to(device=device, dtype=dtype), history


def group_sums(state: np.ndarray) -> dict[str, np.ndarray]:
    """Slice name -> (B,) float32 sums of ``state`` (B, 128) over each named state slice."""
    if state.shape[1] != STATE_DIM:
        return {}
    return {n: state[:, s].sum(axis=1).astype(np.float32) for n, s in STATE_SLICES.items()}


def _names(dim: int) -> tuple[str, ...]:
    return tuple(state_feature_names()) if dim == STATE_DIM else tuple(f"x{i}" for i in range(dim))


def _state_baseline(obs: Tensor, baseline: str | Tensor) -> Tensor:
    if isinstance(baseline, Tensor):
        base = baseline.to(obs)
        if base.shape not in (obs.shape, obs.shape[1:]):
            raise ConfigError(
                f"baseline must have shape {tuple(obs.shape)} or "
                f"({obs.shape[1]},), got {tuple(base.shape)}"
            )
        return base.expand_as(obs).contiguous()
    if baseline == "zeros":
        return torch.zeros_like(obs)
    if baseline == "mean":
        return obs.mean(0, keepdim=True).expand_as(obs).contiguous()
    raise ConfigError(f"baseline must be 'zeros', 'mean' or a tensor, got {baseline!r}")


@dataclass(frozen=True)
class _Problem:
    """Captum inputs, baselines, extra forward arguments and the forward function."""

    inputs: tuple[Tensor, ...]
    baselines: tuple[Tensor, ...]
    extra: tuple[Tensor, ...]
    forward: Callable[..., Tensor]


def _problem(
    path: TargetPath, obs: Tensor, h: History | None, actions: Tensor, base: Tensor
) -> _Problem:
    """Inputs ``(obs[, item vectors, signals, gaps])`` and the matching forward function."""
    if h is None or not path.encoders:

        def state_only(x: Tensor, a: Tensor) -> Tensor:
            return path.fn(x, h if h is None else _tile(h, len(x)), a)

        return _Problem((obs,), (base,), (actions,), state_only)
    with torch.no_grad():
        vecs = item_vectors(path.encoders, h.items).to(obs.dtype)
    # signals and gaps move along the path in the encoder's own input scale (symlog, log1p):
    # linear in raw seconds, the path would cross log1p's steep start (delta of ~40 %)
    signals = torch.sign(h.signals) * torch.log1p(h.signals.abs())
    gaps = torch.log1p(h.gap_s.clamp_min(0.0))
    inputs = (obs, vecs, signals, gaps)
    baselines = (base, torch.zeros_like(vecs), torch.zeros_like(signals), torch.zeros_like(gaps))

    def joint(*args: Tensor) -> Tensor:
        x, v, s, g, items, mask, a = args
        raw = torch.where(s >= 0, torch.expm1(s), -torch.expm1(-s))
        with item_vectors_override(path.encoders, v):
            return path.fn(x, History(items, raw, torch.expm1(g), mask), a)

    return _Problem(inputs, baselines, (h.items, h.mask, actions), joint)


def _tile(h: History, n: int) -> History:
    """``h`` repeated (step-major) to ``n`` rows, as Captum expands extra arguments."""
    reps = n // h.items.shape[0]
    return History(*(t.repeat(reps, *([1] * (t.dim() - 1))) for t in vars(h).values()))


@dataclass(frozen=True)
class _Options:
    method: str
    n_steps: int
    rows: int
    """Most rows per Captum forward (``internal_batch_size``)."""
    ig_method: str
    """Captum's integration rule (``gausslegendre``, ``riemann_trapezoid``...)."""
    vary: str = "all"
    """Inputs that are attributed (``all``, ``state``, ``history``); the others are held."""


def _hold(p: _Problem, vary: str) -> _Problem:
    """``p`` with the inputs that do not vary held at their values (baseline = input)."""
    if vary == "all" or len(p.inputs) == 1:
        return p
    moving = [vary == "state"] + [vary == "history"] * (len(p.inputs) - 1)
    bases = tuple(b if m else x for x, b, m in zip(p.inputs, p.baselines, moving, strict=True))
    return _Problem(p.inputs, bases, p.extra, p.forward)


def _run_method(p: _Problem, o: _Options) -> tuple[Tensor, ...]:
    """Captum attributions of every input (IG: all steps in one batched forward); held
    inputs (``o.vary``) get zeros."""
    attrs = _captum(p, o)
    if o.vary == "all" or len(attrs) == 1:
        return attrs
    return tuple(
        a if (i == 0) == (o.vary == "state") else torch.zeros_like(a) for i, a in enumerate(attrs)
    )


def _captum(p: _Problem, o: _Options) -> tuple[Tensor, ...]:
    if o.method == "integrated_gradients":
        ig = IntegratedGradients(p.forward)
        attrs = ig.attribute(
            p.inputs,
            baselines=p.baselines,
            additional_forward_args=p.extra,
            n_steps=o.n_steps,
            method=o.ig_method,
            internal_batch_size=o.rows,
        )
        return tuple(attrs)
    if o.method == "saliency":
        out = Saliency(p.forward).attribute(p.inputs, additional_forward_args=p.extra, abs=True)
        return tuple(out)
    return tuple(InputXGradient(p.forward).attribute(p.inputs, additional_forward_args=p.extra))


def _layer_ig(
    path: TargetPath, obs: Tensor, h: History, actions: Tensor, o: _Options
) -> tuple[Tensor, Tensor, Tensor]:
    """Layer IG on the item-embedding layers: ``(per-position (B, K), baseline target, delta)``."""
    pad = torch.full_like(h.items, _pad_index(path))

    def forward(*args: Tensor) -> Tensor:
        items, x, s, g, mask, a = args
        return path.fn(x, History(items, s, g, mask), a)

    layers = [enc.item_emb for enc in path.encoders]
    lig = LayerIntegratedGradients(forward, layers)
    extra = (obs, h.signals, h.gap_s, h.mask, actions)
    attrs, delta = lig.attribute(
        h.items,
        baselines=pad,
        additional_forward_args=extra,
        n_steps=o.n_steps,
        method=o.ig_method,
        internal_batch_size=o.rows,
        return_convergence_delta=True,
    )
    per_layer = attrs if isinstance(attrs, list) else [attrs]
    positions = torch.stack([t.sum(-1) for t in per_layer]).sum(0)
    with torch.no_grad():
        base_target = forward(pad, *extra)
    return positions * h.mask, base_target, delta


def _pad_index(path: TargetPath) -> int:
    emb: torch.nn.Embedding = path.encoders[0].item_emb  # type: ignore[assignment]
    return emb.num_embeddings - 1


def _check(obs: Tensor, method: str, n_steps: int) -> None:
    if obs.dim() != 2 or obs.shape[0] < 1:
        raise ConfigError(f"obs must be (B, D) with B >= 1, got shape {tuple(obs.shape)}")
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if n_steps < 1:
        raise ConfigError(f"n_steps must be >= 1, got {n_steps}")


def _host(t: Tensor) -> np.ndarray:
    return t.detach().cpu().float().numpy()


def attribute(
    agent: Agent,
    obs: Tensor,
    history: History | None = None,
    *,
    actions: Tensor | None = None,
    method: Method = "integrated_gradients",
    target: Target | None = None,
    n_steps: int = 32,
    baseline: str | Tensor = "zeros",
    simulator: FittedSimulator | None = None,
    signal: str = "is_click",
    ig_method: str = "gausslegendre",
    vary: Literal["all", "state", "history"] = "all",
) -> Attribution:
    """Attribute ``target`` of ``agent``'s decisions to the state and history (module docs).

    ``obs`` (B, D) float, ``history`` the agent's :class:`History` (K positions) or None,
    ``actions`` (B,) int64 (default: the agent's argmax of ``scores``), ``target`` ``"q"`` |
    ``"logp"`` | ``"signal"`` (default: ``"q"`` when the agent has Q values, else ``"logp"``;
    ``"signal"`` needs ``simulator``, ``signal`` names its head). ``ig_method`` is Captum's
    integration rule (``"riemann_trapezoid"`` converges more predictably on ReLU networks and
    IQL's ``min`` of twin critics, whose kinks slow Gauss-Legendre). ``vary``: which inputs
    are attributed; ``"history"`` holds the state at its value (IG's state baseline = the
    state, so the history attributions sum to target - target with the history at its
    baseline, the effect deleting it has), ``"state"`` holds the history; the held inputs get
    zero attribution. Computation runs in the
    dtype and on the device of the agent's parameters (``agent.double()`` for float64).
    """
    _check(obs, method, n_steps)
    if vary not in ("all", "state", "history"):
        raise ConfigError(f"vary must be 'all', 'state' or 'history', got {vary!r}")
    kind = target or default_target(agent)
    if kind not in TARGETS:
        raise ConfigError(f"target must be one of {', '.join(TARGETS)}, got {kind!r}")
    obs, h = to_agent(agent, obs, history)
    device = obs.device
    with evaluating(agent):
        if actions is None:
            with torch.no_grad():
                actions = best_actions(agent, obs, h)
        actions = actions.to(device=device, dtype=torch.int64)
        rows = max(obs.shape[0], min(obs.shape[0] * n_steps, MAX_ROWS))
        o = _Options(method, n_steps, rows, ig_method, vary)
        with unfused(agent):  # fused critics member by member: their encoders are hookable
            path = target_path(agent, kind, simulator=simulator, signal=signal)
            path = read_encoders(path, obs, h)
            if method == "layer_integrated_gradients":
                return _layer_attribution(path, obs, h, actions, o)
            base = _state_baseline(obs, baseline)
            return _input_attribution(path, obs, h, actions, o=o, base=base)


def _input_attribution(
    path: TargetPath, obs: Tensor, h: History | None, actions: Tensor, *, o: _Options, base: Tensor
) -> Attribution:
    p = _hold(_problem(path, obs, h, actions, base), o.vary)
    attrs = _run_method(p, o)
    both = tuple(torch.cat([x, b]) for x, b in zip(p.inputs, p.baselines, strict=True))
    extra = tuple(torch.cat([e, e]) for e in p.extra)
    with torch.no_grad():  # target and baseline target in one forward
        values = p.forward(*both, *extra)
    b = obs.shape[0]
    delta = None
    if o.method == "integrated_gradients":  # Captum's convergence delta, without 2 more passes
        total = torch.stack([t.flatten(1).sum(1) for t in attrs]).sum(0)
        delta = total - (values[:b] - values[b:])
    state = _host(attrs[0])
    hist = parts = sig = mask = None
    if h is not None:
        mask = h.mask.cpu().numpy()
        if len(attrs) > 1:
            item, sig_t, gap = attrs[1].sum(-1), attrs[2], attrs[3]
            sig = _host(sig_t * h.mask.unsqueeze(-1))
            parts = {
                "item": _host(item * h.mask),
                "signals": sig.sum(-1),
                "gap": _host(gap * h.mask),
            }
            hist = (parts["item"] + parts["signals"] + parts["gap"]).astype(np.float32)
        else:  # the target does not read the history (e.g. the simulator's signal)
            hist = np.zeros(mask.shape, dtype=np.float32)
    return Attribution(
        state=state,
        feature_names=_names(obs.shape[1]),
        groups=group_sums(state),
        history=hist,
        history_mask=mask,
        target=_host(values[:b]),
        baseline_target=_host(values[b:]),
        delta=None if delta is None else _host(delta),
        method=o.method,
        target_kind=path.kind,
        actions=actions.cpu().numpy().astype(np.int64),
        history_parts=parts,
        signal_attr=sig,
    )


def _layer_attribution(
    path: TargetPath, obs: Tensor, h: History | None, actions: Tensor, o: _Options
) -> Attribution:
    if h is None or not path.encoders:
        raise ConfigError(
            "method 'layer_integrated_gradients' needs a history agent and a "
            "target that reads the history (q or logp)"
        )
    positions, base_target, delta = _layer_ig(path, obs, h, actions, o)
    with torch.no_grad():
        value = path.fn(obs, h, actions)
    state = np.zeros(tuple(obs.shape), dtype=np.float32)
    hist = _host(positions)
    return Attribution(
        state=state,
        feature_names=_names(obs.shape[1]),
        groups=group_sums(state),
        history=hist,
        history_mask=h.mask.cpu().numpy(),
        target=_host(value),
        baseline_target=_host(base_target),
        delta=_host(delta),
        method="layer_integrated_gradients",
        target_kind=path.kind,
        actions=actions.cpu().numpy().astype(np.int64),
        history_parts={"item": hist, "signals": np.zeros_like(hist), "gap": np.zeros_like(hist)},
    )
