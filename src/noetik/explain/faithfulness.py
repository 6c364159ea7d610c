"""Faithfulness of attributions: deletion/insertion curves, comprehensiveness, sufficiency.

An attribution ranks *units* of a decision's input: its history positions (``unit="history"``)
or the named slices of its state (``unit="state"``, 19 groups of
:data:`~noetik.data.state_layout.STATE_SLICES`). With the units ordered by attribution
(highest first, over each decision's valid units only):

* **deletion** curve ``del[j]``: the target after removing the top ``j`` units, j = 0..U;
* **insertion** curve ``ins[j]``: the target when only the top ``j`` units are present.

Removing a history position sets its item, signals and gap to IG's baseline
(``history_removal="baseline"``, the default: padding item, zero signals, zero gap; the
position stays attended) or masks it out of the history (``"mask"``: the interaction is gone,
as if never logged). Removing a state slice sets its dimensions to the baseline state
(zeros). Attributions that order the units are computed with the rest of the input held
(``attribute(..., vary=unit)``), as the curves hold it. Both curves run from the full
input ``f_full`` to the all-removed input ``f_empty`` (or back), the same endpoints for every
method, so the methods differ only in between. Per decision with ``n`` valid units:

* ``deletion_auc`` = mean(trapezoid area of ``del - f_empty`` over x = j / n) /
  mean(``f_full - f_empty``) (ratio of means over decisions; lower is more faithful);
* ``insertion_auc`` likewise from ``ins`` (higher is more faithful);
* ``comprehensiveness`` = mean over k in ``ks`` of ``f_full - del[k]`` (DeYoung et al. 2020,
  ERASER; higher is better), ``sufficiency`` = mean over k of ``f_full - ins[k]`` (lower is
  better), in target units; k beyond n means all n units.

The ``random`` method orders units by uniform random scores (``n_random`` seeded
permutations, curves averaged per decision). Every number comes with a percentile bootstrap
interval over decisions (``seed``-ed).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import Tensor

from noetik.agents.core.base import Agent
from noetik.agents.core.serving import best_actions
from noetik.agents.networks.encoders import History
from noetik.data.state_layout import STATE_DIM, STATE_SLICES
from noetik.errors import ConfigError
from noetik.explain.attention import attention_rollout, attention_weights
from noetik.explain.attributions import METHODS, attribute, evaluating, to_agent
from noetik.explain.targets import Target, default_target, target_path, unfused
from noetik.simulators.kuairand.model import FittedSimulator
from noetik.utils.bootstrap import bootstrap_means

__all__ = [
    "FAITHFULNESS_METHODS",
    "FaithfulnessConfig",
    "FaithfulnessCurves",
    "Perturbation",
    "curve_metrics",
    "deletion_curve",
    "faithfulness",
    "faithfulness_curves",
    "insertion_curve",
    "summarize",
    "unit_scores",
]

#: Methods :func:`faithfulness` accepts: the attribution methods, attention rollout, random.
FAITHFULNESS_METHODS: tuple[str, ...] = (*METHODS, "attention_rollout", "random")
Unit = Literal["history", "state"]
#: ``(obs (N, D), history | None, rows (N,) int64) -> (N,)`` target of N inputs; ``rows[i]``
#: is the decision (0..B-1) input ``i`` is a variant of (to pick that decision's action).
Scorer = Callable[[Tensor, History | None, Tensor], Tensor]


@dataclass(frozen=True)
class FaithfulnessConfig:
    """How faithfulness is measured."""

    ks: tuple[int, ...] = (1, 2, 3, 5)
    """Numbers of top units removed (comprehensiveness) or kept (sufficiency), averaged."""
    n_random: int = 5
    """Random permutations averaged by the ``random`` method."""
    seed: int = 0
    """Seed of the random permutations and of the bootstrap."""
    history_removal: Literal["mask", "baseline"] = "baseline"
    """How a history position is removed: set to IG's baseline (the default: what IG's
    attributions are relative to), or masked out (module docs)."""
    n_steps: int = 32
    """Integration steps of the IG methods."""
    n_bootstrap: int = 1000
    """Bootstrap resamples of the decisions for the intervals."""
    confidence: float = 0.95
    """Coverage of the percentile bootstrap intervals."""
    max_rows: int = 8192
    """Most inputs per forward pass when the curves are evaluated."""

    def __post_init__(self) -> None:
        if not self.ks or min(self.ks) < 1:
            raise ConfigError(f"ks must be positive unit counts, got {self.ks}")
        if self.n_random < 1 or self.n_bootstrap < 1 or self.n_steps < 1 or self.max_rows < 1:
            raise ConfigError("n_random, n_bootstrap, n_steps and max_rows must be >= 1")
        if self.history_removal not in ("mask", "baseline"):
            raise ConfigError(f"history_removal must be mask|baseline: {self.history_removal!r}")
        if not 0.0 < self.confidence < 1.0:
            raise ConfigError(f"confidence must be in (0, 1), got {self.confidence}")


@dataclass(frozen=True)
class FaithfulnessCurves:
    """Deletion and insertion curves of B decisions over U units."""

    deletion: np.ndarray
    """(B, U + 1) float64 target after removing the top j units, j = 0..U."""
    insertion: np.ndarray
    """(B, U + 1) float64 target with only the top j units present."""
    n_units: np.ndarray
    """(B,) int64 valid units of each decision (the curves are flat beyond)."""
    method: str = ""
    """The attribution method that ordered the units."""
    unit: str = "history"
    """``"history"`` positions or ``"state"`` slices."""
    extra: dict[str, float] = field(default_factory=dict)
    """Side numbers (e.g. ``mean_abs_delta`` of IG)."""


def _state_groups(dim: int) -> np.ndarray:
    """(U, D) bool membership of the state units: named slices (D = 128) or single dims."""
    if dim != STATE_DIM:
        return np.eye(dim, dtype=bool)
    groups = np.zeros((len(STATE_SLICES), dim), dtype=bool)
    for i, cols in enumerate(STATE_SLICES.values()):
        groups[i, cols] = True
    return groups


def _ranks(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(B, U) int64 rank of each unit (0 = highest score; invalid units rank last)."""
    keyed = np.where(valid, -np.asarray(scores, dtype=np.float64), np.inf)
    order = np.argsort(keyed, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(order.shape[1])[None, :], axis=1)
    return ranks


