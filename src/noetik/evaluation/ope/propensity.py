"""Behaviour propensities ``μ(a | s)`` of a logged dataset, for off-policy evaluation.

The logging policy of KuaiRand's standard log is unknown, so it is estimated: a behaviour
cloning model (:class:`~noetik.agents.algorithms.bc.BCAgent`, an MLP over the state) is fitted to
the training split by maximum likelihood, then **calibrated** on a separate calibration part by
temperature scaling (Guo et al., 2017, "On Calibration of Modern Neural Networks"): one
scalar ``T`` such that ``softmax(logits / T)`` minimises the negative log-likelihood (NLL) of
the calibration part's logged actions. NLL is convex in ``β = 1 / T``, so ``β`` is found by
bisection on the sign of the NLL's derivative ``mean(E_p[z] − z_a)`` (exact to ~1e-12).

Propensities are **floored** by mixing with the uniform distribution over the ``A`` actions,
``μ(a|s) = (1 − A·m) p(a|s) + m`` with ``m = min_prob``: every action keeps at least ``m``
(so no logged action is impossible and importance ratios stay below ``1 / m``) and each row
still sums to 1. Diagnostics on the calibration part: NLL and top-label expected calibration
error (ECE, ``bins`` equal-width confidence bins) before (``T = 1``) and after scaling.

**At catalogue scale** (the BC model's ``catalogue.min_actions``, 100,000 items by default) the
BC model describes items by their content and hashed ids and trains with the sampled softmax
(:mod:`noetik.agents.networks.catalogue`), and nothing builds a (rows × A) matrix:

* ``μ(a|s) = (1 − A·m) exp(f(s)_a / T − log Z_T(s)) + m`` with the chunked log-partition
  ``log Z_T(s) = logsumexp_a f(s)_a / T``
  (:func:`~noetik.agents.core.serving.softmax_log_partition`);
* ``T`` minimises the same NLL, found by safeguarded Newton steps on ``β = 1 / T``
  (:func:`newton_inverse_temperature`): its first and second derivatives,
  ``mean(E_β[z] − z_a)`` and ``mean(Var_β[z])``, come from one chunked pass over every item
  (:func:`~noetik.agents.core.serving.softmax_moments`), on at most ``catalogue_calib_rows``
  rows; a handful of passes instead of the ~50 of the bisection;
* NLL and ECE come from the same log-partitions and the chunked top-1.

The floor is ``m = min(min_prob, floor_mass / A)``: ``A·m`` never exceeds ``floor_mass``, so
at 4.37M items ``m`` is 100 times below ``1 / A`` (``min_prob`` alone would exceed it).

For the random-exposure log the behaviour policy is known exactly: a uniform draw from the
candidate pool (:func:`uniform_propensity`, ``μ = 1 / |pool|``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from noetik.agents.algorithms.bc import BCAgent, BCConfig
from noetik.agents.core import serving
from noetik.agents.core.base import Agent, ProblemSpec
from noetik.agents.core.trainer import TrainerConfig
from noetik.agents.networks.catalogue import CatalogueConfig
from noetik.agents.networks.encoders import EncoderConfig, History
from noetik.data.item_content import ItemContent
from noetik.data.transitions import Transitions, episode_links
from noetik.errors import ConfigError, DataError
from noetik.utils.io import write_json

__all__ = [
    "Propensity",
    "PropensityConfig",
    "PropensityModel",
    "UniformPropensity",
    "calibration_split",
    "expected_calibration_error",
    "fit_propensity",
    "fit_temperature",
    "newton_inverse_temperature",
    "subset_episodes",
    "uniform_propensity",
]


@dataclass(frozen=True)
class PropensityConfig:
    """How the behaviour policy is estimated from a log."""

    steps: int = 2_000
    """Gradient steps of the behaviour cloning model on the training part."""
    batch_size: int = 512
    """Transitions per BC gradient step."""
    lr: float = 1e-3
    """AdamW learning rate of the BC model."""
    hidden: tuple[int, ...] = (256, 256)
    """Hidden sizes of the BC model's MLP state encoder."""
    weight_decay: float = 0.0
    """AdamW decoupled weight decay of the BC model."""
    seed: int = 0
    """Seed of the BC weights and batches and of the calibration row subsample."""
    device: str = "cpu"
    """Torch device of the BC model (``"auto"``, ``"cpu"``, ``"cuda"``...)."""
    calibration: str = "temperature"
    """``"temperature"`` (fit ``T`` on the calibration part) or ``"none"`` (``T = 1``)."""
    calib_fraction: float = 0.1
    """Share of the training split's episodes (the latest ones) held out for calibration."""
    calib_max_rows: int = 10_000
    """At most this many calibration rows (a seeded random subset) fit ``T`` and give the
    diagnostics; their (rows, A) logits are held in memory."""
    min_prob: float = 1e-6
    """Floor of every propensity (uniform mixture, see the module doc), at most
    ``floor_mass / A`` (:meth:`floor`)."""
    floor_mass: float = 0.01
    """Largest share of μ's mass the floor spreads uniformly: ``m = min(min_prob,
    floor_mass / A)``, so ``A·m <= floor_mass`` and ``m`` stays well below ``1 / A``."""
    catalogue: CatalogueConfig = field(default_factory=CatalogueConfig)
    """How the BC model represents items; from ``catalogue.min_actions`` actions on, by content
    and hashed ids, trained by sampled softmax and scored chunk by chunk (module doc)."""
    catalogue_calib_rows: int = 256
    """At catalogue scale, at most this many calibration rows fit ``T`` and give the
    diagnostics (each Newton step scores every item for each of them, chunk by chunk)."""
    ece_bins: int = 15
    """Equal-width confidence bins of the expected calibration error."""
    chunk_rows: int = 4_096
    """Rows per forward pass when computing propensities."""

    def __post_init__(self) -> None:
        sizes = (self.steps, self.batch_size, self.calib_max_rows, self.catalogue_calib_rows)
        if min(*sizes, self.ece_bins) < 1:
            raise ConfigError(
                "propensity steps, batch_size, calib_max_rows, catalogue_calib_rows and "
                "ece_bins must be >= 1"
            )
        if self.chunk_rows < 1 or not self.hidden or min(self.hidden) < 1:
            raise ConfigError("propensity chunk_rows and hidden sizes must be >= 1")
        if self.calibration not in ("temperature", "none"):
            raise ConfigError(
                f"propensity calibration must be 'temperature' or 'none', got {self.calibration!r}"
            )
        if not all(0.0 < v < 1.0 for v in (self.calib_fraction, self.min_prob, self.floor_mass)):
            raise ConfigError(
                "propensity calib_fraction, min_prob and floor_mass must be in (0, 1)"
            )

    def floor(self, n_actions: int) -> float:
        """The floor ``m = min(min_prob, floor_mass / A)`` of ``n_actions`` = A actions."""
        return min(self.min_prob, self.floor_mass / n_actions)

    def key(self) -> str:
        """A short stable hash of every field (part of a cache key)."""
        text = json.dumps(dataclasses.asdict(self), sort_keys=True)
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class Propensity(Protocol):
    """Anything that gives the behaviour probability of logged actions."""

    def prob_of(
        self, obs: np.ndarray | Tensor, actions: np.ndarray, history: History | None = None
    ) -> np.ndarray:
        """(B,) float64 ``μ(a_i | s_i)`` of ``actions`` (B,) int64 in states ``obs`` (B, D)."""


