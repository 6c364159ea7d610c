"""The ``real_exposure`` lens: unbiased one-step rates of a policy on the random-exposure log.

KuaiRand's random-exposure log shows each impression's video drawn uniformly from a fixed pool,
so the logging propensity is known exactly: ``1 / |pool|``. For any target policy π over that
pool, its one-step rate of a signal on those users' contexts, ``E_x Σ_a π(a|x) y(x, a)``, is
estimated without bias by importance sampling with weights ``w_i = π(a_i|x_i) · |pool|``:

>>> log = load_random_log(ds, log="heldout.csv")
>>> lens = evaluate_real_exposure(agent, log, pool=exposure_pool(ds, log))
>>> lens["click_snips"]                              # {"mean": ..., "low": ..., "high": ...}

* **Pool** (:func:`exposure_pool`): the videos of the dataset's WHOLE random log (what the
  exposure was uniform over), not only of the evaluated (e.g. held-out) rows; videos of the
  evaluated log outside it are added (so every logged video has a propensity).
* **Target π** (:func:`pool_policy`): the policy's distribution restricted to the pool and
  renormalised over it, from the scorer's scores of every pool video in each row's state
  (:class:`~noetik.evaluation.random_log.RandomLog`: states and histories see earlier rows
  only). ``softmax`` and ``epsilon_greedy`` are
  :func:`~noetik.evaluation.ope.logged.policy_probs` with the same defaults as
  :class:`~noetik.evaluation.ope.logged.LoggedOPEConfig`, so the ``ope`` and
  ``real_exposure`` lenses evaluate the same π; ``greedy`` puts all mass on the best pool
  video (split evenly among tied ones): weights are then ``|pool|`` or 0 and the effective
  sample size tiny. A video the scorer does not know scores ``-inf`` and gets π = 0 (for
  ``epsilon_greedy`` too: the ε share is spread over the known pool videos); the unknown set
  must not vary by row, and a scorer that knows no pool video is refused.
* **Estimates** (:func:`exposure_estimates`) per signal (``is_click`` -> ``click``,
  ``long_view``) and for the task's ``reward`` (its :class:`RewardConfig` applied to the logged
  signals): ``<name>_is`` = mean of ``w·y`` (unbiased), ``<name>_snips`` = ``Σ w·y / Σ w``
  (self-normalised: lower variance, biased by O(1/N)), ``<name>_logged`` (the uniform
  logging policy's own mean, the reference), ``<name>_gain`` = IS − logged (paired: both on
  the same resampled users, so far narrower than the two intervals side by side); each with
  a percentile bootstrap interval over
  USERS (one user's rows are correlated; :func:`~noetik.utils.bootstrap.bootstrap_means` of
  per-user sums as ratios). Counts (``mean = low = high``): ``ess`` = ``(Σw)² / Σw²``,
  ``ess_fraction`` = ``ess / n_rows``, ``n_rows``, ``n_users``, ``pool_size``.
* **Memory**: scores are computed in batches of ``batch_size`` rows over the whole pool
  ((batch, pool) float64 at a time; 1K's pool has 7,388 videos); the lens stops with one line
  (:func:`~noetik.utils.memory.require`) when a batch cannot fit.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import polars as pl
import torch

from noetik.agents.core.base import Agent
from noetik.data.dataset import KuaiRandDataset, load_kuairand
from noetik.data.rewards import SIGNALS, RewardConfig, reward_from_signals
from noetik.data.schema import BINARY_SIGNALS, FileKind
from noetik.data.transitions import Transitions
from noetik.errors import ConfigError
from noetik.evaluation.ope.logged import LoggedOPEConfig, policy_probs
from noetik.evaluation.policy_scores import standardise_scores
from noetik.evaluation.random_log import (
    AgentScorer,
    RandomLog,
    RowHistory,
    Scorer,
    load_random_log,
    popularity_scorer,
)
from noetik.utils.bootstrap import bootstrap_means
from noetik.utils.memory import require

__all__ = [
    "MIN_RELIABLE_ESS",
    "PoolScorer",
    "RealExposureConfig",
    "constant_scorer",
    "evaluate_real_exposure",
    "exposure_estimates",
    "exposure_pool",
    "low_ess_note",
    "outcomes",
    "pool_batches",
    "pool_policy",
    "pool_scorer",
    "popularity_pool_scorer",
    "target_weights",
]

Lens = dict[str, dict[str, float]]
_OPE = LoggedOPEConfig()

#: Below this effective sample size the lens's intervals are flagged as unreliable: on the
#: synthetic check (docs/simulator.md) an ε-greedy policy at ESS 27 and 227 covered 63-89 %,
#: softmax policies at ESS >= 6,860 covered 91-99.5 %.
MIN_RELIABLE_ESS = 1_000.0

#: Score cells (rows x pool videos) per call of a per-impression :class:`Scorer`.
_ROW_SCORER_CELLS = 1 << 16


@dataclass(frozen=True)
class RealExposureConfig:
    """How the ``real_exposure`` lens builds π from a scorer and what it reports."""

    policy: Literal["softmax", "epsilon_greedy", "greedy"] = _OPE.policy
    """The target policy from the scores over the pool: ``softmax`` (``softmax(scores /
    temperature)``), ``epsilon_greedy`` (``1 − ε`` on the argmax plus ``ε`` spread evenly),
    both as the ``ope`` lens builds them; or ``greedy`` (the argmax, ties split evenly)."""
    temperature: float = _OPE.temperature
    """``softmax``: the temperature (> 0); the ``ope`` lens's default."""
    standardise: bool = False
    """``softmax``: z-score each row's scores over the known pool videos first
    (:func:`~noetik.evaluation.policy_scores.standardise_scores`), so that one temperature
    means the same greediness for agents whose scores live on different scales."""
    epsilon: float = _OPE.epsilon
    """``epsilon_greedy``: the mass spread evenly over the pool, in (0, 1]; the ``ope``
    lens's default."""
    signals: tuple[str, ...] = ("is_click", "long_view")
    """Binary logged signals whose one-step rates are estimated (names of ``BINARY_SIGNALS``)."""
    n_boot: int = 1000
    """Bootstrap resamples of the users for the intervals; >= 1."""
    alpha: float = 0.05
    """Intervals cover ``1 − alpha``."""
    seed: int = 0
    """Seed of the bootstrap resampling."""
    batch_size: int = 256
    """Rows scored together over the whole pool ((batch_size, pool) float64 at a time)."""

    def __post_init__(self) -> None:
        if self.policy not in ("softmax", "epsilon_greedy", "greedy"):
            raise ConfigError(
                "real_exposure policy must be 'softmax', 'epsilon_greedy' or 'greedy', "
                f"got {self.policy!r}"
            )
        if not self.temperature > 0.0 or not 0.0 < self.epsilon <= 1.0:
            raise ConfigError("real_exposure temperature must be > 0 and epsilon in (0, 1]")
        bad = [s for s in self.signals if s not in BINARY_SIGNALS]
        if not self.signals or bad:
            raise ConfigError(f"real_exposure signals must be among {BINARY_SIGNALS}, got {bad}")
        if self.n_boot < 1 or self.batch_size < 1 or not 0.0 < self.alpha < 1.0:
            raise ConfigError(
                "real_exposure: need n_boot >= 1, batch_size >= 1 and alpha in (0, 1)"
            )

    def ope_config(self) -> LoggedOPEConfig:
        """The ``ope`` lens config of the same π (``softmax`` / ``epsilon_greedy`` only)."""
        policy: Literal["softmax", "epsilon_greedy"] = (
            "epsilon_greedy" if self.policy == "epsilon_greedy" else "softmax"
        )
        return LoggedOPEConfig(policy=policy, temperature=self.temperature, epsilon=self.epsilon)