def _present(ranks: np.ndarray, valid: np.ndarray, deletion: bool) -> np.ndarray:
    """(U + 1, B, U) bool units present at each step j of the deletion/insertion curve."""
    steps = np.arange(ranks.shape[1] + 1)[:, None, None]
    top = ranks[None] < steps
    return valid[None] & (~top if deletion else top)


@dataclass(frozen=True)
class Perturbation:
    """How units are removed (see the module docs)."""

    unit: Unit = "history"
    """``"history"``: history positions; ``"state"``: named state slices (single dims when
    D != 128)."""
    removal: Literal["mask", "baseline"] = "mask"
    """History positions: masked out, or set to IG's baseline (padding item, zero inputs)."""
    pad_index: int | None = None
    """Padding item (``n_actions``), needed by ``removal="baseline"``."""
    baseline: Tensor | None = None
    """State units: (D,) or (B, D) values of removed dimensions (default zeros)."""
    max_rows: int = 8192
    """Most inputs per forward pass."""


def _variant(
    obs: Tensor, history: History | None, keep: Tensor, rows: Tensor, how: Perturbation
) -> tuple[Tensor, History | None]:
    """Inputs of decisions ``rows`` (N,) with only the units ``keep`` (N, U) present."""
    x, h = obs[rows], None
    if history is not None:
        h = History(
            *(t[rows] for t in (history.items, history.signals, history.gap_s, history.mask))
        )
    if how.unit == "state":
        groups = torch.as_tensor(_state_groups(x.shape[1]), device=x.device, dtype=x.dtype)
        dims = (keep.to(x.dtype) @ groups) > 0
        base = torch.zeros_like(obs) if how.baseline is None else how.baseline.to(obs)
        return torch.where(dims, x, base.expand_as(obs)[rows]), h
    if h is None:
        raise ConfigError("unit 'history' needs a history")
    if how.removal == "mask":
        return x, History(h.items, h.signals, h.gap_s, h.mask & keep)
    if how.pad_index is None:
        raise ConfigError("history removal 'baseline' needs pad_index (the agent's n_actions)")
    items = h.items.masked_fill(~keep, how.pad_index)
    return x, History(items, h.signals * keep.unsqueeze(-1), h.gap_s * keep, h.mask)


