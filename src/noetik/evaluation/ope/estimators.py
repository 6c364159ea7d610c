"""Off-policy evaluation (OPE) of a target policy π from episodes logged by a behaviour policy μ.

Pure NumPy estimators over a batch of ``N`` episodes padded to a horizon ``H``
(:class:`LoggedEpisodes`):

* :func:`is_estimate` — trajectory importance sampling (Precup et al., 2000),
* :func:`pdis_estimate` — per-decision importance sampling (Precup et al., 2000),
* :func:`wis_estimate` / :func:`wpdis_estimate` — their self-normalised (weighted) versions
  (Thomas & Brunskill, 2016),
* :func:`dr_estimate` — per-decision doubly robust (Jiang & Li, 2016),
* :func:`direct_method` — the model-only baseline, the mean of ``V̂(s_0)``,
* (in :mod:`noetik.evaluation.ope.mips`) per-decision marginalised IS over item embeddings
  (MIPS, SNMIPS), from the optional ``behavior_embed_prob`` / ``target_embed_prob``,
* :func:`bootstrap_ci` — a percentile confidence interval by resampling episodes (the readable
  reference: one estimator, one resample at a time);
* :func:`resampled_values` / :func:`bootstrap_intervals` — every estimator's value on a block
  of resamples at once, from how often each episode was drawn (the same resamples and numbers
  as :func:`bootstrap_ci`, up to float rounding; what the ``ope`` lens uses).

Conventions. Per-step ratios are ``ρ_t = π(a_t|s_t) / μ(a_t|s_t)`` on valid steps, optionally
clipped from above (``min(ρ_t, clip)``). Padded steps (``mask`` False) are an absorbing state:
ratio 1, reward 0, whatever the arrays hold there (NaN included). So the cumulative weight of an
episode that ended stays its trajectory weight, and per-step normalisation (WPDIS) averages over
all ``N`` episodes at every step. The step ``t`` is discounted by ``γ**t``. Where a
self-normalising denominator is 0 (every weight 0), the term contributes 0.

Every estimator returns an :class:`OPEEstimate`, whose ``per_episode`` values average to
``value``; ``ess`` is the effective sample size ``(Σw)² / Σw²`` of the trajectory weights
(``None`` for the direct method).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from noetik.utils.bootstrap import check_bootstrap, percentile_interval, replicates

__all__ = [
    "LoggedEpisodes",
    "OPEEstimate",
    "bootstrap_ci",
    "bootstrap_intervals",
    "direct_method",
    "dr_estimate",
    "effective_sample_size",
    "embed_ratios",
    "is_estimate",
    "pdis_estimate",
    "per_decision",
    "resampled_values",
    "step_ratios",
    "weighted_per_decision",
    "wis_estimate",
    "wpdis_estimate",
]


@dataclass(frozen=True)
class OPEEstimate:
    """One off-policy estimate of the target policy's expected discounted return.

    ``value``: the estimate. ``per_episode`` (N,) float64: each episode's contribution, whose
    mean is ``value``. ``ess``: effective sample size of the importance weights (``None`` for
    estimators without weights).
    """

    value: float
    per_episode: np.ndarray
    ess: float | None


@dataclass(frozen=True)
class LoggedEpisodes:
    """A batch of ``N`` logged episodes padded to horizon ``H``; validated on construction.

    * ``rewards`` (N, H) float: reward of step ``t``.
    * ``behavior_prob`` (N, H) float: ``μ(a_t|s_t)`` of the logged action; must be > 0 on
      valid steps.
    * ``target_prob`` (N, H) float: ``π(a_t|s_t)`` of the logged action; must be >= 0.
    * ``mask`` (N, H) bool: valid steps, a prefix of each row with at least one step.
    * ``gamma``: discount in [0, 1].
    * ``q_hat`` (N, H) float, optional: ``Q̂(s_t, a_t)``, for :func:`dr_estimate`.
    * ``v_hat`` (N, H) float, optional: ``V̂(s_t) = Σ_a π(a|s_t) Q̂(s_t, a)``, for
      :func:`dr_estimate` and :func:`direct_method`.
    * ``behavior_embed_prob`` (N, H) float, optional: ``μ(e_t|s_t) = Σ_{a: e(a) = e_t}
      μ(a|s_t)``, the probability of the logged action's embedding (category) ``e_t`` under μ,
      for MIPS (:mod:`noetik.evaluation.ope.mips`); > 0 and >= ``behavior_prob`` on valid
      steps (up to 1e-6 relative).
    * ``target_embed_prob`` (N, H) float, optional: ``π(e_t|s_t)``, the same under π; >= 0.
      Given together with ``behavior_embed_prob`` or not at all.

    Arrays are stored as float64 copies with padded steps set to 0 (ratios 1), so garbage in
    padding never reaches an estimate. Raises ``ValueError`` on any violation.
    """

    rewards: np.ndarray
    behavior_prob: np.ndarray
    target_prob: np.ndarray
    mask: np.ndarray
    gamma: float = 1.0
    q_hat: np.ndarray | None = None
    v_hat: np.ndarray | None = None
    behavior_embed_prob: np.ndarray | None = None
    target_embed_prob: np.ndarray | None = None

    def __post_init__(self) -> None:
        mask = _check_mask(self.mask)
        if not 0.0 <= float(self.gamma) <= 1.0:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma}")
        set_ = object.__setattr__
        set_(self, "mask", mask)
        set_(self, "gamma", float(self.gamma))
        for name in _ARRAYS:
            value = getattr(self, name)
            if value is not None:
                set_(self, name, _clean(name, value, mask))
        if (self.behavior_embed_prob is None) != (self.target_embed_prob is None):
            raise ValueError("behavior_embed_prob and target_embed_prob go together")
        pairs = [("behavior_prob", "target_prob")]
        if self.behavior_embed_prob is not None:
            pairs.append(("behavior_embed_prob", "target_embed_prob"))
            below = mask & (self.behavior_embed_prob < self.behavior_prob * (1.0 - 1e-6))
            if below.any():
                i, t = np.argwhere(below)[0]
                raise ValueError(
                    f"behavior_embed_prob must be >= behavior_prob (an embedding holds the "
                    f"logged action): episode {i}, step {t}"
                )
        for behaviour, target in pairs:
            bad = mask & (getattr(self, behaviour) <= 0.0)
            if bad.any():
                i, t = np.argwhere(bad)[0]
                raise ValueError(
                    f"{behaviour} must be > 0 on valid steps: episode {i}, step {t} has "
                    f"{getattr(self, behaviour)[i, t]} (the logged action is impossible under μ)"
                )
            if (getattr(self, target) < 0.0).any():
                raise ValueError(f"{target} must be >= 0")
            set_(self, behaviour, np.where(mask, getattr(self, behaviour), 1.0))
            set_(self, target, np.where(mask, getattr(self, target), 1.0))

    @property
    def n_episodes(self) -> int:
        """Number of episodes ``N``."""
        return int(self.mask.shape[0])

    def take(self, index: np.ndarray) -> LoggedEpisodes:
        """The episodes at ``index`` (M,) int, repeats allowed (for bootstrap resampling)."""
        pick = np.asarray(index, dtype=np.int64)
        arrays: dict[str, np.ndarray | None] = {n: getattr(self, n) for n in _ARRAYS[3:]}
        return LoggedEpisodes(
            rewards=self.rewards[pick],
            behavior_prob=self.behavior_prob[pick],
            target_prob=self.target_prob[pick],
            mask=self.mask[pick],
            gamma=self.gamma,
            **{name: None if a is None else a[pick] for name, a in arrays.items()},
        )


#: The (N, H) float arrays of :class:`LoggedEpisodes` (besides ``mask``).
_ARRAYS = (
    "rewards",
    "behavior_prob",
    "target_prob",
    "q_hat",
    "v_hat",
    "behavior_embed_prob",
    "target_embed_prob",
)


def _check_mask(mask: np.ndarray) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.dtype != np.bool_:
        raise ValueError(f"mask must be a bool array, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"mask must have shape (N, H) with N, H >= 1, got {arr.shape}")
    if not arr[:, 0].all():
        raise ValueError("every episode needs at least one valid step (mask[:, 0] all True)")
    if (arr[:, 1:] & ~arr[:, :-1]).any():
        raise ValueError("mask must be a prefix of each row: valid steps, then padding")
    return arr.copy()


def _clean(name: str, value: np.ndarray, mask: np.ndarray) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != mask.shape:
        raise ValueError(f"{name} must have shape {mask.shape} like mask, got {arr.shape}")
    if not np.isfinite(arr[mask]).all():
        raise ValueError(f"{name} must be finite on valid steps")
    return np.where(mask, arr, 0.0)


def step_ratios(data: LoggedEpisodes, clip: float | None = None) -> np.ndarray:
    """Per-step ratios ``min(π/μ, clip)`` (N, H) float64; 1 on padded steps.

    ``clip`` (> 0) caps each per-step ratio from above; ``None`` leaves them as they are.
    """
    return _ratios(data.target_prob, data.behavior_prob, data.mask, clip)


def embed_ratios(data: LoggedEpisodes, clip: float | None = None) -> np.ndarray:
    """Per-step marginal ratios ``min(π(e_t|s_t) / μ(e_t|s_t), clip)`` (N, H) float64 of the
    logged actions' embeddings (MIPS); 1 on padded steps. Needs the ``*_embed_prob`` arrays."""
    if data.behavior_embed_prob is None or data.target_embed_prob is None:
        raise ValueError("MIPS needs behavior_embed_prob and target_embed_prob")
    return _ratios(data.target_embed_prob, data.behavior_embed_prob, data.mask, clip)