@dataclass(frozen=True)
class UniformPropensity:
    """The random-exposure log's behaviour: a uniform draw from a pool of ``pool_size`` items."""

    pool_size: int
    """Number of candidate videos the random log drew from."""

    def prob_of(
        self, obs: np.ndarray | Tensor, actions: np.ndarray, history: History | None = None
    ) -> np.ndarray:
        """(B,) float64, every entry ``1 / pool_size`` (``actions`` (B,) int64)."""
        return np.full(len(actions), 1.0 / self.pool_size, dtype=np.float64)


def uniform_propensity(pool_size: int) -> UniformPropensity:
    """The exact propensity of a random-exposure log over a pool of ``pool_size`` items."""
    if pool_size < 1:
        raise ConfigError(f"pool_size must be >= 1, got {pool_size}")
    return UniformPropensity(pool_size)


def _as_tensor(obs: np.ndarray | Tensor, device: torch.device) -> Tensor:
    return torch.as_tensor(
        np.asarray(obs) if not isinstance(obs, Tensor) else obs, dtype=torch.float32, device=device
    )


def _slice_history(history: History | None, lo: int, hi: int) -> History | None:
    if history is None:
        return None
    return History(
        history.items[lo:hi], history.signals[lo:hi], history.gap_s[lo:hi], history.mask[lo:hi]
    )


