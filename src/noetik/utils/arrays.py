"""Fast array helpers shared by the data layer and later stages."""

from __future__ import annotations

import numpy as np

#: Largest id for which a dense id -> position table is built (int32, at most 200 MB).
_DENSE_MAX_ID = 50_000_000


class IdIndex:
    """Positions of integer ids in a sorted, unique id array, found in O(1) when ids are dense.

    Lookups of millions of keys are the hot path of feature building and action encoding: a
    dense table (``max id`` small) turns them into one gather instead of a binary search.
    """

    def __init__(self, sorted_ids: np.ndarray) -> None:
        self.ids = np.asarray(sorted_ids, dtype=np.int64)
        """(M,) int64, sorted ascending and unique."""
        self._dense: np.ndarray | None = None
        if len(self.ids) and self.ids[0] >= 0 and self.ids[-1] <= _DENSE_MAX_ID:
            dense = np.full(int(self.ids[-1]) + 1, -1, dtype=np.int32)
            dense[self.ids] = np.arange(len(self.ids), dtype=np.int32)
            self._dense = dense

    def __len__(self) -> int:
        return len(self.ids)

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(pos (N,) int64, found (N,) bool)`` of ``keys`` (N,) ints; pos is 0 when absent."""
        keys = np.asarray(keys, dtype=np.int64)
        if len(self.ids) == 0:
            return np.zeros(keys.shape, dtype=np.int64), np.zeros(keys.shape, dtype=bool)
        if self._dense is not None:
            inside = (keys >= 0) & (keys < len(self._dense))
            pos = self._dense[np.where(inside, keys, 0)].astype(np.int64)
            found = inside & (pos >= 0)
            return np.where(found, pos, 0), found
        pos = np.clip(np.searchsorted(self.ids, keys), 0, len(self.ids) - 1)
        return pos, self.ids[pos] == keys


def cast_into(dst: np.ndarray, src: np.ndarray) -> None:
    """Copy ``src`` into ``dst`` (same shape) converting dtype; fast for float16 targets.

    NumPy's float32 -> float16 conversion is scalar and about 9x slower than PyTorch's
    vectorised one, so PyTorch does the copy when the target is float16.
    """
    if dst.dtype == np.float16 and src.dtype in (np.float32, np.float64):
        import torch

        torch.from_numpy(dst).copy_(torch.from_numpy(np.ascontiguousarray(src)))
    else:
        dst[...] = src


def standardise_columns(values: np.ndarray, min_std: float = 1e-6) -> np.ndarray:
    """``values`` (n, k) float32 standardised per column over rows, in place (and returned):
    ``(x - mean) / std`` with the mean and standard deviation in float64 over the finite
    values; non-finite values become 0 (the mean), and columns whose deviation is at most
    ``min_std`` are only centred. Other dtypes are converted to a float32 copy first."""
    if values.dtype != np.float32:
        values = values.astype(np.float32)
    bad = ~np.isfinite(values)
    if bad.any():
        values[bad] = np.nan
    mean = np.nan_to_num(np.nanmean(values, axis=0, dtype=np.float64))
    std = np.nan_to_num(np.nanstd(values, axis=0, dtype=np.float64))
    values -= mean.astype(np.float32)
    values /= np.where(std > min_std, std, 1.0).astype(np.float32)
    if bad.any():
        values[bad] = 0.0
    return values
