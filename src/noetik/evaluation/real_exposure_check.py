"""Unbiasedness of the ``real_exposure`` lens, checked against a synthetic world's TRUE rates.

On a synthetic KuaiRand dataset (:mod:`noetik.data.synthetic`) the random log's contexts stay
fixed (users, times, hours, tabs, states: :func:`~noetik.evaluation.random_log.load_random_log`)
and the log is redrawn ``repeats`` times as KuaiRand's is drawn: each impression's video
uniform over the exposure pool, its click and long view Bernoulli from the world's TRUE
probabilities for that (user, video, hour, tab) (one uniform per impression for both, so a
long view implies a click, as the model's thresholds nest). Every policy is estimated on the
same redrawn logs by the lens's own code (:func:`~noetik.evaluation.real_exposure.pool_batches`,
:func:`~noetik.evaluation.real_exposure.exposure_estimates`) and compared with its TRUE
one-step rate on those contexts, computed exactly: ``mean_i Σ_a π(a|x_i) p_true(x_i, a)``.

>>> rows = run_exposure_check(ds, default_policies(ds, log, pool), ExposureCheckConfig())

Each row (policy, signal, estimator ``IS`` / ``SNIPS``): ``true``, ``mean`` of the estimates,
``bias``, ``rmse``, ``coverage`` (share of repeats whose interval holds ``true``), ``width``
(mean interval width), ``ess`` (mean effective sample size), ``n`` (repeats with an estimate).
The intervals resample users, so they also carry the variation of the contexts, which this
check holds fixed: they may over-cover somewhat.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl

from noetik.data.dataset import KuaiRandDataset
from noetik.data.schema import FileKind
from noetik.data.synthetic import SyntheticWorld, load_config
from noetik.data.transitions import Transitions
from noetik.errors import ConfigError, DataError
from noetik.evaluation.random_log import RandomLog, RowHistory
from noetik.evaluation.real_exposure import (
    PoolScorer,
    RealExposureConfig,
    constant_scorer,
    exposure_estimates,
    pool_batches,
    popularity_pool_scorer,
)
from noetik.utils.seeding import rng

__all__ = [
    "CHECK_SIGNALS",
    "CheckPolicy",
    "ExposureCheckConfig",
    "LinearPoolScorer",
    "default_policies",
    "format_check",
    "run_exposure_check",
]

#: The signals checked (those the synthetic world gives TRUE probabilities of).
CHECK_SIGNALS: tuple[str, ...] = ("is_click", "long_view")


@dataclass(frozen=True)
class ExposureCheckConfig:
    """How many logs are redrawn and how each is summarised."""

    repeats: int = 200
    """R: random logs redrawn on the fixed contexts; >= 2."""
    n_boot: int = 200
    """Bootstrap resamples of each interval; >= 1."""
    alpha: float = 0.05
    """Intervals cover ``1 − alpha``."""
    seed: int = 0
    """Seed of the redrawn logs (the bootstrap of repeat r is seeded by ``seed + r``)."""
    batch_size: int = 256
    """Rows scored together over the whole pool."""

    def __post_init__(self) -> None:
        if self.repeats < 2 or self.n_boot < 1 or self.batch_size < 1:
            raise ConfigError("exposure check: need repeats >= 2, n_boot and batch_size >= 1")
        if not 0.0 < self.alpha < 1.0:
            raise ConfigError(f"exposure check alpha must be in (0, 1), got {self.alpha}")


@dataclass(frozen=True)
class CheckPolicy:
    """One target policy of the check: a scorer and how π is built from its scores."""

    scorer: Any
    """An agent, a per-impression scorer or a :class:`PoolScorer`."""
    config: RealExposureConfig = field(default_factory=RealExposureConfig)
    """π from the scores (``policy``, ``temperature``, ``epsilon``)."""


class LinearPoolScorer:
    """A fixed random linear scorer ``score(x, v) = z(x) · θ_v``: ``z`` the state
    standardised by the log's means and deviations, ``θ_v ~ N(0, scale² / 128)`` per pool
    video (seeded), so scores have about ``scale`` standard deviation and π depends on the
    state."""

    history_len, pool_scores = 0, True

    def __init__(self, log: RandomLog, pool: np.ndarray, scale: float = 1.0, seed: int = 0):
        obs = log.obs.astype(np.float64)
        self.mean, self.std = obs.mean(axis=0), obs.std(axis=0)
        self.std[self.std == 0.0] = 1.0
        dim = obs.shape[1]
        g = rng(seed, "linear_pool_scorer")
        self.theta = g.normal(0.0, scale / np.sqrt(dim), size=(dim, len(pool)))
        self.pool = np.asarray(pool, dtype=np.int64)

    def __call__(self, obs: np.ndarray, history: RowHistory | None, pool: np.ndarray) -> np.ndarray:
        """(B, P) float32 scores (see :class:`PoolScorer`)."""
        if not np.array_equal(pool, self.pool):
            raise ConfigError("LinearPoolScorer: built for another pool")
        z = (np.asarray(obs, dtype=np.float64) - self.mean) / self.std
        scores: np.ndarray = (z @ self.theta).astype(np.float32)
        return scores


def default_policies(
    log: RandomLog, pool: np.ndarray, train: Transitions, seed: int = 0
) -> dict[str, CheckPolicy]:
    """The check's policies: ``uniform`` (the logging policy, w ≡ 1), ``popularity``
    (π ∝ 1 + training exposures), ``linear softmax`` (:class:`LinearPoolScorer`, softmax at
    temperature 1) and ``popularity ε-greedy`` (ε = 0.1: the most exposed pool video gets
    0.9 of the mass, a near-greedy policy with a tiny effective sample size)."""
    popularity: PoolScorer = popularity_pool_scorer(train, pool)
    return {
        "uniform": CheckPolicy(constant_scorer()),
        "popularity": CheckPolicy(popularity),
        "linear softmax": CheckPolicy(LinearPoolScorer(log, pool, 1.0, seed)),
        "popularity ε-greedy": CheckPolicy(
            popularity, RealExposureConfig(policy="epsilon_greedy", epsilon=0.1)
        ),
    }


def _hour_tab(ds: KuaiRandDataset, log: RandomLog) -> tuple[np.ndarray, np.ndarray]:
    """(N,) int64 hour and tab of each impression of ``log`` (the dataset's whole random log,
    in the order :func:`load_random_log` keeps: by user, then time)."""
    frame = (
        ds.interactions(FileKind.LOG_RANDOM)
        .select("user_id", "video_id", "time_ms", "hour", "tab")
        .collect()
        .sort(["user_id", "time_ms"], maintain_order=True)
    )
    same = frame.height == len(log.video_id) and np.array_equal(
        frame["video_id"].to_numpy(), log.video_id
    )
    if not same or not np.array_equal(frame["user_id"].to_numpy(), log.user_id):
        raise DataError(ds.root, "the random log's rows do not match the loaded random log")
    hour = frame["hour"].fill_null(0).cast(pl.Int64).to_numpy()
    return hour, frame["tab"].cast(pl.Int64).to_numpy()


def run_exposure_check(
    ds: KuaiRandDataset,
    log: RandomLog,
    pool: np.ndarray,
    policies: Mapping[str, CheckPolicy],
    config: ExposureCheckConfig | None = None,
) -> list[dict[str, Any]]:
    """The check's rows (module doc) of ``policies`` on the whole random log ``log`` of the
    synthetic dataset ``ds`` (its world rebuilt from ``noetik_synth.json``), π over ``pool``."""
    config = config or ExposureCheckConfig()
    if not (ds.root / "noetik_synth.json").is_file():
        raise DataError(ds.root, "the exposure check needs a synthetic dataset (noetik_synth.json)")
    world = SyntheticWorld.from_config(load_config(ds.root))
    hour, tab = _hour_tab(ds, log)
    n, p, r = len(log.video_id), len(pool), config.repeats
    names = list(policies)
    weights = {name: np.empty((r, n), dtype=np.float32) for name in names}
    truth = {name: np.zeros((len(CHECK_SIGNALS), n)) for name in names}
    outcomes = np.empty((len(CHECK_SIGNALS), r, n), dtype=bool)
    batches = [
        pool_batches(c.scorer, log, pool, _batched(c.config, config)) for c in policies.values()
    ]
    for parts in zip(*batches, strict=True):
        index = parts[0][0]
        users = log.user_id[index][:, None]
        args = (users, pool[None, :], hour[index][:, None], tab[index][:, None])
        p_true = np.stack([world.click_probability(*args), world.long_view_probability(*args)])
        g = rng(config.seed, "real_exposure_check", int(index[0]))
        shown = g.integers(0, p, size=(r, len(index)))  # the redrawn videos, uniform
        u = g.random((r, len(index)))  # one uniform per impression: long view implies click
        rows = np.arange(len(index))[None, :]
        for s in range(len(CHECK_SIGNALS)):
            outcomes[s][:, index] = u < p_true[s][rows, shown]
        for name, (_, probs) in zip(names, parts, strict=True):
            truth[name][:, index] = np.einsum("bp,sbp->sb", probs, p_true)
            weights[name][:, index] = probs[rows, shown] * p
    out: list[dict[str, Any]] = []
    for name in names:
        out += _summarise(name, log.user_id, weights[name], outcomes, truth[name], config=config)
    return out


def _batched(policy: RealExposureConfig, config: ExposureCheckConfig) -> RealExposureConfig:
    return replace(policy, batch_size=config.batch_size)


def _summarise(
    name: str,
    user: np.ndarray,
    weights: np.ndarray,
    outcomes: np.ndarray,
    truth: np.ndarray,
    *,
    config: ExposureCheckConfig,
) -> list[dict[str, Any]]:
    """The rows of one policy: each signal x estimator over the R redrawn logs."""
    labels = [s.removeprefix("is_") for s in CHECK_SIGNALS]
    estimates: dict[str, list[dict[str, float]]] = {}
    ess = []
    for rep in range(config.repeats):
        summary = RealExposureConfig(
            n_boot=config.n_boot, alpha=config.alpha, seed=config.seed + rep
        )
        values = {label: outcomes[s, rep] for s, label in enumerate(labels)}
        lens = exposure_estimates(user, weights[rep].astype(np.float64), values, summary)
        ess.append(lens["ess"]["mean"])
        for key, value in lens.items():
            estimates.setdefault(key, []).append(value)
    rows = []
    for s, label in enumerate(labels):
        true = float(truth[s].mean())
        for estimator in ("is", "snips"):
            got = estimates[f"{label}_{estimator}"]
            mean = np.array([e["mean"] for e in got])
            low, high = np.array([e["low"] for e in got]), np.array([e["high"] for e in got])
            ok = np.isfinite(mean) & np.isfinite(low) & np.isfinite(high)
            covered = (low <= true) & (true <= high)
            rows.append(
                {
                    "policy": name,
                    "signal": CHECK_SIGNALS[s],
                    "estimator": estimator.upper(),
                    "true": true,
                    "mean": float(mean[ok].mean()) if ok.any() else float("nan"),
                    "bias": float(mean[ok].mean() - true) if ok.any() else float("nan"),
                    "rmse": float(np.sqrt(np.mean((mean[ok] - true) ** 2)))
                    if ok.any()
                    else float("nan"),
                    "coverage": float(np.mean(covered & ok)),
                    "width": float(np.mean(high[ok] - low[ok])) if ok.any() else float("nan"),
                    "ess": float(np.mean(ess)),
                    "n": int(ok.sum()),
                }
            )
    return rows


def format_check(rows: list[dict[str, Any]]) -> str:
    """The check's rows as a Markdown table."""
    head = (
        "| policy | signal | estimator | true | mean | bias | RMSE | coverage | width | ESS | n |"
    )
    lines = [head, "|" + " --- |" * 11]
    for row in rows:
        lines.append(
            f"| {row['policy']} | {row['signal']} | {row['estimator']} | {row['true']:.4f} | "
            f"{row['mean']:.4f} | {row['bias']:+.4f} | {row['rmse']:.4f} | "
            f"{row['coverage']:.3f} | {row['width']:.4f} | {row['ess']:,.0f} | {row['n']} |"
        )
    return "\n".join(lines)