def _valid(history: History | None, scores: np.ndarray, how: Perturbation) -> np.ndarray:
    """(B, U) bool units that exist: the history mask, or every state unit."""
    if how.unit == "history" and history is not None:
        return history.mask.cpu().numpy()
    return np.ones(np.shape(scores), dtype=bool)


def _curve(
    scorer: Scorer,
    obs: Tensor,
    history: History | None,
    scores: np.ndarray,
    how: Perturbation,
    *,
    deletion: bool,
) -> np.ndarray:
    """(B, U + 1) float64 target along the deletion or insertion path of ``scores``."""
    if how.unit not in ("history", "state"):
        raise ConfigError(f"unit must be 'history' or 'state', got {how.unit!r}")
    valid = _valid(history, scores, how)
    present = _present(_ranks(scores, valid), valid, deletion)  # (J, B, U)
    j, b, _ = present.shape
    flat = torch.as_tensor(present.reshape(j * b, -1), device=obs.device)
    out = np.empty(j * b, dtype=np.float64)
    for lo in range(0, j * b, how.max_rows):
        keep = flat[lo : lo + how.max_rows]
        rows = torch.arange(lo, lo + len(keep), device=obs.device) % b
        x, h = _variant(obs, history, keep, rows, how)
        with torch.inference_mode():
            out[lo : lo + len(keep)] = scorer(x, h, rows).double().cpu().numpy()
    return out.reshape(j, b).T.copy()


def deletion_curve(
    scorer: Scorer,
    obs: Tensor,
    history: History | None,
    scores: np.ndarray,
    how: Perturbation | None = None,
) -> np.ndarray:
    """(B, U + 1) float64 target after removing the ``j`` highest-``scores`` valid units,
    j = 0..U (flat once all of a decision's units are gone).

    ``obs`` (B, D) float, ``history`` (K positions) or None, ``scores`` (B, U) float per unit
    (U = K positions, or the state units of ``how``), ``scorer``: see :data:`Scorer`.
    """
    return _curve(scorer, obs, history, scores, how or Perturbation(), deletion=True)


def insertion_curve(
    scorer: Scorer,
    obs: Tensor,
    history: History | None,
    scores: np.ndarray,
    how: Perturbation | None = None,
) -> np.ndarray:
    """(B, U + 1) float64 target with only the ``j`` highest-``scores`` valid units present
    (the others removed as in :func:`deletion_curve`), j = 0..U."""
    return _curve(scorer, obs, history, scores, how or Perturbation(), deletion=False)


def curve_metrics(curves: FaithfulnessCurves, ks: tuple[int, ...]) -> dict[str, np.ndarray]:
    """Per-decision terms (B,) float64 of the metrics (module docs): ``deletion_area``,
    ``insertion_area`` (areas above ``f_empty``), ``span`` (``f_full - f_empty``),
    ``comprehensiveness``, ``sufficiency``. Decisions without valid units are dropped."""
    n = curves.n_units
    keep = n > 0
    d, i, n = curves.deletion[keep], curves.insertion[keep], n[keep]
    u = d.shape[1] - 1
    full, empty = d[:, 0], d[np.arange(len(n)), n]
    segment = np.arange(u)[None, :] < n[:, None]  # trapezoids j -> j + 1 with j < n

    def area(c: np.ndarray) -> np.ndarray:
        heights = (c[:, :-1] + c[:, 1:]) / 2.0 - empty[:, None]
        out: np.ndarray = np.where(segment, heights, 0.0).sum(1) / n
        return out

    at = np.minimum(np.asarray(ks)[None, :], n[:, None])
    rows = np.arange(len(n))[:, None]
    return {
        "deletion_area": area(d),
        "insertion_area": area(i),
        "span": full - empty,
        "comprehensiveness": (full[:, None] - d[rows, at]).mean(1),
        "sufficiency": (full[:, None] - i[rows, at]).mean(1),
    }


