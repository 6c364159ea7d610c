"""The global time cutoff of a temporal split, computed over a log held in shards.

:func:`noetik.data.splits.train_mask_expr` cuts a log at the ``train_fraction`` quantile of its
``time_ms`` (``interpolation="lower"``: the value of rank ``floor(q * (n - 1))`` in sorted
order). A shard holds only some users, so its own quantile is not the log's. This finds the
log's exact value reading one shard's times at a time: a histogram of every time locates the
bucket holding the rank, then only the times in that bucket are sorted. Memory: one shard's
times plus the histogram, whatever the size of the log.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

__all__ = ["global_cutoff"]

#: Buckets of the histogram pass.
BUCKETS = 1 << 20


def global_cutoff(times: Callable[[int], np.ndarray], n_shards: int, fraction: float) -> int:
    """The ``fraction`` quantile (lower interpolation) of the times of every shard:
    ``times(k)`` returns shard ``k``'s ``time_ms`` as (n_k,) int64. Raises ValueError when the
    shards hold no row."""
    lo, hi, n = None, None, 0
    for k in range(n_shards):
        t = times(k)
        if len(t):
            lo = int(t.min()) if lo is None else min(lo, int(t.min()))
            hi = int(t.max()) if hi is None else max(hi, int(t.max()))
            n += len(t)
    if lo is None or hi is None:
        raise ValueError("no rows to split")
    rank = math.floor(fraction * (n - 1))
    width = max(1, -(-(hi - lo + 1) // BUCKETS))
    counts = np.zeros(BUCKETS, dtype=np.int64)
    for k in range(n_shards):
        counts += np.bincount((times(k) - lo) // width, minlength=BUCKETS)[:BUCKETS]
    before = np.cumsum(counts) - counts
    bucket = int(np.searchsorted(np.cumsum(counts), rank, side="right"))
    inside = []
    for k in range(n_shards):
        t = times(k)
        inside.append(t[(t - lo) // width == bucket])
    values = np.sort(np.concatenate(inside))
    return int(values[rank - int(before[bucket])])