class PoolScorer(Protocol):
    """``(obs (B, 128) float32, history | None, pool (P,) int64 video ids) -> (B, P)`` float
    scores of every pool video in each row's state, higher first, ``-inf`` for a video the
    scorer does not know. ``history_len`` (int) asks for a :class:`RowHistory` of that many
    rows (0: none)."""

    history_len: int

    def __call__(
        self, obs: np.ndarray, history: RowHistory | None, pool: np.ndarray
    ) -> np.ndarray: ...


class _AgentPool(AgentScorer):
    """An agent's :meth:`~noetik.agents.core.base.Agent.item_scores` of the pool videos it
    knows (matched through ``agent.spec.video_ids``), ``-inf`` for the others."""

    def __call__(  # type: ignore[override]
        self, obs: np.ndarray, history: RowHistory | None, pool: np.ndarray
    ) -> np.ndarray:
        """(B, P) float32 scores (see :class:`PoolScorer`)."""
        action, known = self.lookup(pool)
        out = np.full((len(obs), len(pool)), -np.inf, dtype=np.float32)
        if not known.any():
            return out
        hist = self.torch_history(history)
        with torch.inference_mode():
            obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
            items_t = torch.as_tensor(action[known], dtype=torch.int64, device=self.device)
            out[:, known] = self.agent.item_scores(obs_t, hist, items_t).float().cpu().numpy()
        return out