def summarize(
    curves: FaithfulnessCurves,
    config: FaithfulnessConfig | None = None,
    reference: FaithfulnessCurves | None = None,
) -> dict[str, float]:
    """Metrics of ``curves`` with ``_lo``/``_hi`` bootstrap bounds, ``n`` (decisions),
    ``span`` (mean ``f_full - f_empty``, the AUCs' denominator: they mean little near 0) and
    ``curves.extra``; with the ``reference`` (random) curves of the same decisions also its
    metrics (``random_*``) and the paired gains over it (``*_gain``: ``deletion_auc_gain`` =
    random - method, ``insertion_auc_gain`` = method - random, ``comprehensiveness_gain`` =
    method - random, ``sufficiency_gain`` = random - method; positive = better than random)."""
    cfg = config or FaithfulnessConfig()
    m = curve_metrics(curves, cfg.ks)
    out: dict[str, float] = {"n": float(len(m["span"])), **curves.extra}

    def put(name: str, num: np.ndarray, den: np.ndarray | None) -> None:
        if not len(num):
            out[name] = out[f"{name}_lo"] = out[f"{name}_hi"] = float("nan")
            return
        mean = float(num.mean() / den.mean()) if den is not None else float(num.mean())
        est = bootstrap_means(
            {name: num},
            None if den is None else {name: den},
            n_boot=cfg.n_bootstrap,
            level=cfg.confidence,
            seed=cfg.seed,
        )[name]
        out[name], out[f"{name}_lo"], out[f"{name}_hi"] = mean, est.low, est.high

    span = m["span"]
    put("span", span, None)
    put("deletion_auc", m["deletion_area"], span)
    put("insertion_auc", m["insertion_area"], span)
    put("comprehensiveness", m["comprehensiveness"], None)
    put("sufficiency", m["sufficiency"], None)
    if reference is not None:
        r = curve_metrics(reference, cfg.ks)
        put("random_deletion_auc", r["deletion_area"], span)
        put("random_insertion_auc", r["insertion_area"], span)
        put("random_comprehensiveness", r["comprehensiveness"], None)
        put("random_sufficiency", r["sufficiency"], None)
        put("deletion_auc_gain", r["deletion_area"] - m["deletion_area"], span)
        put("insertion_auc_gain", m["insertion_area"] - r["insertion_area"], span)
        put("comprehensiveness_gain", m["comprehensiveness"] - r["comprehensiveness"], None)
        put("sufficiency_gain", r["sufficiency"] - m["sufficiency"], None)
    return out


def unit_scores(
    agent: Agent,
    obs: Tensor,
    history: History | None,
    method: str,
    *,
    target: Target,
    unit: Unit,
    actions: Tensor,
    n_steps: int = 32,
    simulator: FittedSimulator | None = None,
    signal: str = "is_click",
) -> tuple[np.ndarray, dict[str, float]]:
    """``(scores (B, U), extra)``: ``method``'s score of every unit (history positions, or
    state slices summed from the state attribution) and side numbers (IG's mean |delta|).
    Only the units' own inputs are attributed (``attribute(..., vary=unit)``): the rest of the
    input stays as it is, as it does when the curves remove units."""
    if method == "attention_rollout":
        weights = attention_weights(agent, obs, history)
        if unit != "history" or weights is None or history is None:
            raise ConfigError("attention_rollout scores history positions of attention agents")
        return attention_rollout(weights, history.mask.cpu().numpy()), {}
    if method not in METHODS:
        raise ConfigError(
            f"method must be one of {', '.join(FAITHFULNESS_METHODS)}, got {method!r}"
        )
    a = attribute(
        agent,
        obs,
        history,
        actions=actions,
        method=method,  # type: ignore[arg-type]
        target=target,  # type: ignore[arg-type]
        n_steps=n_steps,
        simulator=simulator,
        signal=signal,
        vary=unit,
    )
    extra = {} if a.delta is None else {"mean_abs_delta": float(np.abs(a.delta).mean())}
    if unit == "history":
        if a.history is None:
            raise ConfigError("unit 'history' needs an agent with a history encoder")
        return a.history, extra
    if method == "layer_integrated_gradients":
        raise ConfigError("layer_integrated_gradients attributes history positions only")
    groups = np.stack(list(a.groups.values()), axis=1) if a.groups else a.state
    return groups, extra


