"""Fitted Q evaluation (FQE; Le, Voloshin & Yue, 2019) of a target policy π from logged episodes.

FQE estimates ``Q^π`` by repeated regression: ``Q_0 = 0`` and, for ``k = 0 .. iterations-1``,

    Q_{k+1} = argmin_Q  Σ_{valid (i, t)} ( Q(s_it, a_it) − y_it )²,
    y_it = r_it + γ Σ_a' π(a'|s_i,t+1) Q_k(s_i,t+1, a')     (the bootstrap is 0 after a
                                                              terminal step: episode end)

over the logged steps. Function classes (:attr:`FQEConfig.kind`): ``"tabular"``, a table over
the distinct observation vectors (and the step ``t`` with ``time_feature``) whose regression is
the mean target of each cell, so ``H`` rounds on time-indexed data are exact backward induction
on the empirical MDP; ``"linear"``, regression on ``[standardised obs, one-hot(t) or 1]``
pooled over actions plus per-action ridge deviations, in closed form; ``"mlp"``, a torch MLP
``obs -> Q(obs, ·)`` trained by Adam for ``steps_per_iteration`` minibatch steps per round
(warm-started), deterministic under ``seed``. Finite-horizon values are not stationary (fewer
steps remain later in a session): ``time_feature`` adds the step ``t / H`` as an input, and
the model then needs ``t``. :meth:`FQEModel.estimates` gives the ``q_hat`` / ``v_hat`` of
:class:`~noetik.evaluation.ope.estimators.LoggedEpisodes` (doubly robust, direct method).

**Any catalogue size (linear).** The linear model's ``Q̂(s, t, a) = φ(s, t) · (w̄ + δ_a)`` has
``δ_a = 0`` for every action never logged, so for any policy π

    Σ_a π(a|s) Q̂(s, t, a) = φ(s, t) · w̄ + Σ_{a logged} π(a|s) φ(s, t) · δ_a

exactly: the bootstrap targets and ``v̂`` need π on the logged actions only. Given as
:class:`ActionProbs` (π of a set of actions covering the logged ones), nothing of size A is
built, so FQE runs over 4.37M items as over 40 (the ``ope`` lens at catalogue scale).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from noetik.agents.core.base import resolve_device
from noetik.errors import ConfigError
from noetik.utils.memory import require

__all__ = ["ActionProbs", "FQEConfig", "FQEModel", "ProbSource", "fit_fqe"]


@dataclass(frozen=True, eq=False)
class ActionProbs:
    """π(a | s) of a few actions only, in a batch of states; the rest of each state's
    probability (``1 − Σ``) is on the other actions. Enough for the linear model (module doc)
    when ``actions`` covers every logged action."""

    actions: np.ndarray
    """(P,) int64 distinct actions, sorted."""
    probs: np.ndarray
    """(..., P) float64 ``π(actions[j] | s)`` of each state (leading shape (N, H) or (M,))."""

    def __post_init__(self) -> None:
        a = np.asarray(self.actions)
        if a.ndim != 1 or (len(a) > 1 and not (np.diff(a) > 0).all()):
            raise ConfigError("ActionProbs.actions must be sorted distinct actions (P,)")
        if np.shape(self.probs)[-1:] != (len(a),):
            raise ConfigError(f"ActionProbs.probs must end with P = {len(a)} columns")

    def take(self, index: slice | tuple[np.ndarray, np.ndarray]) -> ActionProbs:
        """The states at ``index``: a slice of the rows, or (episode, step) index arrays."""
        return ActionProbs(self.actions, np.asarray(self.probs)[index])


#: π(·|s): an (N, H, A) float array, a callable obs (M, D) float32 -> (M, A) probabilities,
#: or (linear model only) :class:`ActionProbs` (N, H, P) of the logged actions.
ProbSource = np.ndarray | Callable[[np.ndarray], np.ndarray] | ActionProbs


@dataclass(frozen=True)
class FQEConfig:
    """How :func:`fit_fqe` fits ``Q^π``."""

    kind: Literal["mlp", "linear", "tabular"] = "mlp"
    """Function class: a torch MLP, per-action ridge regression, or an exact table."""
    hidden: tuple[int, ...] = (256, 256)
    """MLP hidden layer sizes (ReLU); ``()`` is a linear model trained by Adam."""
    lr: float = 1e-3
    """MLP Adam learning rate."""
    batch_size: int = 512
    """MLP transitions per gradient step."""
    iterations: int = 20
    """FQE rounds (target refreshes); at least the horizon H for values to reach every step."""
    steps_per_iteration: int = 250
    """MLP gradient steps per round (the other kinds solve each round exactly)."""
    weight_decay: float = 0.0
    """MLP Adam weight decay."""
    ridge: float = 1e-3
    """Linear: L2 penalty of each action's weights towards the weights pooled over actions."""
    time_feature: bool = False
    """Add the step ``t / H`` to the input (tabular: index cells by ``t``); then
    :meth:`FQEModel.q` needs ``t``."""
    seed: int = 0
    """Seed of the MLP's initial weights and minibatch draws."""
    device: str = "auto"
    """MLP torch device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``…"""
    chunk_rows: int = 65_536
    """Rows per batched model / policy call when computing targets and estimates."""

    def __post_init__(self) -> None:
        if self.kind not in ("mlp", "linear", "tabular"):
            raise ConfigError(f"kind must be 'mlp', 'linear' or 'tabular', got {self.kind!r}")
        for name in ("batch_size", "iterations", "steps_per_iteration", "chunk_rows"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if any(int(h) < 1 for h in self.hidden):
            raise ConfigError(f"hidden sizes must be >= 1, got {self.hidden}")
        if not self.lr > 0 or self.weight_decay < 0 or self.ridge < 0:
            raise ConfigError("lr must be > 0, weight_decay and ridge >= 0")


class FQEModel:
    """A fitted ``Q̂^π``; answers for any observations (and steps, with ``time_feature``)."""

    def __init__(
        self, learner: _Tabular | _Linear | _MLP, n_actions: int, time_feature: bool, chunk: int
    ):
        self._learner, self.n_actions = learner, n_actions
        self.time_feature, self._chunk = time_feature, chunk

    def q(self, obs: np.ndarray, t: np.ndarray | None = None) -> np.ndarray:
        """``Q̂(s, ·)`` (M, A) float32 for ``obs`` (M, D) float32.

        ``t`` (M,) int64: the step of each state, required when fitted with ``time_feature``.
        """
        x = np.asarray(obs, dtype=np.float32)
        if x.ndim != 2:
            raise ConfigError(f"obs must have shape (M, D), got {x.shape}")
        if t is None and self.time_feature:
            raise ConfigError("t is required: the FQE model was fitted with time_feature")
        steps = np.zeros(len(x), dtype=np.int64) if t is None else np.asarray(t, dtype=np.int64)
        return self.q64(x, np.broadcast_to(steps, (len(x),))).astype(np.float32)

    def q64(self, obs: np.ndarray, t: np.ndarray) -> np.ndarray:
        """:meth:`q` in float64, chunked: ``obs`` (M, D) float32, ``t`` (M,) int64."""
        require(16.0 * len(obs) * self.n_actions, "FQE Q-values (states x actions)", "fewer states")
        parts = [
            self._learner.predict(obs[lo : lo + self._chunk], t[lo : lo + self._chunk])
            for lo in range(0, len(obs), self._chunk)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, self.n_actions))

    def q_of(self, obs: np.ndarray, t: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """(M,) float64 ``Q̂(s_i, a_i)`` of one action (M,) int64 per state ``obs`` (M, D)
        float32 at step ``t`` (M,) int64; the linear model never builds (M, A)."""
        out = np.zeros(len(obs))
        for lo in range(0, len(obs), self._chunk):
            part = slice(lo, lo + self._chunk)
            if isinstance(self._learner, _Linear):
                out[part] = self._learner.q_of(obs[part], t[part], actions[part])
            else:
                q = self._learner.predict(obs[part], t[part])
                out[part] = q[np.arange(len(q)), actions[part]]
        return out

    def values(self, obs: np.ndarray, t: np.ndarray, probs: np.ndarray | ActionProbs) -> np.ndarray:
        """(M,) float64 ``Σ_a π(a|s) Q̂(s, a)`` of states ``obs`` (M, D) float32 at step ``t``
        (M,) int64 under ``probs``: π (M, A) float, or the logged actions' :class:`ActionProbs`
        (M, P) (linear model: exact without (M, A), see the module doc)."""
        out = np.zeros(len(obs))
        for lo in range(0, len(obs), self._chunk):
            part = slice(lo, lo + self._chunk)
            if isinstance(probs, ActionProbs):
                if not isinstance(self._learner, _Linear):
                    raise ConfigError("π over a subset of actions needs the linear FQE model")
                out[part] = self._learner.values(obs[part], t[part], probs.take(part))
            else:
                q = self._learner.predict(obs[part], t[part])
                out[part] = np.einsum("ma,ma->m", np.asarray(probs[part], np.float64), q)
        return out

    def estimates(
        self,
        obs: np.ndarray,
        actions: np.ndarray,
        target_probs: ProbSource,
        mask: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(q_hat, v_hat)``, each (N, H) float64, for :class:`LoggedEpisodes`.

        ``obs`` (N, H, D) float32, ``actions`` (N, H) int64, ``target_probs`` π(·|s_t)
        (N, H, A) float32, a callable, or (linear model) :class:`ActionProbs` (N, H, P) of the
        logged actions; ``q_hat = Q̂(s_t, a_t)``, ``v_hat = Σ_a π(a|s_t) Q̂(s_t, a)``. The step
        of ``obs[:, t]`` is ``t``. Padded steps (``mask`` (N, H) bool False) are 0.
        """
        x = np.asarray(obs, dtype=np.float32)
        if x.ndim != 3 or np.shape(actions) != x.shape[:2]:
            raise ConfigError(f"need obs (N, H, D), actions (N, H): {x.shape}, {np.shape(actions)}")
        n, h = x.shape[:2]
        flat, steps = x.reshape(n * h, -1), np.tile(np.arange(h, dtype=np.int64), n)
        acts = np.clip(np.asarray(actions, dtype=np.int64).reshape(-1), 0, self.n_actions - 1)
        if isinstance(target_probs, ActionProbs):
            if np.shape(target_probs.probs)[:2] != (n, h):
                raise ConfigError(f"target_probs must have shape {(n, h)} + (P,)")
            rows = ActionProbs(target_probs.actions, target_probs.probs.reshape(n * h, -1))
            q_hat = self.q_of(flat, steps, acts).reshape(n, h)
            v_hat = self.values(flat, steps, rows).reshape(n, h)
        else:
            q = self.q64(flat, steps)
            probs = _probs_rows(target_probs, flat, self.n_actions, self._chunk)
            q_hat = q[np.arange(n * h), acts].reshape(n, h)
            v_hat = np.einsum("ma,ma->m", probs, q).reshape(n, h)
        if mask is not None:
            keep = np.asarray(mask, dtype=bool).reshape(n, h)
            q_hat, v_hat = np.where(keep, q_hat, 0.0), np.where(keep, v_hat, 0.0)
        return q_hat, v_hat


def _probs_rows(
    source: np.ndarray | Callable[[np.ndarray], np.ndarray],
    obs: np.ndarray,
    n_actions: int,
    chunk: int,
) -> np.ndarray:
    """π(·|s) (M, A) float64 for the states ``obs`` (M, D), from an array or a callable."""
    if callable(source):
        parts = [source(obs[lo : lo + chunk]) for lo in range(0, len(obs), chunk)]
        probs = np.concatenate(parts) if parts else np.zeros((0, n_actions))
    else:
        probs = np.asarray(source).reshape(-1, np.shape(source)[-1])
    if probs.shape != (len(obs), n_actions):
        raise ConfigError(f"target_probs must give {n_actions} probabilities per state")
    return np.asarray(probs, dtype=np.float64)


@dataclass(frozen=True)
class _Steps:
    """The M valid logged steps, flattened: ``obs`` (M, D) float32, ``t``, ``actions`` (M,)
    int64, ``rewards`` (M,) float64; ``boot`` (K,) int64 positions of the non-terminal ones,
    ``next_obs`` (K, D) float32 their next states (at step ``t + 1``), ``next_probs`` π there,
    (K, A) float64, a callable evaluated in chunks each round, or :class:`ActionProbs` (K, P);
    ``horizon`` H."""

    obs: np.ndarray
    t: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    boot: np.ndarray
    next_obs: np.ndarray
    next_probs: ProbSource
    horizon: int


def _valid_steps(
    obs: np.ndarray, mask: np.ndarray, terminals: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(obs (N, H, D) float32, valid (N, H) bool, terminal (N, H) bool)``, checked."""
    x, valid = np.asarray(obs, dtype=np.float32), np.asarray(mask)
    if valid.dtype != np.bool_ or x.ndim != 3 or valid.shape != x.shape[:2]:
        raise ConfigError(f"need obs (N, H, D), a bool mask (N, H): {x.shape}, {valid.shape}")
    last = valid & ~np.concatenate([valid[:, 1:], np.zeros_like(valid[:, :1])], axis=1)
    term = last if terminals is None else np.asarray(terminals, dtype=bool)
    if term.shape != valid.shape:
        raise ConfigError(f"terminals must have shape {valid.shape}, got {term.shape}")
    return x, valid, term


def _steps(
    obs: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    mask: np.ndarray,
    sources: tuple[
        ProbSource, np.ndarray | None, np.ndarray | ActionProbs | None, np.ndarray | None
    ],
    *,
    n_actions: int,
) -> _Steps:
    """Flatten the episodes; ``sources`` = (target_probs, next_obs, next_target_probs,
    terminals) as given to :func:`fit_fqe`."""
    target_probs, next_obs, next_target_probs, terminals = sources
    x, valid, term = _valid_steps(obs, mask, terminals)
    n, h = valid.shape
    rows, cols = np.nonzero(valid)
    reward = np.asarray(rewards, dtype=np.float64)
    if reward.shape != (n, h) or not np.isfinite(reward[valid]).all():
        raise ConfigError(f"rewards must be finite with shape {(n, h)}, got {reward.shape}")
    if np.shape(actions) != (n, h):
        raise ConfigError(f"actions must have shape {(n, h)}, got {np.shape(actions)}")
    acts = np.asarray(actions)[valid].astype(np.int64)
    if len(acts) and (acts.min() < 0 or acts.max() >= n_actions):
        raise ConfigError(f"actions must be in [0, {n_actions}) on valid steps")
    boot = np.nonzero(~term[rows, cols])[0]
    bi, bt = rows[boot], cols[boot]
    if next_obs is None:
        if (bt + 1 >= h).any() or not valid[bi, np.minimum(bt + 1, h - 1)].all():
            raise ConfigError("a non-terminal step needs a valid next step (or pass next_obs)")
        nxt, src, pick = x[bi, bt + 1], target_probs, (bi, bt + 1)
    else:
        nxt = np.asarray(next_obs, dtype=np.float32)[bi, bt]
        src, pick = (target_probs if next_target_probs is None else next_target_probs), (bi, bt)
        if not callable(src) and next_target_probs is None:
            raise ConfigError("next_obs with a target_probs array needs next_target_probs")
    if isinstance(src, ActionProbs):
        if np.shape(src.probs)[:2] != (n, h):
            raise ConfigError(f"target_probs must have shape {(n, h)} + (P,)")
        src = src.take(pick)
    elif not callable(src):
        if np.shape(src) != (n, h, n_actions):
            raise ConfigError(f"target_probs must have shape {(n, h, n_actions)}")
        src = np.asarray(src, dtype=np.float64)[pick]
    elif len(nxt) * n_actions <= 1 << 26:  # small enough: evaluate the policy once
        src = _probs_rows(src, nxt, n_actions, 1 << 16)
    return _Steps(x[valid], cols.astype(np.int64), acts, reward[valid], boot, nxt, src, h)


class _Inputs:
    """Standardised observations, plus ``t / H`` with ``time_feature``: (M, F) float32."""

    def __init__(self, obs: np.ndarray, horizon: int, time_feature: bool) -> None:
        self.mean = obs.mean(axis=0) if len(obs) else np.zeros(obs.shape[1], np.float32)
        std = obs.std(axis=0) if len(obs) else np.ones(obs.shape[1], np.float32)
        self.std = np.where(std > 1e-6, std, 1.0).astype(np.float32)
        self.horizon, self.time_feature = horizon, time_feature
        self.width = len(self.mean) + int(time_feature)

    def __call__(self, obs: np.ndarray, t: np.ndarray) -> np.ndarray:
        z = (obs - self.mean) / self.std
        if self.time_feature:
            z = np.concatenate([z, (t / self.horizon)[:, None]], axis=1)
        return np.asarray(z, dtype=np.float32)


def _row_ids(known: np.ndarray, query: np.ndarray) -> np.ndarray:
    """(Q,) int64 index of each ``query`` row among the unique ``known`` rows, -1 if absent."""
    both = np.concatenate([known, query])
    _, inverse = np.unique(both, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    pos = np.full(int(inverse.max(initial=-1)) + 1, -1, dtype=np.int64)
    pos[inverse[: len(known)]] = np.arange(len(known))
    return pos[inverse[len(known) :]]


class _Tabular:
    """Q as a table over (distinct observation[, step]) x action; each round: cell means."""

    def __init__(self, steps: _Steps, n_actions: int, config: FQEConfig) -> None:
        self.states = np.unique(np.concatenate([steps.obs, steps.next_obs]), axis=0)
        self.n_actions, self.time_feature = n_actions, config.time_feature
        self.n_t = steps.horizon + 1 if config.time_feature else 1
        self.index = self._cells(steps.obs, steps.t) * n_actions + steps.actions
        size = len(self.states) * self.n_t * n_actions
        self.counts = np.bincount(self.index, minlength=size)
        self.table = np.zeros((len(self.states) * self.n_t, n_actions))

    def _cells(self, obs: np.ndarray, t: np.ndarray) -> np.ndarray:
        ids = _row_ids(self.states, obs)
        if not self.time_feature:
            return ids
        inside = (ids >= 0) & (t >= 0) & (t < self.n_t)
        return np.where(inside, t * len(self.states) + ids, -1)

    def fit_round(self, targets: np.ndarray) -> None:
        sums = np.bincount(self.index, weights=targets, minlength=len(self.counts))
        means = np.zeros(len(sums))
        np.divide(sums, self.counts, out=means, where=self.counts > 0)
        self.table = means.reshape(-1, self.n_actions)

    def predict(self, obs: np.ndarray, t: np.ndarray) -> np.ndarray:
        cells = self._cells(obs, t)
        return np.where((cells >= 0)[:, None], self.table[np.maximum(cells, 0)], 0.0)


class _Linear:
    """Ridge regression on ``φ(s, t) = [standardised obs, one-hot(t) or 1]`` (F,), closed form:
    ``Q̂(s, t, a) = φ · (w̄ + δ_a)``. ``w̄`` is fitted on every step (pooled over actions);
    ``δ_a`` regresses the residuals of action ``a``'s own steps ``Φ_a`` (n_a, F) with penalty
    ``ridge``, 0 for actions never logged:

        δ_a = (Φ_aᵀ Φ_a + ridge I)⁺ Φ_aᵀ r_a = Φ_aᵀ (Φ_a Φ_aᵀ + ridge I)⁺ r_a

    (the push-through identity): an (n_a × n_a) system per logged action, batched over the
    actions with the same n_a, so memory and time grow with the logged steps, not with A."""

    def __init__(self, steps: _Steps, n_actions: int, config: FQEConfig) -> None:
        self.inputs = _Inputs(steps.obs, steps.horizon, time_feature=False)
        self.n_t, self.n_actions = (steps.horizon + 1 if config.time_feature else 1), n_actions
        self.phi = self.features(steps.obs, steps.t)  # (M, F) float64
        width = self.phi.shape[1]
        self.pooled = np.linalg.pinv(self.phi.T @ self.phi + 1e-9 * np.eye(width))
        self.present, inverse, counts = np.unique(
            steps.actions, return_inverse=True, return_counts=True
        )
        """(P,) int64 the logged actions, each with ``counts`` steps."""
        by_action = np.argsort(inverse, kind="stable")
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])
        self.groups: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        """Per step count n: ``(which (G,) positions in present, their steps (G, n) int64,
        (Φ Φᵀ + ridge I)⁺ (G, n, n) float64)``."""
        for n in np.unique(counts).tolist():
            which = np.flatnonzero(counts == n)
            rows = by_action[first[which][:, None] + np.arange(n)]
            block = self.phi[rows]
            gram = block @ block.transpose(0, 2, 1) + config.ridge * np.eye(n)
            self.groups.append((which, rows, np.linalg.pinv(gram)))
        self.weights = np.zeros(width)
        """(F,) float64 ``w̄``."""
        self.deviations = np.zeros((len(self.present), width))
        """(P, F) float64 ``δ`` of the logged actions."""

    def features(self, obs: np.ndarray, t: np.ndarray) -> np.ndarray:
        """(M, F) float64 ``φ``: standardised ``obs`` (M, D), then the one-hot of ``t`` (M,)
        (all 0 outside the fitted steps) or, without ``time_feature``, a constant 1."""
        inside = (t >= 0) & (t < self.n_t) if self.n_t > 1 else np.ones(len(t), dtype=bool)
        onehot = (np.clip(t, 0, self.n_t - 1)[:, None] == np.arange(self.n_t)) & inside[:, None]
        z = self.inputs(obs, t).astype(np.float64)
        return np.concatenate([z, onehot.astype(np.float64)], axis=1)

    def fit_round(self, targets: np.ndarray) -> None:
        self.weights = self.pooled @ (self.phi.T @ targets)
        residual = targets - self.phi @ self.weights
        for which, rows, solver in self.groups:
            coef = np.einsum("gij,gj->gi", solver, residual[rows])
            self.deviations[which] = np.einsum("gnf,gn->gf", self.phi[rows], coef)

    def predict(self, obs: np.ndarray, t: np.ndarray) -> np.ndarray:
        phi = self.features(obs, t)
        out = np.repeat((phi @ self.weights)[:, None], self.n_actions, axis=1)
        out[:, self.present] += phi @ self.deviations.T
        return out

    def q_of(self, obs: np.ndarray, t: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """(M,) ``Q̂(s_i, t_i, a_i)`` without (M, A)."""
        phi = self.features(obs, t)
        out = phi @ self.weights
        if len(self.present):
            j = np.minimum(np.searchsorted(self.present, actions), len(self.present) - 1)
            logged = self.present[j] == actions
            out += np.where(logged, np.einsum("mf,mf->m", phi, self.deviations[j]), 0.0)
        return out

    def values(self, obs: np.ndarray, t: np.ndarray, probs: ActionProbs) -> np.ndarray:
        """(M,) ``φ · w̄ + Σ_{a logged} π(a|s) φ · δ_a`` = ``Σ_a π(a|s) Q̂(s, t, a)``."""
        phi, listed = self.features(obs, t), np.asarray(probs.actions)
        cols = np.minimum(np.searchsorted(listed, self.present), max(len(listed) - 1, 0))
        if len(self.present) and (len(listed) == 0 or (listed[cols] != self.present).any()):
            raise ConfigError("ActionProbs must list every action the FQE model was fitted on")
        deviation = np.einsum("mp,mp->m", probs.probs[:, cols], phi @ self.deviations.T)
        return np.asarray(phi @ self.weights + deviation)


class _MLP:
    """A torch MLP ``inputs -> Q(·)`` trained by Adam, warm-started across rounds."""

    def __init__(self, steps: _Steps, n_actions: int, config: FQEConfig) -> None:
        self.device, self.config = resolve_device(config.device), config
        self.inputs = _Inputs(steps.obs, steps.horizon, config.time_feature)
        sizes = [self.inputs.width, *config.hidden]
        with torch.random.fork_rng(devices=[]):  # every layer's initial weights from seed
            torch.manual_seed(config.seed)
            layers: list[nn.Module] = []
            for a, b in itertools.pairwise(sizes):
                layers += [nn.Linear(a, b), nn.ReLU()]
            self.net = nn.Sequential(*layers, nn.Linear(sizes[-1], n_actions)).to(self.device)
        params, decay = self.net.parameters(), config.weight_decay
        self.opt = torch.optim.Adam(params, lr=config.lr, weight_decay=decay)
        self.x = torch.as_tensor(self.inputs(steps.obs, steps.t), device=self.device)
        self.a = torch.as_tensor(steps.actions, device=self.device)[:, None]
        self.gen = torch.Generator(device=self.device).manual_seed(config.seed)

    def fit_round(self, targets: np.ndarray) -> None:
        y = torch.as_tensor(targets, dtype=torch.float32, device=self.device)
        m, size = len(y), self.config.batch_size
        if m == 0:
            return
        for _ in range(self.config.steps_per_iteration):
            idx = torch.randint(m, (size,), generator=self.gen, device=self.device)
            pred = self.net(self.x[idx]).gather(1, self.a[idx])[:, 0]
            loss = torch.nn.functional.mse_loss(pred, y[idx])
            self.opt.zero_grad(set_to_none=True)
            loss.backward()  # type: ignore[no-untyped-call]
            self.opt.step()

    def predict(self, obs: np.ndarray, t: np.ndarray) -> np.ndarray:
        x = torch.as_tensor(self.inputs(obs, t), device=self.device)
        with torch.no_grad():
            return self.net(x).double().cpu().numpy()  # type: ignore[no-any-return]


_LEARNERS: dict[str, type[_Tabular | _Linear | _MLP]] = {"tabular": _Tabular, "linear": _Linear}


def _next_values(model: FQEModel, steps: _Steps, chunk: int) -> np.ndarray:
    """(K,) float64 ``Σ_a π(a|s') Q̂(s', a)`` of the bootstrapped next states, chunked."""
    out = np.zeros(len(steps.boot))
    next_t = steps.t[steps.boot] + 1
    for lo in range(0, len(out), chunk):
        hi = min(lo + chunk, len(out))
        src, rows = steps.next_probs, steps.next_obs[lo:hi]
        if isinstance(src, ActionProbs):
            probs: np.ndarray | ActionProbs = src.take(slice(lo, hi))
        else:
            probs = src(rows) if callable(src) else src[lo:hi]
        out[lo:hi] = model.values(rows, next_t[lo:hi], probs)
    return out


def fit_fqe(  # noqa: PLR0917  (the positional interface other modules call)
    obs: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    mask: np.ndarray,
    target_probs: ProbSource,
    gamma: float,
    config: FQEConfig,
    next_obs: np.ndarray | None = None,
    *,
    next_target_probs: np.ndarray | ActionProbs | None = None,
    terminals: np.ndarray | None = None,
    n_actions: int | None = None,
) -> FQEModel:
    """Fit ``Q̂^π`` on logged episodes by ``config.iterations`` FQE rounds.

    ``obs`` (N, H, D) float32 states padded to H; ``actions`` (N, H) int64; ``rewards`` (N, H)
    float; ``mask`` (N, H) bool valid prefix; ``target_probs`` π(·|s_t) (N, H, A) float32, a
    callable obs (M, D) -> (M, A) (evaluated in chunks of ``config.chunk_rows``), or, for the
    linear model at any catalogue size, :class:`ActionProbs` (N, H, P) listing every logged
    action (then ``n_actions`` is required).
    By default step ``t``'s next state is ``obs[:, t+1]`` and the last valid step is terminal
    (bootstrap 0). ``next_obs`` (N, H, D) float32 gives explicit next states instead (then
    ``next_target_probs`` (N, H, A), π at those states, unless ``target_probs`` is callable);
    ``terminals`` (N, H) bool marks which steps end their episode. ``n_actions``: A when
    ``target_probs`` is a callable (default: its width on one state).
    """
    if not 0.0 <= float(gamma) <= 1.0:
        raise ConfigError(f"gamma must be in [0, 1], got {gamma}")
    if isinstance(target_probs, ActionProbs):
        if n_actions is None or config.kind != "linear":
            raise ConfigError("target_probs as ActionProbs needs the linear model and n_actions")
    elif n_actions is None:
        probe = np.asarray(obs, dtype=np.float32).reshape(-1, np.shape(obs)[-1])[:1]
        width = np.shape(target_probs(probe) if callable(target_probs) else target_probs)
        n_actions = int(width[-1])
    sources = (target_probs, next_obs, next_target_probs, terminals)
    steps = _steps(obs, actions, rewards, mask, sources, n_actions=n_actions)
    learner = _LEARNERS.get(config.kind, _MLP)(steps, n_actions, config)
    model = FQEModel(learner, n_actions, config.time_feature, config.chunk_rows)
    for k in range(config.iterations):
        targets = steps.rewards.copy()
        if k > 0 and len(steps.boot):
            targets[steps.boot] += float(gamma) * _next_values(model, steps, config.chunk_rows)
        learner.fit_round(targets)
    return model