class _RowPool:
    """A per-impression :class:`Scorer` asked about every pool video: each row repeated over
    chunks of the pool (at most ``_ROW_SCORER_CELLS`` (row, video) pairs per call)."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer
        self.history_len = int(getattr(scorer, "history_len", 0))

    def __call__(self, obs: np.ndarray, history: RowHistory | None, pool: np.ndarray) -> np.ndarray:
        """(B, P) float32 scores (see :class:`PoolScorer`)."""
        b, p = len(obs), len(pool)
        out = np.empty((b, p), dtype=np.float32)
        step = max(1, _ROW_SCORER_CELLS // max(b, 1))
        for lo in range(0, p, step):
            videos = pool[lo : lo + step]
            rows = np.repeat(np.arange(b), len(videos))
            hist = None
            if history is not None:
                hist = RowHistory(*(a[rows] for a in _fields(history)))
            scores = self.scorer(obs[rows], hist, np.tile(videos, b))
            out[:, lo : lo + len(videos)] = np.asarray(scores, dtype=np.float32).reshape(b, -1)
        return out


def _fields(h: RowHistory) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return h.video_ids, h.signals, h.gap_s, h.mask


def pool_scorer(scorer: Agent | Scorer | PoolScorer) -> PoolScorer:
    """The :class:`PoolScorer` of an agent (its scores of the pool videos, computed together
    per row), of a per-impression :class:`~noetik.evaluation.random_log.Scorer` (e.g.
    :func:`~noetik.evaluation.random_log.popularity_scorer`; each row repeated over the pool),
    or ``scorer`` itself when it already is one (``pool_scores = True`` attribute)."""
    if isinstance(scorer, Agent):
        return _AgentPool(scorer)
    if getattr(scorer, "pool_scores", False):
        return scorer  # type: ignore[return-value]
    return _RowPool(scorer)  # type: ignore[arg-type]


class _Fixed:
    """The same scores (P,) of the pool videos in every state (None: 0 for every video)."""

    history_len, pool_scores = 0, True

    def __init__(self, values: np.ndarray | None = None) -> None:
        self.values = values

    def __call__(self, obs: np.ndarray, history: RowHistory | None, pool: np.ndarray) -> np.ndarray:
        """(B, P) float32 scores (see :class:`PoolScorer`)."""
        if self.values is None:
            return np.zeros((len(obs), len(pool)), dtype=np.float32)
        if len(self.values) != len(pool):
            raise ConfigError("real_exposure: the fixed scores were built for another pool")
        return np.broadcast_to(self.values, (len(obs), len(pool)))


def constant_scorer() -> PoolScorer:
    """Every pool video scores 0: under ``softmax`` or ``greedy`` (ties split evenly) π is
    the uniform logging policy itself (w ≡ 1): the lens's reference row."""
    return _Fixed()


def popularity_pool_scorer(train: Transitions, pool: np.ndarray) -> PoolScorer:
    """``log(1 + exposures in train)`` of each ``pool`` video (0 if never logged there),
    the same in every state: under ``softmax`` at temperature 1, π ∝ 1 + exposures (the
    ranking of :func:`~noetik.evaluation.random_log.popularity_scorer`)."""
    pool = np.asarray(pool, dtype=np.int64)
    counts = popularity_scorer(train)(np.zeros((len(pool), 0), np.float32), None, pool)
    return _Fixed(np.log1p(np.asarray(counts, dtype=np.float64)).astype(np.float32))