def _floored(p: Tensor, n_actions: int, floor: float) -> Tensor:
    """``(1 − A·m) p + m``: probabilities ``p`` (any shape) mixed with the uniform floor."""
    return (1.0 - n_actions * floor) * p + floor


class PropensityModel:
    """A calibrated, floored behaviour model: ``μ(·|s) = (1 − A·m) softmax(f(s) / T) + m``.

    ``diagnostics`` holds ``temperature``, ``nll_before``/``nll_after`` and
    ``ece_before``/``ece_after`` on the calibration part, and ``calib_rows``. At catalogue
    scale (:attr:`catalogue`) :meth:`prob_of` never builds the (B, A) probabilities;
    :meth:`scores` and :meth:`probs` do, for small action spaces.
    """

    def __init__(
        self,
        agent: BCAgent,
        temperature: float,
        min_prob: float,
        diagnostics: dict[str, float],
        chunk_rows: int = 4_096,
    ) -> None:
        n = agent.spec.n_actions
        if not temperature > 0.0 or not 0.0 < n * min_prob < 1.0:
            raise ConfigError(
                f"need temperature > 0 and n_actions * min_prob in (0, 1), got "
                f"T={temperature}, {n} * {min_prob}"
            )
        self.agent, self.temperature, self.min_prob = agent, float(temperature), float(min_prob)
        self.diagnostics, self.chunk_rows = dict(diagnostics), chunk_rows
        self.agent.eval()

    @property
    def n_actions(self) -> int:
        """``A``, the size of the action space."""
        return int(self.agent.spec.n_actions)

    @property
    def device(self) -> torch.device:
        """The device of the BC model."""
        return self.agent.device

    @property
    def encoder(self) -> Any:
        """The BC model's state encoder (tells evaluators whether a History is needed)."""
        return self.agent.encoder

    @property
    def catalogue(self) -> bool:
        """Whether the BC model scores its items chunk by chunk (catalogue scale)."""
        return bool(self.agent.catalogue_scorers())

    @torch.no_grad()
    def scores(self, obs: Tensor, history: History | None = None) -> Tensor:
        """(B, A) float32 ``log μ(·|s)``; ``softmax`` of them is ``μ`` again, so the model can
        stand in for an agent (a target policy equal to the behaviour policy)."""
        return torch.log(
            self._mix(torch.softmax(self.agent.scores(obs, history) / self.temperature, dim=-1))
        )

    def _mix(self, p: Tensor) -> Tensor:
        return _floored(p, self.n_actions, self.min_prob)

    @torch.no_grad()
    def probs(self, obs: np.ndarray | Tensor, history: History | None = None) -> np.ndarray:
        """(B, A) float64 ``μ(·|s)`` of states ``obs`` (B, D); every entry >= ``min_prob``."""
        x = _as_tensor(obs, self.agent.device)
        parts = [
            self.scores(
                x[lo : lo + self.chunk_rows], _slice_history(history, lo, lo + self.chunk_rows)
            )
            .exp()
            .double()
            for lo in range(0, x.shape[0], self.chunk_rows)
        ]
        return torch.cat(parts).cpu().numpy() if parts else np.zeros((0, self.n_actions))

    @torch.no_grad()
    def prob_of(
        self, obs: np.ndarray | Tensor, actions: np.ndarray, history: History | None = None
    ) -> np.ndarray:
        """(B,) float64 ``μ(a_i | s_i)`` of ``actions`` (B,) int64 in states ``obs`` (B, D);
        at catalogue scale ``(1 − A·m) exp(f_a / T − log Z_T) + m`` with the chunked
        log-partition (one pass over every item per row)."""
        x = _as_tensor(obs, self.agent.device)
        a = torch.as_tensor(np.asarray(actions), dtype=torch.int64, device=x.device)
        out = torch.empty(x.shape[0], dtype=torch.float64, device=x.device)
        for lo in range(0, x.shape[0], self.chunk_rows):
            hi = lo + self.chunk_rows
            part = _slice_history(history, lo, hi)
            if self.catalogue:
                t = self.temperature
                score = self.agent.action_scores(x[lo:hi], part, a[lo:hi]).double() / t
                lse = serving.softmax_log_partition(self.agent, x[lo:hi], part, t).double()
                out[lo:hi] = self._mix(torch.exp(score - lse))
            else:
                logp = self.scores(x[lo:hi], part)
                out[lo:hi] = logp.gather(1, a[lo:hi, None])[:, 0].double().exp()
        return out.cpu().numpy()

    def save(self, directory: Path) -> Path:
        """Write the BC model and ``propensity.json`` into ``directory`` (atomically)."""
        tmp = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        self.agent.save(tmp)
        write_json(
            tmp / "propensity.json",
            {
                "temperature": self.temperature,
                "min_prob": self.min_prob,
                "diagnostics": self.diagnostics,
            },
        )
        shutil.rmtree(directory, ignore_errors=True)
        tmp.rename(directory)
        return directory

    @classmethod
    def load(cls, directory: Path, device: str | None = None) -> PropensityModel:
        """The model written by :meth:`save`."""
        meta = json.loads((directory / "propensity.json").read_text())
        agent = Agent.load(directory, device=device)
        if not isinstance(agent, BCAgent):
            raise DataError(directory, "not a behaviour cloning propensity model")
        return cls(agent, meta["temperature"], meta["min_prob"], meta["diagnostics"])