def _ratios(
    target: np.ndarray, behaviour: np.ndarray, mask: np.ndarray, clip: float | None
) -> np.ndarray:
    ratios = target / behaviour
    if clip is not None:
        if not clip > 0.0:
            raise ValueError(f"clip must be > 0, got {clip}")
        ratios = np.minimum(ratios, clip)
    return np.where(mask, ratios, 1.0)


def effective_sample_size(weights: np.ndarray) -> float:
    """``(Σw)² / Σw²`` of ``weights`` (N,); N for equal weights, 0 if all weights are 0."""
    w = np.asarray(weights, dtype=np.float64)
    total_sq = float(np.sum(w * w))
    return 0.0 if total_sq == 0.0 else float(np.sum(w) ** 2 / total_sq)


def _discounted_rewards(data: LoggedEpisodes) -> np.ndarray:
    """``γ**t r_t`` (N, H) float64, 0 on padded steps."""
    discounts = data.gamma ** np.arange(data.mask.shape[1], dtype=np.float64)
    return data.rewards * discounts[None, :]


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with 0 wherever ``den`` is 0."""
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0.0)
    return out


def _estimate(per_episode: np.ndarray, weights: np.ndarray | None) -> OPEEstimate:
    ess = None if weights is None else effective_sample_size(weights)
    return OPEEstimate(float(np.mean(per_episode)), per_episode, ess)


def is_estimate(data: LoggedEpisodes, clip: float | None = None) -> OPEEstimate:
    """Trajectory IS: mean over episodes of ``W_i G_i``.

    ``W_i = Π_t ρ_it`` is the trajectory weight, ``G_i = Σ_t γ**t r_it`` the discounted return.
    """
    weights = np.prod(step_ratios(data, clip), axis=1)
    returns = _discounted_rewards(data).sum(axis=1)
    return _estimate(weights * returns, weights)


def wis_estimate(data: LoggedEpisodes, clip: float | None = None) -> OPEEstimate:
    """Weighted IS: ``Σ_i W_i G_i / Σ_i W_i``.

    ``per_episode`` is ``W_i G_i / mean(W)``, so its mean is the estimate.
    """
    weights = np.prod(step_ratios(data, clip), axis=1)
    returns = _discounted_rewards(data).sum(axis=1)
    per_episode = _safe_div(weights * returns, np.asarray(np.mean(weights)))
    return _estimate(per_episode, weights)


def pdis_estimate(data: LoggedEpisodes, clip: float | None = None) -> OPEEstimate:
    """Per-decision IS: mean over episodes of ``Σ_t w_it γ**t r_it``.

    ``w_it = Π_{k<=t} ρ_ik`` is the cumulative weight up to step ``t``; ESS uses the final one.
    """
    return per_decision(data, step_ratios(data, clip))


def per_decision(data: LoggedEpisodes, ratios: np.ndarray) -> OPEEstimate:
    """``mean_i Σ_t w_it γ**t r_it`` with ``w_it`` the cumulative product of per-step
    ``ratios`` (N, H) float64 (1 on padding): PDIS with action ratios, MIPS with embedding
    ratios. ESS uses the final cumulative weights."""
    cumulative = np.cumprod(ratios, axis=1)
    per_episode = (cumulative * _discounted_rewards(data)).sum(axis=1)
    return _estimate(per_episode, cumulative[:, -1])


def wpdis_estimate(data: LoggedEpisodes, clip: float | None = None) -> OPEEstimate:
    """Weighted per-decision IS: ``Σ_t Σ_i w_it γ**t r_it / Σ_i w_it``.

    Each step's cumulative weights are normalised by their mean over the N episodes;
    ``per_episode`` is ``Σ_t w_it / mean_j(w_jt) γ**t r_it``.
    """
    return weighted_per_decision(data, step_ratios(data, clip))


def weighted_per_decision(data: LoggedEpisodes, ratios: np.ndarray) -> OPEEstimate:
    """:func:`per_decision` with each step's cumulative weights normalised by their mean over
    the N episodes (WPDIS with action ratios, SNMIPS with embedding ratios)."""
    cumulative = np.cumprod(ratios, axis=1)
    normalised = _safe_div(cumulative, cumulative.mean(axis=0, keepdims=True))
    per_episode = (normalised * _discounted_rewards(data)).sum(axis=1)
    return _estimate(per_episode, cumulative[:, -1])


def dr_estimate(data: LoggedEpisodes, clip: float | None = None) -> OPEEstimate:
    """Per-decision doubly robust (Jiang & Li, 2016); needs ``q_hat`` and ``v_hat``.

    Backwards from ``DR_H = 0``: ``DR_t = v̂_t + ρ_t (r_t + γ DR_{t+1} − q̂_t)`` on valid steps,
    0 on padded ones. ``per_episode`` is ``DR_0`` of each episode.
    """
    q_hat, v_hat = _models(data)
    ratios = step_ratios(data, clip)
    horizon = data.mask.shape[1]
    following = np.zeros(data.n_episodes, dtype=np.float64)
    for t in range(horizon - 1, -1, -1):
        step = v_hat[:, t] + ratios[:, t] * (
            data.rewards[:, t] + data.gamma * following - q_hat[:, t]
        )
        following = np.where(data.mask[:, t], step, 0.0)
    return _estimate(following, np.prod(ratios, axis=1))


def direct_method(data: LoggedEpisodes) -> OPEEstimate:
    """Direct method: mean over episodes of ``v̂(s_0)``; needs ``v_hat``. ``ess`` is None."""
    if data.v_hat is None:
        raise ValueError("the direct method needs v_hat")
    return _estimate(data.v_hat[:, 0].copy(), None)


def _models(data: LoggedEpisodes) -> tuple[np.ndarray, np.ndarray]:
    if data.q_hat is None or data.v_hat is None:
        raise ValueError("doubly robust needs both q_hat and v_hat")
    return data.q_hat, data.v_hat


def bootstrap_ci(
    estimator_fn: Callable[[LoggedEpisodes], OPEEstimate],
    data: LoggedEpisodes,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float]:
    """Percentile ``1 − alpha`` interval of ``estimator_fn`` over episode resamples.

    Each of the ``n_boot`` replicates draws N episodes with replacement (the resamples of
    :func:`noetik.utils.bootstrap.replicates`, seeded by ``seed``, so the interval is
    reproducible) and re-runs ``estimator_fn`` on them; self-normalised estimators renormalise
    within each replicate. Returns ``(low, high)``.
    """
    check_bootstrap(n_boot, 1.0 - alpha)
    n = data.n_episodes
    episodes = np.arange(n)

    def statistic(counts: np.ndarray) -> np.ndarray:
        drawn = counts.astype(np.int64)
        return np.array([estimator_fn(data.take(np.repeat(episodes, c))).value for c in drawn])

    values = replicates(statistic, n, n_boot=n_boot, seed=seed)
    return percentile_interval(values, 1.0 - alpha)


def resampled_values(
    data: LoggedEpisodes,
    counts: np.ndarray,
    clip: float | None = None,
    means: Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Each estimator's value (b,) float64 on ``b`` resamples of the episodes at once.

    ``counts`` (b, N) float64: how often each episode is drawn in each resample (as
    :func:`noetik.utils.bootstrap.resample_counts` gives them). A resample's value is the
    estimator on the drawn episodes, repeats included (what :func:`bootstrap_ci` computes with
    :meth:`LoggedEpisodes.take`): a mean over the resample is ``counts @ x / N``, and the
    self-normalised estimators are ratios of such sums. Keys: ``is``, ``wis``, ``pdis``,
    ``wpdis``; ``dm`` with ``v_hat``; ``dr`` with ``q_hat`` and ``v_hat``; ``mips`` and
    ``snmips`` with the ``*_embed_prob`` arrays; plus the resampled mean of each ``means``
    entry (N,) float64 (a per-episode statistic, e.g. the return).
    """
    c = np.asarray(counts, dtype=np.float64)
    n = data.n_episodes
    if c.ndim != 2 or c.shape[1] != n:
        raise ValueError(f"counts must have shape (b, {n}), got {c.shape}")
    cumulative = np.cumprod(step_ratios(data, clip), axis=1)
    weights = cumulative[:, -1]
    discounted = _discounted_rewards(data)
    weighted_returns = weights * discounted.sum(axis=1)
    out = {
        "is": c @ weighted_returns / n,
        "wis": _safe_div(c @ weighted_returns, c @ weights),
        "pdis": c @ (cumulative * discounted).sum(axis=1) / n,
        "wpdis": _per_step_ratio(c, cumulative, discounted),
    }
    if data.behavior_embed_prob is not None:
        marginal = np.cumprod(embed_ratios(data, clip), axis=1)
        out["mips"] = c @ (marginal * discounted).sum(axis=1) / n
        out["snmips"] = _per_step_ratio(c, marginal, discounted)
    if data.v_hat is not None:
        out["dm"] = c @ data.v_hat[:, 0] / n
        if data.q_hat is not None:
            out["dr"] = c @ dr_estimate(data, clip).per_episode / n
    for name, values in (means or {}).items():
        out[name] = c @ np.asarray(values, dtype=np.float64) / n
    return out


