"""Items at catalogue scale: a content-and-id item tower and a scorer that never builds (B, A).

With millions of items (KuaiRand-1K: 4.37M videos, most shown once or twice) a learnt vector
per item neither fits (A × width × Adam state, for every network of an agent) nor learns
anything for the items seen once. Here an item's vector is built from what generalises:

    v(a) = E_id[row(a)] + Σ_c E_c[bucket_c(code_c(a))] + W · numeric(a)        (d,)
    f(s, a) = proj(h(s)) · v(a) + b[row(a)]

* ``row(a)``: frequent items (the ``id_rows`` most logged, seen at least twice) have a row of
  their own; every other item shares one of ``hash_buckets`` rows chosen by a fixed hash of its
  index (the "hashing trick": collisions among rare items cost little, their content carries
  them);
* ``code_c(a)``: the content codes of :class:`~noetik.data.item_content.ItemContent` (author,
  music, tag, types), each into at most ``field_buckets`` rows (exact when the field has fewer
  distinct values, hashed otherwise; a missing code has a row of its own);
* ``numeric(a)``: standardised duration, aspect ratio, upload age and the video's engagement
  statistics (show count, play and complete-play rates, like / share / follow rates ...).

Parameters grow with ``id_rows + hash_buckets + fields × field_buckets``, never with A. The
per-item lookup tables (:class:`ItemTables`, about 160 bytes per item) are built once per
problem and shared by every network of an agent (not copied into ensembles or targets).

:class:`CatalogueScorer` has :class:`~noetik.agents.networks.heads.ItemScorer`'s interface
(``forward`` (B, A), ``score_actions`` (B,)) plus what scale needs: ``score_items`` (B, S) for
sampled items, the :class:`~noetik.agents.networks.sampled.ItemProposal` to draw them, and
``chunks`` of item vectors for exact chunked top-k (:mod:`noetik.agents.networks.topk`).
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor, nn

from noetik.agents.networks.sampled import ItemProposal, sampled_log_softmax
from noetik.agents.networks.topk import Chunk
from noetik.data.item_content import CODE_FIELDS, NUMERIC_FIELDS
from noetik.errors import ConfigError
from noetik.utils.memory import require

if TYPE_CHECKING:
    from noetik.agents.core.base import ProblemSpec

__all__ = ["CatalogueConfig", "CatalogueScorer", "ItemTables", "ItemTower"]

_HASH = 0x9E3779B1  # Knuth's multiplicative hash constant (2^32 / golden ratio)
#: Item matrices kept per problem (an actor and twin critics, with room for one more).
#: Chunks scored against few rows hold up to about this many scores (2 MB of float32).
_CHUNK_SCORES = 1 << 19
_CACHED_MATRICES = 4


def _batched(t: Tensor) -> bool:
    """Whether ``t`` is a functorch batched tensor (inside ``vmap``)."""
    return bool(torch._C._functorch.is_batchedtensor(t))


@dataclass(frozen=True)
class CatalogueConfig:
    """How agents represent and score items once the catalogue is large."""

    min_actions: int = 100_000
    """From this many actions on, heads and encoders use the catalogue representation
    (content + hashed ids, sampled losses, chunked scoring); below it the small-catalogue
    path (dense head, or one embedding per item) is used as before."""
    dim: int = 32
    """d, the size of item vectors and of the query they are dotted with."""
    id_rows: int = 8_192
    """Most-logged items (seen at least twice) that get an id embedding of their own."""
    hash_buckets: int = 8_192
    """Shared id rows for every other item (chosen by a fixed hash of the item)."""
    field_buckets: int = 4_096
    """Rows per content field (author, music, tag, ...) at most; more codes are hashed."""
    negatives: int = 1_024
    """S, the items sampled per update for the sampled softmax / log-sum-exp / DQN maximum."""
    proposal_power: float = 0.75
    """The proposal samples items in proportion to (logged count) ** power."""
    proposal_uniform: float = 0.05
    """Share of the proposal that is uniform over all items (so every item can be drawn)."""
    chunk_items: int = 2_048
    """Items scored at once when scoring the whole catalogue (top-k, log-sum-exp): small
    enough that a chunk's scores for 1,000 users stay in the CPU's cache."""

    def __post_init__(self) -> None:
        sizes = {
            "min_actions": self.min_actions,
            "dim": self.dim,
            "id_rows": self.id_rows,
            "hash_buckets": self.hash_buckets,
            "field_buckets": self.field_buckets,
            "negatives": self.negatives,
            "chunk_items": self.chunk_items,
        }
        for name, value in sizes.items():
            if value < 1:
                raise ConfigError(f"catalogue.{name} must be >= 1, got {value}")
        if not 0.0 < self.proposal_uniform <= 1.0 or self.proposal_power < 0:
            raise ConfigError("catalogue.proposal_uniform must be in (0, 1], proposal_power >= 0")

    def applies(self, n_actions: int) -> bool:
        """Whether ``n_actions`` items are a large catalogue for this config."""
        return n_actions >= self.min_actions


class ItemTables:
    """Per-item lookup rows of one problem (A items + a padding row A), shared, not learnt.

    ``id_row`` (A + 1,) int64 row of the id table; ``field_row`` (A + 1, C) int64 row of the
    content table (offsets included); ``numeric`` (A + 1, N) float32; and the
    :class:`ItemProposal` of the logged counts. Copied once per device;
    ``deepcopy`` returns the same object (ensembles and target networks share it).
    """

    def __init__(self, spec: ProblemSpec, config: CatalogueConfig) -> None:
        n = spec.n_actions
        n_codes = len(CODE_FIELDS) if spec.item_codes is None else spec.item_codes.shape[1]
        n_num = len(NUMERIC_FIELDS) if spec.item_numeric is None else spec.item_numeric.shape[1]
        per_item = 8 * (n_codes + 1) + 4 * n_num + 24  # rows, numbers, the proposal
        require(n * per_item, f"item tables of {n:,} items", "a smaller catalogue")
        counts = spec.item_counts if spec.item_counts is not None else np.zeros(n, np.int64)
        codes = spec.item_codes
        numeric = spec.item_numeric
        if codes is None:
            codes = np.full((n, len(CODE_FIELDS)), -1, dtype=np.int64)
        if numeric is None:
            numeric = np.zeros((n, len(NUMERIC_FIELDS)), dtype=np.float32)
        self.n_items = n
        id_row = self._id_rows(np.asarray(counts), config)
        field_row, self.n_field_rows = _field_rows(np.asarray(codes), config.field_buckets)
        self.n_id_rows = config.id_rows + config.hash_buckets + 1  # + the padding row
        pad = np.array([self.n_id_rows - 1])
        self.tables = {
            "id_row": torch.from_numpy(np.concatenate([id_row, pad])),
            "field_row": torch.from_numpy(
                np.concatenate([field_row, np.full((1, field_row.shape[1]), self.n_field_rows)])
            ),
            "numeric": torch.from_numpy(
                np.concatenate([numeric, np.zeros((1, numeric.shape[1]), np.float32)])
            ),
        }
        self.n_field_rows += 1  # the padding row
        self.n_numeric = int(numeric.shape[1])
        self.proposal = ItemProposal(counts, config.proposal_power, config.proposal_uniform)
        """The negative sampler of every sampled loss over these items."""
        self.matrices: dict[tuple[Any, ...], tuple[Tensor, Tensor]] = {}
        """Eval-mode item matrices by weight version (:meth:`CatalogueScorer.cached_matrix`)."""
        self._device: dict[torch.device, dict[str, Tensor]] = {}

    @staticmethod
    def _id_rows(counts: np.ndarray, config: CatalogueConfig) -> np.ndarray:
        n = len(counts)
        order = np.argsort(-counts, kind="stable")[: config.id_rows]
        order = order[counts[order] >= 2]
        items = np.arange(n, dtype=np.uint64)
        hashed = (items * np.uint64(_HASH)) % np.uint64(2**32)
        rows = (config.id_rows + hashed % np.uint64(config.hash_buckets)).astype(np.int64)
        rows[order] = np.arange(len(order), dtype=np.int64)
        return rows

    @classmethod
    def of(cls, spec: ProblemSpec, config: CatalogueConfig) -> ItemTables:
        """The tables of ``spec`` under ``config``, built once and shared by every network."""
        per_spec = _TABLES.setdefault(spec, {})
        if config not in per_spec:
            per_spec[config] = cls(spec, config)
        return per_spec[config]

    def on(self, device: torch.device) -> dict[str, Tensor]:
        """The tables on ``device`` (copied on first use)."""
        if device not in self._device:
            self._device[device] = {k: v.to(device) for k, v in self.tables.items()}
        return self._device[device]

    def __deepcopy__(self, memo: dict[int, Any]) -> ItemTables:
        return self


_TABLES: weakref.WeakKeyDictionary[Any, dict[CatalogueConfig, ItemTables]] = (
    weakref.WeakKeyDictionary()
)


def _field_rows(codes: np.ndarray, buckets: int) -> tuple[np.ndarray, int]:
    """(A, C) int64 rows of a table shared by the C fields, and its size (without padding).

    Field ``c`` uses rows ``offset_c .. offset_c + size_c``: ``size_c - 1`` value rows (exact
    ranks when the field has at most ``buckets - 1`` distinct codes, else a hash) and a last
    row for missing codes.
    """
    out = np.empty(codes.shape, dtype=np.int64)
    offset = 0
    for c in range(codes.shape[1]):
        col = codes[:, c]
        present = col >= 0
        values, inverse = np.unique(col[present], return_inverse=True)
        if len(values) <= buckets - 1:
            size = len(values) + 1
            rows = inverse
        else:
            size = buckets
            mixed = (col[present].astype(np.uint64) * np.uint64(_HASH)) % np.uint64(2**32)
            rows = (mixed % np.uint64(buckets - 1)).astype(np.int64)
        out[:, c] = offset + size - 1  # missing
        out[present, c] = offset + rows
        offset += size
    return out, offset


class ItemTower(nn.Module):
    """Item indices (any shape, padding index A allowed) -> (..., d) item vectors."""

    def __init__(self, spec: ProblemSpec, config: CatalogueConfig, dim: int) -> None:
        super().__init__()
        self.tables = ItemTables.of(spec, config)
        self.n_items = spec.n_actions
        self.id_emb = nn.Embedding(self.tables.n_id_rows, dim)
        self.field_emb = nn.Embedding(self.tables.n_field_rows, dim)
        self.numeric = nn.Linear(self.tables.n_numeric, dim, bias=False)
        for emb in (self.id_emb, self.field_emb):
            nn.init.normal_(emb.weight, std=dim**-0.5)

    def rows(self, items: Tensor) -> dict[str, Tensor]:
        """The table rows of ``items`` (clamped to the padding index A)."""
        tables = self.tables.on(items.device)
        idx = items.clamp(0, self.n_items)
        return {k: v[idx] for k, v in tables.items()}

    def forward(self, items: Tensor) -> Tensor:
        """(..., d) float32 vectors of ``items`` (...) int64."""
        r = self.rows(items)
        fields = self.field_emb(r["field_row"]).sum(-2)
        out: Tensor = self.id_emb(r["id_row"]) + fields + self.numeric(r["numeric"])
        return out


class CatalogueScorer(nn.Module):
    """``f(s, a) = proj(h) · v(a) + b[row(a)]`` over a large catalogue (module docs)."""

    def __init__(self, in_dim: int, spec: ProblemSpec, config: CatalogueConfig) -> None:
        super().__init__()
        self.n_actions = spec.n_actions
        self.config = config
        self.proj = nn.Linear(in_dim, config.dim)
        self.tower = ItemTower(spec, config, config.dim)
        self.bias = nn.Embedding(self.tower.tables.n_id_rows, 1)
        nn.init.zeros_(self.bias.weight)
        self._register_load_state_dict_pre_hook(self._forget_matrices)  # type: ignore[no-untyped-call]

    @property
    def proposal(self) -> ItemProposal:
        """The sampler of negatives (the logged counts' :class:`ItemProposal`)."""
        return self.tower.tables.proposal

    def query(self, h: Tensor) -> Tensor:
        """(B, d) query vectors."""
        out: Tensor = self.proj(h)
        return out

    def item_side(self, items: Tensor) -> tuple[Tensor, Tensor]:
        """``(vectors (..., d), bias (...))`` of ``items`` (...) int64."""
        rows = self.tower.tables.on(items.device)["id_row"][items.clamp(0, self.n_actions)]
        return self.tower(items), self.bias(rows).squeeze(-1)

    def score_actions(self, h: Tensor, actions: Tensor) -> Tensor:
        """(B,) scores of one action (B,) int64 per row."""
        vectors, bias = self.item_side(actions)
        return (self.query(h) * vectors).sum(-1) + bias

    def score_items(self, h: Tensor, items: Tensor) -> Tensor:
        """(B, S) scores of S items (S,) int64 shared by every row."""
        vectors, bias = self.item_side(items)
        return torch.addmm(bias, self.query(h), vectors.T)

    def sampled(self, h: Tensor, actions: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Scores for a sampled loss: ``(positive (B,), negatives (B, S), log_q (S,), hits
        (B, S) bool)`` of the logged ``actions`` (B,) and S = ``negatives`` items drawn from
        :attr:`proposal` (shared by the batch; ``hits`` marks draws equal to the row's action)."""
        items, log_q = self.proposal.sample(self.config.negatives, h.device)
        q = self.query(h)
        vectors, bias = self.item_side(actions)
        positive = (q * vectors).sum(-1) + bias
        neg_vectors, neg_bias = self.item_side(items)
        negatives = torch.addmm(neg_bias, q, neg_vectors.T)
        return positive, negatives, log_q, items[None, :] == actions[:, None]

    def train_log_prob(self, h: Tensor, actions: Tensor) -> tuple[Tensor, Tensor | None]:
        """``(log π̂(a | s) (B,), None)``: the sampled softmax with the log-Q correction
        (:func:`~noetik.agents.networks.sampled.sampled_log_softmax`), float32; no logits."""
        positive, negatives, log_q, hits = self.sampled(h, actions)
        return sampled_log_softmax(positive.float(), negatives.float(), log_q, hits), None

    def _forget_matrices(self, *_: Any) -> None:
        self.tower.tables.matrices.clear()

    def train(self, mode: bool = True) -> CatalogueScorer:
        """Switching to training mode drops every cached item matrix of the problem (weights
        are about to change; fused optimizer kernels do not bump tensor versions). So does
        loading weights (``load_state_dict``)."""
        if mode:
            self.tower.tables.matrices.clear()
        super().train(mode)
        return self

    def cached_matrix(self) -> tuple[Tensor, Tensor] | None:
        """In eval mode, ``(vectors (A, d), bias (A,))`` of every item, computed once per set
        of weights (by their storage; the cache is dropped whenever a scorer of the problem
        enters training mode or loads weights) and kept, without gradient, in the shared
        :class:`ItemTables` (serving and explanations then score 4.37M items with one matrix
        product per chunk; attributions differentiate with respect to inputs, not these
        weights). None in training mode or inside ``vmap`` (fused ensembles)."""
        tower = self.tower  # the tensors forward reads (a member's own rows in an ensemble)
        weights = [tower.id_emb.weight, tower.field_emb.weight, tower.numeric.weight]
        weights.append(self.bias.weight)
        if self.training or any(_batched(w) for w in weights):
            return None
        # not the tensors' versions: building an ensemble member's view bumps them
        key = tuple((w.data_ptr(), tuple(w.shape)) for w in weights)
        cache = self.tower.tables.matrices
        if key not in cache:
            with torch.no_grad():
                device = weights[0].device
                parts = [self._item_side_range(lo, hi, device) for lo, hi in self._ranges()]
                cache[key] = (torch.cat([v for v, _ in parts]), torch.cat([b for _, b in parts]))
            while len(cache) > _CACHED_MATRICES:
                cache.pop(next(iter(cache)))
        return cache[key]

    def _ranges(self, n: int | None = None, step: int | None = None) -> Iterator[tuple[int, int]]:
        n = self.n_actions if n is None else n
        step = self.config.chunk_items if step is None else step
        for lo in range(0, n, step):
            yield lo, min(n, lo + step)

    def _item_side_range(self, lo: int, hi: int, device: torch.device) -> tuple[Tensor, Tensor]:
        return self.item_side(torch.arange(lo, hi, device=device))

    def chunks(
        self, device: torch.device, candidates: Tensor | None = None, rows: int | None = None
    ) -> Iterator[Chunk]:
        """The whole catalogue (or ``candidates`` (P,) int64), ``chunk_items`` at a time, as
        :data:`~noetik.agents.networks.topk.Chunk` s (positions index the candidates).

        Scored against few ``rows`` from a cached matrix, chunks are longer (up to about
        ``_CHUNK_SCORES`` scores each): slicing it is free, and one long chunk costs less
        Python than hundreds of short ones (a log-partition for one row: 9 chunks, not 2,134).
        """
        matrix = self.cached_matrix()
        n = self.n_actions if candidates is None else len(candidates)
        step = self.config.chunk_items
        if matrix is not None and rows is not None:
            step = max(step, _CHUNK_SCORES // max(rows, 1) // step * step)
        for lo, hi in self._ranges(n, step):
            ids = torch.arange(lo, hi, device=device)
            items = ids if candidates is None else candidates[lo:hi].to(device)
            if matrix is not None and candidates is None:
                yield lo, items, matrix[0][lo:hi], matrix[1][lo:hi]
            elif matrix is not None:
                yield lo, items, matrix[0][items], matrix[1][items]
            else:
                yield lo, items, *self.item_side(items)

    def forward(self, h: Tensor) -> Tensor:
        """(B, A) scores of every item, computed chunk by chunk (B × A floats: small B only)."""
        q = self.query(h)
        chunks = self.chunks(h.device, rows=h.shape[0])
        return torch.cat([torch.addmm(b, q, v.T) for _, _, v, b in chunks], 1)


def mean_query(queries: list[Tensor], scale: float | Tensor = 1.0) -> Tensor:
    """(B, E d) the queries of E scorers, concatenated and divided by ``E c``: dotted with
    :func:`mean_chunks` it gives the mean of their scores divided by ``scale`` = c."""
    return torch.cat(queries, 1) * (1.0 / (len(queries) * scale))


def mean_chunks(
    scorers: list[CatalogueScorer],
    device: torch.device,
    candidates: Tensor | None = None,
    scale: float | Tensor = 1.0,
    rows: int | None = None,
) -> Iterator[Chunk]:
    """The item side matching :func:`mean_query`: the E scorers' item vectors concatenated,
    their biases summed and divided by ``E c``: ``Σ_e (q_e / (E c)) · v_e + Σ_e b_e / (E c)``
    (``rows``: how many query rows will score them, see :meth:`CatalogueScorer.chunks`)."""
    factor = 1.0 / (len(scorers) * scale)
    if len(scorers) == 1:  # nothing to concatenate
        for start, ids, vectors, bias in scorers[0].chunks(device, candidates, rows):
            yield start, ids, vectors, bias * factor
        return
    for pieces in zip(*(s.chunks(device, candidates, rows) for s in scorers), strict=True):
        start, ids = pieces[0][0], pieces[0][1]
        vectors = torch.cat([p[2] for p in pieces], 1)
        bias = torch.stack([p[3] for p in pieces]).sum(0) * factor
        yield start, ids, vectors, bias