def exposure_pool(
    data: KuaiRandDataset | Path | str | None = None, log: RandomLog | None = None
) -> np.ndarray:
    """(P,) int64 sorted video ids the random exposure was uniform over: the videos of the
    dataset's whole random log, plus any of the evaluated ``log`` outside it."""
    parts = [] if log is None else [np.asarray(log.video_id, dtype=np.int64)]
    ds = data if isinstance(data, KuaiRandDataset) else load_kuairand(data)
    if ds.has(FileKind.LOG_RANDOM):
        videos = ds.interactions(FileKind.LOG_RANDOM).select(pl.col("video_id").unique())
        parts.append(videos.collect()["video_id"].to_numpy().astype(np.int64))
    if not parts:
        raise ConfigError("real_exposure: no random log to take the exposure pool from")
    return np.unique(np.concatenate(parts))


def pool_policy(scores: np.ndarray, config: RealExposureConfig) -> np.ndarray:
    """(B, P) float64 π over the pool from ``scores`` (B, P) (``-inf``: unknown video, π = 0;
    see the module doc). Raises ConfigError when no pool video is known or the unknown videos
    differ between rows."""
    s = np.asarray(scores, dtype=np.float64)
    if np.isnan(s).any() or np.isposinf(s).any():
        raise ConfigError("real_exposure: the scorer returned NaN or +inf scores")
    known = np.isfinite(s)
    if not known.any(axis=1).all():
        raise ConfigError("real_exposure: the scorer knows no video of the exposure pool")
    if not (known == known[:1]).all():
        raise ConfigError("real_exposure: the scorer's unknown pool videos differ between rows")
    cols = known[0]
    probs = np.zeros_like(s)
    kept = s[:, cols]
    if config.policy == "greedy":
        best = kept == kept.max(axis=1, keepdims=True)
        probs[:, cols] = best / best.sum(axis=1, keepdims=True)
    else:
        kept_t = torch.from_numpy(kept)
        if config.standardise and config.policy == "softmax":
            kept_t = standardise_scores(kept_t)
        probs[:, cols] = policy_probs(kept_t, config.ope_config()).numpy()
    return probs