def _per_step_ratio(c: np.ndarray, cumulative: np.ndarray, discounted: np.ndarray) -> np.ndarray:
    """Per-decision self-normalised values (b,) of resample ``counts`` (b, N)."""
    values: np.ndarray = _safe_div(c @ (cumulative * discounted), c @ cumulative).sum(axis=1)
    return values


def bootstrap_intervals(
    data: LoggedEpisodes,
    clip: float | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
    *,
    means: Mapping[str, np.ndarray] | None = None,
) -> dict[str, tuple[float, float]]:
    """``{estimator: (low, high)}``: the percentile ``1 − alpha`` interval of every estimator
    of :func:`resampled_values` (``means``: extra per-episode statistics (N,) float64).

    The resamples are those of :func:`bootstrap_ci` with the same ``n_boot`` and ``seed``
    (:func:`noetik.utils.bootstrap.replicates`), shared by every estimator, and each interval
    equals :func:`bootstrap_ci`'s for that estimator up to float rounding (~1e-15 relative),
    without building the resampled episodes: O(n_boot · N · H) in a few matrix products.
    """
    check_bootstrap(n_boot, 1.0 - alpha)
    names: list[str] = []

    def statistic(counts: np.ndarray) -> np.ndarray:
        values = resampled_values(data, counts, clip, means)
        names[:] = list(values)
        return np.column_stack([values[k] for k in names])

    reps = replicates(statistic, data.n_episodes, n_boot=n_boot, seed=seed)
    return {name: percentile_interval(reps[:, j], 1.0 - alpha) for j, name in enumerate(names)}