def subset_episodes(t: Transitions, rows: np.ndarray) -> Transitions:
    """The rows ``rows`` (R,) bool or int64 of ``t`` as new Transitions (whole episodes are
    expected; ``done``/``next_index`` are recomputed from ``episode_id``)."""
    idx = np.flatnonzero(rows) if np.asarray(rows).dtype == np.bool_ else np.asarray(rows)
    names = ("obs", "action", "reward", "episode_id", "step", "user_id", "time_ms", "signals")
    arrays = {name: getattr(t, name)[idx] for name in names}
    done, next_index = episode_links(arrays["episode_id"])
    return dataclasses.replace(t, done=done, next_index=next_index, **arrays)


def calibration_split(t: Transitions, fraction: float) -> tuple[Transitions, Transitions]:
    """``(fit, calib)``: episodes starting at or before the ``1 − fraction`` quantile of
    episode start times fit the BC model, later ones calibrate it (a temporal hold-out, like
    the test split that follows the training split)."""
    first = np.ones(len(t), dtype=bool)
    first[1:] = t.episode_id[1:] != t.episode_id[:-1]
    starts = t.time_ms[first]
    cutoff = np.quantile(starts, 1.0 - fraction, method="lower")
    late = np.repeat(starts > cutoff, np.diff(np.append(np.flatnonzero(first), len(t))))
    if late.all() or not late.any():
        raise ConfigError(
            f"calib_fraction={fraction} leaves no episode on one side of "
            f"the {int(first.sum())} episodes"
        )
    return subset_episodes(t, ~late), subset_episodes(t, late)


