"""Exact top-k, log-sum-exp and sampling over millions of items, one chunk of items at a time.

Scoring 1,000 users against 4.37M videos is a (1000 × 4.37M) matrix, 17 GB in float32. These
functions never build it: ``chunks`` yields the item side in slices of ``n`` consecutive positions,
``(start, ids (n,) int64, weights (n, d), bias (n,))`` (positions ``start .. start + n - 1``;
``ids`` are what is returned for them: the positions themselves, or the items of a candidate
pool), and each slice is scored against the queries ``(B, d)``, reduced, and dropped. The
results are exact (not approximate nearest neighbours): :func:`dense_topk` is the readable
reference they are tested against.

Exclusions (videos a user has already seen) are :class:`Exclusions`, a compressed sparse row
list of item positions per query row; they are sorted by chunk once, so each chunk masks only
its own entries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "Chunk",
    "Exclusions",
    "chunked_logsumexp",
    "chunked_sample",
    "chunked_softmax_moments",
    "chunked_topk",
    "dense_topk",
    "differentiable_logsumexp",
]

#: One slice of the item side: ``(start, ids (n,) int64, weights (n, d), bias (n,))``.
Chunk = tuple[int, Tensor, Tensor, Tensor]
#: ``lookup(lo, hi) -> (rows, positions)`` of the exclusions with lo <= position < hi.
Lookup = Callable[[int, int], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class Exclusions:
    """Item positions to leave out, per query row (CSR)."""

    indptr: np.ndarray
    """(B + 1,) int64: row ``b``'s positions are ``indices[indptr[b]:indptr[b + 1]]``."""
    indices: np.ndarray
    """(nnz,) int64 item positions (any order; duplicates allowed)."""

    @classmethod
    def from_lists(cls, rows: Iterable[Iterable[int]]) -> Exclusions:
        """From one iterable of positions per query row."""
        arrays = [np.asarray(list(r), dtype=np.int64) for r in rows]
        lengths = np.array([len(a) for a in arrays], dtype=np.int64)
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        indices = np.concatenate(arrays) if arrays else np.zeros(0, dtype=np.int64)
        return cls(indptr, indices.astype(np.int64))

    def by_chunk(self, chunk_size: int) -> Lookup:
        """The :data:`Lookup` of these exclusions, after one stable sort of all entries by
        ``position // chunk_size`` (a chunk's query then reads only its own entries). The
        chunk keys are sorted as 16-bit integers when they fit (NumPy then radix-sorts: 0.2 s
        instead of 3 s for 11.6M seen videos)."""
        rows = np.repeat(np.arange(len(self.indptr) - 1), np.diff(self.indptr))
        keys = self.indices // chunk_size
        compact = np.uint16 if len(keys) == 0 or keys.max() < 2**16 else np.int64
        order = np.argsort(keys.astype(compact), kind="stable")
        pos, rows, keys = self.indices[order], rows[order], keys[order]
        t_pos, t_rows = torch.from_numpy(pos), torch.from_numpy(rows)

        def lookup(lo: int, hi: int) -> tuple[Tensor, Tensor]:
            a = int(np.searchsorted(keys, lo // chunk_size, side="left"))
            b = int(np.searchsorted(keys, (hi - 1) // chunk_size, side="right"))
            sel_pos, sel_rows = t_pos[a:b], t_rows[a:b]
            keep = (sel_pos >= lo) & (sel_pos < hi)
            return sel_rows[keep], sel_pos[keep]

        return lookup


class _RowExclusions:
    """The exclusions of chosen rows within one chunk, found by binary search in the
    (row, position) keys sorted once (``row * stride + position``, int64): cheap when only
    a few rows of a chunk need them (:func:`chunked_topk`)."""

    def __init__(self, exclude: Exclusions) -> None:
        rows = np.repeat(np.arange(len(exclude.indptr) - 1), np.diff(exclude.indptr))
        self.stride = int(exclude.indices.max()) + 1 if len(exclude.indices) else 1
        self.keys = np.sort(rows * self.stride + exclude.indices)

    def within(self, rows: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """``(which (M,), offsets (M,))``: entry ``j`` excludes position ``lo + offsets[j]``
        from row ``rows[which[j]]``, for every excluded position of ``rows`` (R,) in
        ``lo <= position < hi``."""
        base = rows * self.stride  # no excluded position reaches the stride: clip the range
        first = np.searchsorted(self.keys, base + min(lo, self.stride))
        counts = np.searchsorted(self.keys, base + min(hi, self.stride)) - first
        which = np.repeat(np.arange(len(rows)), counts)
        starts = np.repeat(first - np.concatenate([[0], np.cumsum(counts)[:-1]]), counts)
        keys = self.keys[starts + np.arange(len(which))]
        return which, keys - base[which] - lo

    def mask(self, scores: Tensor, rows: Tensor, lo: int) -> None:
        """Set ``scores`` (R, n) of ``rows`` (R,) int64, items ``lo .. lo + n - 1``, to
        ``-inf`` where excluded (in place)."""
        which, offsets = self.within(rows.cpu().numpy(), lo, lo + scores.shape[1])
        if len(which):
            at = torch.from_numpy(which).to(scores.device)
            scores[at, torch.from_numpy(offsets).to(scores.device)] = float("-inf")


def _scores(query: Tensor, chunk: Chunk, lookup: Lookup | None) -> Tensor:
    """(B, n) scores of one chunk, ``-inf`` at excluded (row, position) pairs."""
    start, ids, weights, bias = chunk
    scores = torch.addmm(bias.to(query.dtype), query, weights.to(query.dtype).T)
    if lookup is not None and len(ids):
        rows, pos = lookup(start, start + len(ids))
        if len(rows):
            scores[rows.to(scores.device), (pos - start).to(scores.device)] = float("-inf")
    return scores


def _lookup(exclude: Exclusions | None, chunk_size: int) -> Lookup | None:
    return None if exclude is None else exclude.by_chunk(chunk_size)


def chunked_topk(
    query: Tensor,
    chunks: Iterable[Chunk],
    k: int,
    exclude: Exclusions | None = None,
    chunk_size: int = 2_048,
    *,
    block: tuple[int, int] = (1_024, 512),
) -> tuple[Tensor, Tensor]:
    """``(values (B, k) float32, positions (B, k) int64)``: the k best items per query row,
    best first, over every chunk; excluded items never appear (``-inf`` / position -1 when
    fewer than k items are left). ``chunk_size`` must be the size the chunks are cut at.

    Each chunk is scored in blocks of ``block`` = (query rows, items), small enough for the
    scores to stay in the CPU's cache for the reduction that follows (2 MB: 0.7 s of 7 s at
    1,000 × 4.37M on 2 cores, against 1.3 s for whole 2,048-item chunks). A row whose best
    score in a block does not beat its k-th best so far cannot change, before or after its
    exclusions (they only lower scores): exclusions are applied, and ``topk`` run, on the
    other rows only."""
    best = _Best(query.shape[0], k, query.device)
    found = None if exclude is None else _RowExclusions(exclude)
    n_rows, n_items = block
    for start, chunk_ids, weights, biases in chunks:
        ids_all, w_all = chunk_ids.to(query.device), weights.to(query.dtype).T
        b_all = biases.to(query.dtype)
        for first in range(0, len(ids_all), n_items):
            ids, w_t = ids_all[first : first + n_items], w_all[:, first : first + n_items]
            bias = b_all[first : first + n_items]
            for lo in range(0, query.shape[0], n_rows):
                scores = torch.addmm(bias, query[lo : lo + n_rows], w_t).float()
                rows = (scores.amax(1) > best.kth[lo : lo + n_rows]).nonzero().squeeze(1)
                if len(rows) == 0:
                    continue
                scores, rows = scores[rows], rows + lo
                if found is not None:
                    found.mask(scores, rows, start + first)
                best.merge(rows, scores, ids)
    return best.result()


class _Best:
    """The k best (score, id) per query row so far, best first."""

    def __init__(self, rows: int, k: int, device: torch.device) -> None:
        self.k = k
        self.values = torch.full((rows, k), float("-inf"), device=device)
        self.ids = torch.full((rows, k), -1, dtype=torch.int64, device=device)
        self.kth = self.values[:, -1].clone()  # (B,) the k-th best score so far

    def merge(self, rows: Tensor, scores: Tensor, ids: Tensor) -> None:
        """Merge ``scores`` (R, n) of items ``ids`` (n,) into ``rows`` (R,) int64."""
        v, i = scores.topk(min(self.k, scores.shape[1]), dim=1)
        cat_v = torch.cat([self.values[rows], v], 1)
        cat_i = torch.cat([self.ids[rows], ids[i]], 1)
        top_v, order = cat_v.topk(self.k, dim=1)
        self.values[rows], self.ids[rows] = top_v, cat_i.gather(1, order)
        self.kth[rows] = top_v[:, -1]

    def result(self) -> tuple[Tensor, Tensor]:
        """``(values (B, k), ids (B, k))``, id -1 where the value is ``-inf``."""
        return self.values, self.ids.masked_fill(torch.isneginf(self.values), -1)


def chunked_logsumexp(
    query: Tensor,
    chunks: Iterable[Chunk],
    exclude: Exclusions | None = None,
    chunk_size: int = 2_048,
) -> Tensor:
    """(B,) float32 ``logsumexp`` of every (not excluded) item's score."""
    total = torch.full((query.shape[0],), float("-inf"), device=query.device)
    lookup = _lookup(exclude, chunk_size)
    for chunk in chunks:
        total = torch.logaddexp(total, _scores(query, chunk, lookup).float().logsumexp(1))
    return total


def chunked_sample(
    query: Tensor,
    chunks: Iterable[Chunk],
    generator: torch.Generator | None = None,
    exclude: Exclusions | None = None,
    chunk_size: int = 2_048,
) -> Tensor:
    """(B,) int64 positions drawn from ``softmax(scores)`` exactly, by the Gumbel-max trick
    (the argmax of score + Gumbel noise over all chunks)."""
    b = query.shape[0]
    best_v = torch.full((b,), float("-inf"), device=query.device)
    best_i = torch.full((b,), -1, dtype=torch.int64, device=query.device)
    lookup = _lookup(exclude, chunk_size)
    for chunk in chunks:
        scores = _scores(query, chunk, lookup).float()
        u = torch.rand(scores.shape, generator=generator, device=scores.device)
        noisy = scores - torch.log(-torch.log(u.clamp_min(1e-20)))
        v, i = noisy.max(1)
        better = v > best_v
        best_v = torch.where(better, v, best_v)
        best_i = torch.where(better, chunk[1].to(query.device)[i], best_i)
    return best_i


def chunked_softmax_moments(
    query: Tensor, chunks: Iterable[Chunk]
) -> tuple[Tensor, Tensor, Tensor]:
    """``(lse, mean, var)``, each (B,) float64, of the scores ``s`` over every item in one pass:
    ``lse = logsumexp_a s_a`` and the mean and variance of ``s`` under ``softmax(s)``.

    In each chunk, ``u = s − max`` (float32, ``≤ 0``) gives ``Σ e^u``, ``Σ e^u u`` and
    ``Σ e^u u²`` (summed in float64): the chunk's own log-sum-exp, mean and variance. They are
    merged into the running ones like the moments of two samples (Chan, Golub & LeVeque 1979),
    the chunk weighing ``exp(lse_chunk − lse)``: nothing overflows, no large mean cancels."""
    shape = (query.shape[0],)
    lse = torch.full(shape, float("-inf"), dtype=torch.float64, device=query.device)
    mean = torch.zeros(shape, dtype=torch.float64, device=query.device)
    var = torch.zeros_like(mean)
    for chunk in chunks:
        s = _scores(query, chunk, None).float()
        top = s.amax(1, keepdim=True)
        u = s - top
        e = torch.exp(u)
        s0 = e.sum(1, dtype=torch.float64)
        eu = e * u
        c_mean = eu.sum(1, dtype=torch.float64) / s0
        c_var = (eu * u).sum(1, dtype=torch.float64) / s0 - c_mean**2
        c_mean += top[:, 0].double()
        c_lse = top[:, 0].double() + torch.log(s0)
        total = torch.logaddexp(lse, c_lse)
        w_old, w_new = torch.exp(lse - total), torch.exp(c_lse - total)
        merged = w_old * mean + w_new * c_mean
        var = w_old * (var + (mean - merged) ** 2) + w_new * (c_var + (c_mean - merged) ** 2)
        mean, lse = merged, total
    return lse, mean, var


def dense_topk(scores: Tensor, k: int, exclude: Exclusions | None = None) -> tuple[Tensor, Tensor]:
    """The reference: ``topk`` of the full (B, A) ``scores`` with exclusions set to ``-inf``."""
    scores = scores.float().clone()
    if exclude is not None:
        rows = np.repeat(np.arange(len(exclude.indptr) - 1), np.diff(exclude.indptr))
        scores[torch.from_numpy(rows), torch.from_numpy(exclude.indices)] = float("-inf")
    v, i = scores.topk(min(k, scores.shape[1]), dim=1)
    return v, i.masked_fill(torch.isneginf(v), -1)


class _ChunkedLogSumExp(torch.autograd.Function):
    """``logsumexp`` over chunks with a gradient for the queries only (the item side is a
    constant: eval-mode serving and attributions), in two chunked passes and O(B · d) memory:
    ``d lse_b / d query_b = Σ_a softmax_a · w_a``."""

    @staticmethod
    def forward(
        ctx: Any, query: Tensor, make_chunks: Callable[[], Iterable[Chunk]], chunk_size: int
    ) -> Tensor:
        lse = chunked_logsumexp(query.detach(), make_chunks(), chunk_size=chunk_size)
        ctx.save_for_backward(query, lse)
        ctx.make_chunks = make_chunks
        return lse

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, None, None]:
        query, lse = ctx.saved_tensors
        q = query.detach()
        expected = torch.zeros_like(q)
        for _, _, w, b in ctx.make_chunks():
            p = torch.exp(torch.addmm(b.to(q.dtype), q, w.to(q.dtype).T) - lse[:, None])
            expected += p @ w.to(q.dtype)
        return grad[:, None] * expected, None, None


def differentiable_logsumexp(
    query: Tensor, make_chunks: Callable[[], Iterable[Chunk]], chunk_size: int = 2_048
) -> Tensor:
    """(B,) :func:`chunked_logsumexp` (no exclusions) whose gradient reaches ``query`` (B, d);
    ``make_chunks()`` must yield the same constant chunks each time it is called."""
    out: Tensor = _ChunkedLogSumExp.apply(query, make_chunks, chunk_size)  # type: ignore[no-untyped-call]
    return out
