"""Bootstrap over users: every interval of the behavioural analysis resamples whole users.

Interactions of one user are not independent, so each replicate draws the U users with
replacement and recomputes the statistic from the drawn users' rows (a cluster bootstrap).
Statistics are written as functions of **per-user sums** ((U, K) matrices built with polars):
a replicate's sums are ``counts @ sums`` with ``counts`` (B, U) the times each user is drawn,
so a ratio of sums (a rate pooled over interactions), a mean over users (sum of values / sum
of indicators) or a least-squares slope all cost one matrix product. Quantiles of per-row
values (a median session length) use the drawn counts as row weights
(:meth:`UserBootstrap.quantile`).

Every statistic of one analysis sees the same replicates (the counts depend only on the seed
and U), so same seed -> same intervals.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

from noetik.errors import ConfigError
from noetik.utils.bootstrap import check_bootstrap, percentile_interval, resample_counts

#: Largest number of counts held in memory at once (replicates x users).
_CHUNK_CELLS = 4_000_000


@dataclass(frozen=True)
class Finding:
    """A point estimate with its bootstrap interval and whether it counts as robust."""

    value: float
    """Point estimate on all the data."""
    low: float
    """Lower end of the percentile interval (NaN when no replicate was defined)."""
    high: float
    """Upper end of the percentile interval."""
    null: float | None
    """The no-effect value the interval is tested against (None: descriptive quantity)."""
    robust: bool
    """With a ``null``: the interval excludes it. Without: the interval is finite and narrower
    than ``precision`` x |value| (the quantity is measured precisely)."""

    def as_dict(self) -> dict[str, float | bool | None]:
        """The fields as a JSON-friendly dict."""
        return {
            "value": self.value,
            "low": self.low,
            "high": self.high,
            "null": self.null,
            "robust": self.robust,
        }


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` elementwise (any equal shapes, float64), NaN where ``den == 0``."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


class UserBootstrap:
    """Seeded resampling of ``n_users`` users, shared by every statistic of one analysis."""

    def __init__(
        self,
        n_users: int,
        n_boot: int,
        seed: int,
        alpha: float = 0.05,
        precision: float = 0.25,
    ) -> None:
        if n_users < 1:
            raise ConfigError(f"the bootstrap needs at least one user, got n_users={n_users}")
        check_bootstrap(n_boot, 1.0 - alpha, min_boot=2)
        self.n_users, self.n_boot, self.seed = n_users, n_boot, seed
        self.alpha, self.precision = alpha, precision
        self._chunk = max(1, _CHUNK_CELLS // n_users)
        self._counts: np.ndarray | None = None

    def counts(self) -> Iterator[np.ndarray]:
        """The replicates in chunks: (C, U) float64 times each user is drawn (same every call;
        drawn once, kept as uint16)."""
        if self._counts is None:
            chunks = []
            for i, lo in enumerate(range(0, self.n_boot, self._chunk)):
                rng = np.random.default_rng([self.seed, i])
                drawn = resample_counts(rng, min(self._chunk, self.n_boot - lo), self.n_users)
                chunks.append(np.minimum(drawn, np.iinfo(np.uint16).max).astype(np.uint16))
            self._counts = np.concatenate(chunks)
        for lo in range(0, self.n_boot, self._chunk):
            yield self._counts[lo : lo + self._chunk].astype(np.float64)

    def sums(self, per_user: np.ndarray) -> np.ndarray:
        """(B, K) float64 replicate sums of ``per_user`` (U, K) (or (U,) -> (B,))."""
        stats = np.asarray(per_user, dtype=np.float64)
        flat = stats.reshape(self.n_users, -1)
        out = np.concatenate([c @ flat for c in self.counts()], axis=0)
        return out.reshape(self.n_boot, *stats.shape[1:])

    def quantile(
        self, values: np.ndarray, users: np.ndarray, q: float, levels: int = 64, passes: int = 4
    ) -> tuple[float, np.ndarray]:
        """Lower weighted ``q``-quantile of ``values`` (N,) float64 whose rows belong to
        ``users`` (N,) int64 (0..U-1): the point value and the (B,) replicate values (NaN in a
        replicate that drew no row), all exact. The lower quantile is the smallest value whose
        cumulative weight reaches ``q`` x the total weight.

        No (B, N) weight matrix is built: each pass counts every user's rows at or below
        ``levels`` candidate values ((U, levels) matrix, one product with the counts) and
        narrows each replicate to a bracket of candidates holding its quantile; the last step
        walks the few rows inside each replicate's bracket."""
        order = np.argsort(values, kind="stable")
        v = np.asarray(values, dtype=np.float64)[order]
        if not len(v):
            return float("nan"), np.full(self.n_boot, np.nan)
        u = np.asarray(users, dtype=np.int64)[order]
        point = float(v[min(max(int(np.ceil(q * len(v))) - 1, 0), len(v) - 1)])
        cand = np.unique(v)
        target = q * self.sums(np.bincount(u, minlength=self.n_users).astype(np.float64))
        lo, hi = np.zeros(self.n_boot, np.int64), np.full(self.n_boot, len(cand) - 1)
        base = np.zeros(self.n_boot)  # weight of the rows below cand[lo]
        for _ in range(passes):
            if (lo == hi).all():
                break
            pick = np.unique(np.linspace(lo.min(), hi.max(), levels).round().astype(np.int64))
            cum = self.sums(_counts_at_or_below(v, u, cand[pick], self.n_users))
            first = np.minimum((cum < target[:, None]).sum(axis=1), len(pick) - 1)
            below = first > 0
            lo = np.where(below, pick[np.maximum(first - 1, 0)] + 1, lo)
            base = np.where(below, cum[np.arange(self.n_boot), np.maximum(first - 1, 0)], base)
            hi = pick[first]
        reps = self._walk(v, u, low=cand[lo], high=cand[hi], base=base, target=target)
        return point, np.where(target > 0, reps, np.nan)

    def _walk(
        self,
        v: np.ndarray,
        u: np.ndarray,
        *,
        low: np.ndarray,
        high: np.ndarray,
        base: np.ndarray,
        target: np.ndarray,
    ) -> np.ndarray:
        """(B,) first value of the sorted rows ``v`` in [low_b, high_b] whose cumulative
        weight (``base`` (B,) plus the drawn weights of the bracket's rows) reaches
        ``target`` (B,); ``high`` where the bracket holds a single distinct value."""
        start = np.searchsorted(v, low, side="left")
        stop = np.searchsorted(v, high, side="right")
        width = np.where(low == high, 0, stop - start)
        out = high.astype(np.float64).copy()
        if width.max() == 0:
            return out
        rows = np.minimum(start[:, None] + np.arange(width.max()), len(v) - 1)  # (B, K)
        inside = np.arange(width.max()) < width[:, None]
        b0 = 0
        for c in self.counts():
            span = slice(b0, b0 + len(c))
            w = np.take_along_axis(c, u[rows[span]], axis=1) * inside[span]
            cum = base[span, None] + np.cumsum(w, axis=1)
            k = np.minimum((cum < target[span, None]).sum(axis=1), width[span] - 1)
            walked = v[rows[span][np.arange(len(c)), np.maximum(k, 0)]]
            out[span] = np.where(width[span] > 0, walked, out[span])
            b0 += len(c)
        return out

    def estimate(self, point: float, reps: np.ndarray, null: float | None = None) -> Finding:
        """A :class:`Finding` of ``point`` from its (B,) replicate values ``reps``: the
        percentile interval without interpolation (the replicate at or just outside each
        tail's quantile, so infinite replicates, e.g. a lift over a zero rate, stay valid);
        replicates where the statistic is undefined (NaN) are left out."""
        low, high = percentile_interval(reps, 1.0 - self.alpha, outward=True)
        if np.isnan(low) or np.isnan(point):
            return Finding(float(point), float("nan"), float("nan"), null, False)
        if null is not None:
            robust = bool(low > null or high < null)
        else:
            width = float(high - low)
            robust = bool(np.isfinite(width) and width <= self.precision * abs(point))
        return Finding(float(point), float(low), float(high), null, robust)

    def summed(self, per_user: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Column sums of ``per_user`` (U, ...) over all users (1, K) and per replicate (B, K),
        for several :meth:`estimates` of the same sums."""
        stats = np.asarray(per_user, dtype=np.float64).reshape(self.n_users, -1)
        return stats.sum(axis=0, keepdims=True), self.sums(stats)

    def estimates(
        self,
        per_user: np.ndarray | tuple[np.ndarray, np.ndarray],
        statistic: Callable[[np.ndarray], np.ndarray],
        null: float | np.ndarray | None = None,
    ) -> list[Finding]:
        """Estimates of ``statistic`` (sums (R, K) -> values (R, M)) applied to the column
        sums of ``per_user`` (U, ...) (or to its :meth:`summed` pair): the point from all
        users, intervals from the replicates. ``null`` is one value for all M outputs or (M,)
        values (NaN: descriptive)."""
        point_sums, rep_sums = per_user if isinstance(per_user, tuple) else self.summed(per_user)
        with np.errstate(divide="ignore", invalid="ignore"):
            point = np.asarray(statistic(point_sums))[0]
            reps = np.asarray(statistic(rep_sums))
        nulls = np.broadcast_to(np.asarray(np.nan if null is None else null, float), point.shape)
        return [
            self.estimate(point[m], reps[:, m], None if np.isnan(nulls[m]) else float(nulls[m]))
            for m in range(point.shape[0])
        ]


def _counts_at_or_below(
    sorted_values: np.ndarray, users: np.ndarray, levels: np.ndarray, n_users: int
) -> np.ndarray:
    """(U, L) float64: rows of each user with a value <= each of the increasing ``levels``
    (L,), for ``sorted_values`` (N,) float64 and their ``users`` (N,) int64."""
    slot = np.searchsorted(levels, sorted_values, side="left")
    width = len(levels) + 1
    counts = np.bincount(users * width + slot, minlength=n_users * width)
    return np.cumsum(counts.reshape(n_users, width), axis=1)[:, :-1].astype(np.float64)


def spearman_rows(values: np.ndarray) -> np.ndarray:
    """(R,) Spearman correlation of each row of ``values`` (R, G) float64 with 0..G-1 (average
    ranks for ties; NaN for a row with a NaN or constant values, or G < 2)."""
    values = np.atleast_2d(np.asarray(values, dtype=np.float64))
    n_rows, g = values.shape
    if g < 2:
        return np.full(n_rows, np.nan)
    less = (values[:, None, :] < values[:, :, None]).sum(axis=2)
    equal = (values[:, None, :] == values[:, :, None]).sum(axis=2)
    ranks = less + (equal + 1) / 2.0
    centred = ranks - ranks.mean(axis=1, keepdims=True)
    x = np.arange(g) - (g - 1) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = (centred @ x) / np.sqrt((centred**2).sum(axis=1) * (x**2).sum())
    return np.where(np.isnan(values).any(axis=1), np.nan, rho)
