"""Stage (a): split one source file of a log into one piece per user shard.

:func:`split_source` streams the file (its typed Parquet copy when the ordinary cache has an
up-to-date one, else the CSV through :func:`noetik.data.stream.iter_csv_batches`, validated
batch by batch) and appends each batch's rows of shard ``k`` (``user_id % n_shards == k``), in
file order, to ``pieces/<stem>/shard-k.parquet``. Rows are buffered over all shards and flushed
once :attr:`StoreConfig.buffer_rows` are held, so memory is one batch plus the buffer whatever
the file's size.

The pieces are written into a temporary folder renamed onto ``pieces/<stem>`` when complete;
the done-marker ``sources/<stem>.json`` (store key, source fingerprint, rows per shard) is
written after that. An interrupted split leaves only a temporary folder, removed by the next.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from noetik.data.store.plan import CSV_ROW_BYTES, TYPED_ROW_BYTES, Source, StorePlan, read_own
from noetik.data.stream import iter_csv_batches
from noetik.utils.io import write_json

_SHARD = "_shard"


def source_batches(source: Source, plan: StorePlan) -> Iterator[pl.DataFrame]:
    """The typed, validated rows of ``source`` in file order, one batch at a time (frames of
    the log's columns; about ``plan.config.block_bytes`` of CSV each)."""
    if source.cached is not None and source.cached.is_file():
        rows = max(1, plan.config.block_bytes // CSV_ROW_BYTES)
        for batch in pq.ParquetFile(source.cached).iter_batches(batch_size=rows):
            frame = pl.from_arrow(batch)
            assert isinstance(frame, pl.DataFrame)
            yield frame
        return
    yield from iter_csv_batches(source.path, source.kind, plan.config.block_bytes)


def split_source(plan: StorePlan, source: Source) -> dict[str, Any]:
    """Write the pieces of ``source`` and its done-marker; return the marker.

    The marker holds ``key`` (the store key), ``fingerprint`` (of the source when planned),
    ``rows`` (rows of the source per shard, a list of ``n_shards`` ints) and ``source``.
    Raises :class:`~noetik.errors.DataError` for an invalid source file (nothing is left).
    """
    layout = plan.layout
    final = layout.piece_dir(source.stem)
    marker = layout.piece_marker(source.stem)
    marker.unlink(missing_ok=True)
    clear_pieces(plan, source)
    tmp = layout.pieces / f".{source.stem}.{secrets.token_hex(4)}.tmp"
    tmp.mkdir(parents=True)
    rows = [0] * plan.n_shards
    try:
        with _PieceWriters(tmp, lambda k: layout.piece(source.stem, k).name) as writers:
            buffered: dict[int, list[pl.DataFrame]] = {}
            held = 0
            for batch in source_batches(source, plan):
                keyed = batch.with_columns((pl.col("user_id") % plan.n_shards).alias(_SHARD))
                parts = keyed.partition_by(
                    _SHARD, as_dict=True, include_key=False, maintain_order=True
                )
                for (k,), part in parts.items():
                    buffered.setdefault(int(k), []).append(part)  # type: ignore[call-overload]
                    rows[int(k)] += part.height  # type: ignore[call-overload]
                held += batch.height
                if held >= plan.config.buffer_rows:
                    writers.flush(buffered)
                    held = 0
            writers.flush(buffered)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    meta = {"key": plan.key, "source": source.name, "fingerprint": source.fingerprint, "rows": rows}
    write_json(marker, meta)
    return meta


def clear_pieces(plan: StorePlan, source: Source) -> None:
    """Remove the pieces of ``source`` and any temporary folder an interrupted split left."""
    pieces = plan.layout.pieces
    shutil.rmtree(plan.layout.piece_dir(source.stem), ignore_errors=True)
    for tmp in pieces.glob(f".{source.stem}.*.tmp") if pieces.is_dir() else ():
        shutil.rmtree(tmp, ignore_errors=True)


def valid_marker(plan: StorePlan, source: Source) -> dict[str, Any] | None:
    """The done-marker of ``source`` when it belongs to this store (same key, so the same
    fingerprints and number of shards), else None."""
    meta = read_own(plan.layout.piece_marker(source.stem), plan)
    return meta if meta is not None and len(meta.get("rows", ())) == plan.n_shards else None


def split_memory(plan: StorePlan) -> int:
    """Bytes one split task needs: three copies of a batch (CSV block, Arrow, Polars) plus the
    buffered rows and their partitioned copies."""
    return 3 * plan.config.block_bytes + 2 * plan.config.buffer_rows * TYPED_ROW_BYTES


class _PieceWriters:
    """One Parquet writer per shard, opened at a shard's first rows, in folder ``root``."""

    def __init__(self, root: Path, name: Callable[[int], str]) -> None:
        self.root = root
        self.name = name
        self.writers: dict[int, pq.ParquetWriter] = {}

    def __enter__(self) -> _PieceWriters:
        return self

    def __exit__(self, *exc: object) -> None:
        for writer in self.writers.values():
            writer.close()

    def flush(self, buffered: dict[int, list[pl.DataFrame]]) -> None:
        """Append each shard's buffered frames (in order) to its piece; empty the buffers."""
        for k, frames in sorted(buffered.items()):
            table = pl.concat(frames, rechunk=False).to_arrow()
            if k not in self.writers:
                path = self.root / self.name(k)
                self.writers[k] = pq.ParquetWriter(path, table.schema, compression="lz4")
            self.writers[k].write_table(table)
        buffered.clear()