def pool_batches(
    scorer: Agent | Scorer | PoolScorer,
    log: RandomLog,
    pool: np.ndarray,
    config: RealExposureConfig,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(index (B,) int64, π (B, P) float64)`` for consecutive batches of ``config.batch_size``
    impressions of ``log``, π over ``pool`` (P,) (:func:`pool_policy`)."""
    scorer = pool_scorer(scorer)
    n, p = len(log.video_id), len(pool)
    b = min(config.batch_size, max(n, 1))
    require(
        b * p * 8.0 * 4,
        f"real_exposure: scores of {b:,} rows x {p:,} pool videos",
        "a lower real_exposure batch_size",
    )
    k = int(getattr(scorer, "history_len", 0))
    for lo in range(0, n, b):
        index = np.arange(lo, min(n, lo + b), dtype=np.int64)
        history = log.history(index, k) if k > 0 else None
        scores = scorer(log.obs[index].astype(np.float32), history, pool)
        if np.shape(scores) != (len(index), p):
            raise ValueError(f"pool scorer returned {np.shape(scores)}, expected {(len(index), p)}")
        yield index, pool_policy(scores, config)


def target_weights(
    scorer: Agent | Scorer | PoolScorer,
    log: RandomLog,
    pool: np.ndarray,
    config: RealExposureConfig | None = None,
) -> np.ndarray:
    """(N,) float64 importance weights ``π(a_i|x_i) · |pool|`` of the impressions of ``log``
    (their videos ``a_i`` must be in ``pool``, sorted unique int64)."""
    config = config or RealExposureConfig()
    pool = np.asarray(pool, dtype=np.int64)
    where = np.searchsorted(pool, log.video_id)
    inside = where < len(pool)
    inside[inside] = pool[where[inside]] == log.video_id[inside]
    if not inside.all():
        raise ConfigError(
            f"real_exposure: {int((~inside).sum())} logged videos are outside the exposure pool"
        )
    out = np.empty(len(log.video_id), dtype=np.float64)
    for index, probs in pool_batches(scorer, log, pool, config):
        out[index] = probs[np.arange(len(index)), where[index]] * len(pool)
    return out


def _count(n: float) -> dict[str, float]:
    return {"mean": float(n), "low": float(n), "high": float(n)}


def outcomes(
    signals: np.ndarray, config: RealExposureConfig, reward: RewardConfig | None = None
) -> dict[str, np.ndarray]:
    """``{name: (N,) float64}`` of the logged ``signals`` (N, 12) (:data:`SIGNALS` order): each
    of ``config.signals`` (``is_click`` -> ``click``) and ``reward`` (default reward if None)."""
    out = {
        s.removeprefix("is_"): signals[:, SIGNALS.index(s)].astype(np.float64)
        for s in config.signals
    }
    out["reward"] = reward_from_signals(signals, reward or RewardConfig(), np.float64)
    return out


def exposure_estimates(
    user: np.ndarray,
    weights: np.ndarray,
    values: Mapping[str, np.ndarray],
    config: RealExposureConfig | None = None,
    pool_size: int | None = None,
) -> Lens:
    """The lens's report from ``weights`` (N,) of impressions of ``user`` (N,) and their
    outcomes ``values`` ({name: (N,)}): ``<name>_is``, ``<name>_snips``, ``<name>_logged``,
    ``<name>_gain`` with intervals over users, and the counts ``ess``, ``ess_fraction``,
    ``n_rows``, ``n_users`` (and ``pool_size`` when given); see the module doc."""
    config = config or RealExposureConfig()
    w = np.asarray(weights, dtype=np.float64)
    users, inverse = np.unique(np.asarray(user), return_inverse=True)
    n_users = len(users)

    def per_user(x: np.ndarray) -> np.ndarray:
        return np.bincount(inverse, x, n_users)

    rows, total_w = per_user(np.ones_like(w)), per_user(w)
    num: dict[str, np.ndarray] = {}
    den: dict[str, np.ndarray] = {}
    for name, column in values.items():
        y = np.asarray(column, dtype=np.float64)
        wy = per_user(w * y)
        logged = per_user(y)
        num |= {f"{name}_is": wy, f"{name}_snips": wy, f"{name}_logged": logged}
        num[f"{name}_gain"] = wy - logged  # IS − logged on the same resampled users
        den |= {f"{name}_is": rows, f"{name}_snips": total_w, f"{name}_logged": rows}
        den[f"{name}_gain"] = rows
    # ratios of per-user sums resampled over users: a user's correlated rows move together
    boot = bootstrap_means(
        num, den, n_boot=config.n_boot, level=1.0 - config.alpha, seed=config.seed
    )
    out: Lens = {name: estimate.as_dict() for name, estimate in boot.items()}
    squares = float(np.sum(w * w))
    ess = float(w.sum()) ** 2 / squares if squares > 0 else 0.0
    out["ess"] = _count(ess)
    out["ess_fraction"] = _count(ess / len(w))
    out["n_rows"] = _count(len(w))
    out["n_users"] = _count(n_users)
    if pool_size is not None:
        out["pool_size"] = _count(pool_size)
    return out


def low_ess_note(lens: Lens) -> str | None:
    """A one-line warning when the lens's effective sample size is below
    :data:`MIN_RELIABLE_ESS` (its intervals then under-cover), else None."""
    ess = lens.get("ess", {}).get("mean")
    if ess is None or ess >= MIN_RELIABLE_ESS:
        return None
    return (
        f"effective sample size {ess:,.1f} < {MIN_RELIABLE_ESS:g}: π is far from uniform "
        "over the pool and the intervals are unreliable"
    )


def evaluate_real_exposure(
    scorer: Agent | Scorer | PoolScorer,
    data: RandomLog | KuaiRandDataset | Path | str | None = None,
    config: RealExposureConfig | None = None,
    *,
    pool: np.ndarray | None = None,
    reward: RewardConfig | None = None,
) -> Lens:
    """The ``real_exposure`` lens of ``scorer`` (an agent, a per-impression scorer or a
    :class:`PoolScorer`) on ``data`` (a :class:`RandomLog`, or a dataset / folder / None whose
    whole random log is loaded), π over ``pool`` (required with a RandomLog; default:
    :func:`exposure_pool` of the dataset), the ``reward`` (the task's;
    default reward if None) estimated too; see :func:`exposure_estimates`."""
    config = config or RealExposureConfig()
    if isinstance(data, RandomLog):
        if pool is None:
            raise ConfigError("real_exposure: give the pool of a RandomLog (exposure_pool)")
        log = data
    else:
        ds = data if isinstance(data, KuaiRandDataset) else load_kuairand(data)
        log = load_random_log(ds)
        pool = exposure_pool(ds, log) if pool is None else pool
    weights = target_weights(scorer, log, pool, config)
    values = outcomes(log.signals, config, reward)
    return exposure_estimates(log.user_id, weights, values, config, len(pool))