#: Rows per block of :func:`_nll_grad`: (rows, A) temporaries stay small (a row's softmax and
#: sum do not depend on the other rows, so blocks give the numbers of one full-size pass).
_GRAD_ROWS = 512


def _nll_grad(logits: Tensor, actions: Tensor, beta: float) -> float:
    """d/dβ of ``mean(logsumexp(β z) − β z_a)`` = ``mean(E_{softmax(βz)}[z] − z_a)``."""
    expected = torch.cat(
        [
            (torch.softmax(beta * z, dim=-1) * z).sum(-1)
            for z in torch.split(logits, _GRAD_ROWS)  # row blocks: no (M, A) temporaries
        ]
    )
    return float((expected - logits.gather(1, actions[:, None])[:, 0]).mean())


def fit_temperature(
    logits: Tensor, actions: Tensor, bounds: tuple[float, float] = (1e-3, 1e3)
) -> float:
    """The temperature ``T`` in ``bounds`` minimising the mean NLL of ``actions`` (M,) int64
    under ``softmax(logits / T)``, ``logits`` (M, A) float (float64 used inside).

    The NLL is convex in ``β = 1/T`` (its second derivative is a variance), so 100 bisection
    steps on ``log β`` over the sign of the derivative find the minimiser. Once ``lo`` and
    ``hi`` are adjacent floats (after ~50 steps) the midpoint repeats; the derivative at each
    distinct ``β`` is computed once (the same numbers, about half the passes over the logits).
    """
    z = logits.detach().double()
    z = z - z.max(dim=-1, keepdim=True).values  # shift-invariant, avoids overflow
    a = actions.to(z.device, torch.int64)
    seen: dict[float, float] = {}

    def grad(log_beta: float) -> float:
        beta = float(np.exp(log_beta))
        if beta not in seen:
            seen[beta] = _nll_grad(z, a, beta)
        return seen[beta]

    lo, hi = float(np.log(1.0 / bounds[1])), float(np.log(1.0 / bounds[0]))
    if grad(lo) >= 0.0:
        return float(bounds[1])
    if grad(hi) <= 0.0:
        return float(bounds[0])
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if grad(mid) < 0.0 else (lo, mid)
    return float(np.exp(-0.5 * (lo + hi)))


def expected_calibration_error(probs: np.ndarray, actions: np.ndarray, bins: int = 15) -> float:
    """Top-label ECE: ``Σ_b (n_b / M) |accuracy_b − confidence_b|`` over ``bins`` equal-width
    bins of the top probability. ``probs`` (M, A) float, ``actions`` (M,) int64 logged."""
    p = np.asarray(probs, dtype=np.float64)
    return _top_label_ece(p.max(axis=1), p.argmax(axis=1) == np.asarray(actions), bins)


def _top_label_ece(confidence: np.ndarray, correct: np.ndarray, bins: int) -> float:
    """The ECE of top probabilities ``confidence`` (M,) float64 and whether each top action
    was the logged one, ``correct`` (M,) bool."""
    conf = np.asarray(confidence, dtype=np.float64)
    which = np.minimum((conf * bins).astype(np.int64), bins - 1)
    gap = np.bincount(which, weights=np.asarray(correct, np.float64) - conf, minlength=bins)
    return float(np.abs(gap).sum() / max(len(conf), 1))