def faithfulness_curves(
    agent: Agent,
    obs: Tensor,
    history: History | None,
    method: str,
    target: Target | None = None,
    *,
    unit: Unit = "history",
    config: FaithfulnessConfig | None = None,
    actions: Tensor | None = None,
    simulator: FittedSimulator | None = None,
    signal: str = "is_click",
) -> FaithfulnessCurves:
    """Deletion and insertion curves of ``method`` (any of :data:`FAITHFULNESS_METHODS`) for B
    decisions ``obs`` (B, D) / ``history``, on ``target`` of ``actions`` (default: argmax)."""
    cfg = config or FaithfulnessConfig()
    kind: Target = target or default_target(agent)
    obs, history = to_agent(agent, obs, history)
    how = Perturbation(unit, cfg.history_removal, agent.spec.n_actions, None, cfg.max_rows)
    with evaluating(agent):
        if actions is None:
            with torch.no_grad():
                actions = best_actions(agent, obs, history)
        acts = actions.to(obs.device, torch.int64)
        with unfused(agent):  # fused critics member by member, as in the attributions
            path = target_path(agent, kind, simulator=simulator, signal=signal)

            def scorer(x: Tensor, h: History | None, rows: Tensor) -> Tensor:
                return path.fn(x, h, acts[rows])

            if method == "random":
                return _random_curves(scorer, obs, history, cfg, how)
            scores, extra = unit_scores(
                agent,
                obs,
                history,
                method,
                target=kind,
                unit=unit,
                actions=acts,
                n_steps=cfg.n_steps,
                simulator=simulator,
                signal=signal,
            )
            dele = deletion_curve(scorer, obs, history, scores, how)
            ins = insertion_curve(scorer, obs, history, scores, how)
    n_units = _valid(history, scores, how).sum(1)
    return FaithfulnessCurves(dele, ins, n_units, method, unit, extra)


def _random_curves(
    scorer: Scorer, obs: Tensor, history: History | None, cfg: FaithfulnessConfig, how: Perturbation
) -> FaithfulnessCurves:
    """Curves of ``n_random`` seeded random orderings, averaged per decision."""
    n_units = len(_state_groups(obs.shape[1]))
    if how.unit == "history":
        if history is None:
            raise ConfigError("unit 'history' needs a history")
        n_units = history.mask.shape[1]
    rng = np.random.default_rng(cfg.seed)
    dele = np.zeros((obs.shape[0], n_units + 1))
    ins = np.zeros_like(dele)
    for _ in range(cfg.n_random):
        scores = rng.random((obs.shape[0], n_units))
        dele += deletion_curve(scorer, obs, history, scores, how) / cfg.n_random
        ins += insertion_curve(scorer, obs, history, scores, how) / cfg.n_random
    n_valid = _valid(history, dele[:, 1:], how).sum(1)
    return FaithfulnessCurves(dele, ins, n_valid, "random", how.unit)


def faithfulness(
    agent: Agent,
    obs: Tensor,
    history: History | None,
    method: str,
    target: Target | None = None,
    *,
    unit: Unit = "history",
    config: FaithfulnessConfig | None = None,
    actions: Tensor | None = None,
    simulator: FittedSimulator | None = None,
    signal: str = "is_click",
) -> dict[str, float]:
    """Faithfulness of ``method`` on B decisions (see the module docs): deletion/insertion
    AUC, comprehensiveness and sufficiency with bootstrap intervals, the same for the random
    baseline (``random_*``) and the paired gains over it (``*_gain``); see :func:`summarize`."""
    curves, reference = (
        faithfulness_curves(
            agent,
            obs,
            history,
            m,
            target,
            unit=unit,
            config=config,
            actions=actions,
            simulator=simulator,
            signal=signal,
        )
        for m in (method, "random")
    )
    return summarize(curves, config, reference)