def newton_inverse_temperature(
    derivatives: Callable[[float], tuple[float, float]],
    bounds: tuple[float, float] = (1e-3, 1e3),
    rtol: float = 1e-6,
    max_steps: int = 100,
) -> float:
    """The inverse temperature ``β = 1 / T`` (``T`` in ``bounds``) minimising a convex NLL,
    given ``derivatives(β) = (NLL'(β), NLL''(β))``, by Newton steps kept inside a bracket.

    ``NLL'`` increases with ``β``, so the sign of each ``NLL'`` moves one end of the bracket
    ``[1 / bounds[1], 1 / bounds[0]]`` (from ``β = 1`` on). A step that would leave the bracket
    (or a zero curvature) goes instead to the bracket's end when that end was never evaluated
    (a minimiser on a bound then costs one step), else to its geometric midpoint (bisection on
    ``log β``). Stops when a step would move ``β`` by at most ``rtol · β`` and returns the last
    evaluated ``β`` (each call of ``derivatives`` is a pass over the data: callers keep it).
    """
    lo, hi = 1.0 / bounds[1], 1.0 / bounds[0]
    unseen = {lo, hi}
    beta = min(max(1.0, lo), hi)
    for _ in range(max_steps):
        grad, curvature = derivatives(beta)
        unseen.discard(beta)
        if grad == 0.0:
            return beta
        lo, hi = (beta, hi) if grad < 0.0 else (lo, beta)
        step = beta - grad / curvature if curvature > 0.0 else float("nan")
        if not lo < step < hi:
            end = hi if grad < 0.0 else lo
            step = end if end in unseen else float(np.sqrt(lo * hi))
        if abs(step - beta) <= rtol * beta:
            return beta
        beta = step
    return beta


def _calib_rows(calib: Transitions, max_rows: int, seed: int) -> np.ndarray:
    """(M,) int64 sorted calibration rows: all, or a seeded subset of ``max_rows``."""
    rows = np.arange(len(calib))
    if len(rows) > max_rows:
        gen = np.random.default_rng(seed)
        rows = np.sort(gen.choice(rows, size=max_rows, replace=False))
    return rows


def _calib_logits(
    agent: BCAgent, calib: Transitions, config: PropensityConfig
) -> tuple[Tensor, Tensor]:
    """Raw BC logits (M, A) and logged actions (M,) of at most ``calib_max_rows`` rows."""
    rows = _calib_rows(calib, config.calib_max_rows, config.seed)
    obs = torch.as_tensor(calib.obs[rows], dtype=torch.float32, device=agent.device)
    with torch.no_grad():
        logits = torch.cat(
            [
                agent.scores(obs[lo : lo + config.chunk_rows])
                for lo in range(0, len(rows), config.chunk_rows)
            ]
        )
    return logits, torch.as_tensor(calib.action[rows], device=agent.device)


def _diagnose(
    model: PropensityModel, logits: Tensor, actions: Tensor, bins: int
) -> dict[str, float]:
    a = actions.cpu().numpy()
    probs = model._mix(torch.softmax(logits.double() / model.temperature, dim=-1)).cpu().numpy()
    nll = float(-np.log(probs[np.arange(len(a)), a]).mean())
    return {"nll": nll, "ece": expected_calibration_error(probs, a, bins)}


def _diagnostics(
    temperature: float, rows: int, before: dict[str, float], after: dict[str, float]
) -> dict[str, float]:
    return {
        "temperature": temperature,
        "calib_rows": float(rows),
        "nll_before": before["nll"],
        "nll_after": after["nll"],
        "ece_before": before["ece"],
        "ece_after": after["ece"],
    }


def _calibrate_dense(
    agent: BCAgent, calib: Transitions, config: PropensityConfig, floor: float
) -> tuple[float, dict[str, float]]:
    """``(T, diagnostics)`` from the (rows, A) logits of the calibration rows."""
    logits, actions = _calib_logits(agent, calib, config)
    temperature = fit_temperature(logits, actions) if config.calibration == "temperature" else 1.0
    before = _diagnose(PropensityModel(agent, 1.0, floor, {}), logits, actions, config.ece_bins)
    model = PropensityModel(agent, temperature, floor, {}, config.chunk_rows)
    after = _diagnose(model, logits, actions, config.ece_bins)
    return temperature, _diagnostics(temperature, len(actions), before, after)


def _calibrate_catalogue(
    agent: BCAgent, calib: Transitions, config: PropensityConfig, floor: float
) -> tuple[float, dict[str, float]]:
    """``(T, diagnostics)`` at catalogue scale, never building (rows, A): Newton steps on
    ``β = 1 / T`` whose derivatives each take one chunked pass over every item
    (:func:`~noetik.agents.core.serving.softmax_moments`), on at most
    ``catalogue_calib_rows`` rows; NLL and ECE from the log-partitions of those passes and
    the chunked top-1."""
    max_rows = min(config.calib_max_rows, config.catalogue_calib_rows)
    rows = _calib_rows(calib, max_rows, config.seed)
    obs = torch.as_tensor(calib.obs[rows], dtype=torch.float32, device=agent.device)
    actions = torch.as_tensor(calib.action[rows], device=agent.device)
    with torch.no_grad():
        logged = agent.action_scores(obs, None, actions).double()  # (M,) z_a
        top_score, top_item = serving.top_k(agent, obs, None, 1)
    lse: dict[float, Tensor] = {}  # β -> (M,) float64 logsumexp_a β z_a, one pass each

    def derivatives(beta: float) -> tuple[float, float]:
        # moments of s = β z: E[z] = E[s] / β, Var[z] = Var[s] / β²
        lse[beta], mean, var = serving.softmax_moments(agent, obs, None, 1.0 / beta)
        return float((mean / beta - logged).mean()), float((var / beta**2).mean())

    def diagnose(beta: float) -> dict[str, float]:
        if beta not in lse:
            derivatives(beta)
        n = agent.spec.n_actions
        p_logged = _floored(torch.exp(beta * logged - lse[beta]), n, floor)
        p_top = _floored(torch.exp(beta * top_score[:, 0].double() - lse[beta]), n, floor)
        correct = (top_item[:, 0] == actions).cpu().numpy()
        ece = _top_label_ece(p_top.cpu().numpy(), correct, config.ece_bins)
        return {"nll": float(-torch.log(p_logged).mean()), "ece": ece}

    fit = config.calibration == "temperature"
    beta = newton_inverse_temperature(derivatives) if fit else 1.0
    before = diagnose(1.0)
    return 1.0 / beta, _diagnostics(1.0 / beta, len(rows), before, diagnose(beta))


def fit_propensity(
    train: Transitions,
    calib: Transitions,
    config: PropensityConfig | None = None,
    content: ItemContent | None = None,
) -> PropensityModel:
    """Fit the BC behaviour model on ``train``, temperature-scale it on ``calib`` (same
    action vocabulary), and return the floored, calibrated :class:`PropensityModel`.
    ``content``: the items' content (at catalogue scale the BC model's item vectors read it;
    None: hashed ids alone)."""
    config = config or PropensityConfig()
    if train.n_actions != calib.n_actions or len(train) == 0 or len(calib) == 0:
        raise ConfigError("propensity train and calib need rows and the same action vocabulary")
    floor = config.floor(train.n_actions)
    bc = BCConfig(
        seed=config.seed,
        device=config.device,
        batch_size=config.batch_size,
        lr=config.lr,
        weight_decay=config.weight_decay,
        encoder=EncoderConfig(kind="mlp", hidden=config.hidden),
        catalogue=config.catalogue,
    )
    agent = bc.create(ProblemSpec.from_transitions(train, catalogue=content))
    assert isinstance(agent, BCAgent)
    agent.fit(
        train,
        config.steps,
        trainer=TrainerConfig(progress=False, tensorboard=False, log_every=config.steps),
    )
    agent.eval()
    calibrate = _calibrate_catalogue if agent.catalogue_scorers() else _calibrate_dense
    temperature, diagnostics = calibrate(agent, calib, config, floor)
    return PropensityModel(agent, temperature, floor, diagnostics, config.chunk_rows)
