"""Stage (b): write one user shard of every log from its pieces.

:func:`merge_shard` reads shard ``k``'s pieces of a log in canonical file order (parts in
order), sorts them by ``(user_id, time_ms)`` with a stable sort (ties keep that order), and
writes ``<log kind>/shard-k.parquet`` (temporary file + rename): exactly the rows, and the
order, that ``KuaiRandDataset.scan(kind).sort(["user_id", "time_ms"], maintain_order=True)``
gives for the users of the shard. Then it writes the shard's entry ``entries/shard-k.json``
(store key, rows per log) and deletes the shard's pieces.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from noetik.data.schema import LOG_SCHEMA, FileKind
from noetik.data.store.plan import TYPED_ROW_BYTES, StorePlan, read_own
from noetik.utils.io import atomic_path, write_json

#: The order of a shard's rows (stable: ties keep file order).
SORT_KEYS = ["user_id", "time_ms"]


@dataclass(frozen=True)
class ShardJob:
    """The input of one stage-(b) task."""

    k: int
    """The shard number."""
    pieces: dict[FileKind, tuple[Path, ...]]
    """Per log, shard ``k``'s pieces of its source files that hold rows, in canonical order."""
    rows: int
    """Rows of the shard over every log (to plan memory and show progress)."""


def merge_shard(plan: StorePlan, job: ShardJob) -> dict[str, Any]:
    """Write shard ``job.k`` of every log of ``plan`` and its entry; return the entry
    (``key``: the store key, ``rows``: rows of the shard per log kind value)."""
    rows: dict[str, int] = {}
    for kind in plan.kinds:
        paths = job.pieces.get(kind, ())
        if paths:
            lazy = pl.concat([pl.scan_parquet(p) for p in paths], how="vertical")
            frame = lazy.sort(SORT_KEYS, maintain_order=True).collect()
        else:
            frame = pl.DataFrame(schema=LOG_SCHEMA)
        with atomic_path(plan.layout.shard(kind, job.k)) as tmp:
            frame.write_parquet(tmp, compression="lz4", statistics=True)
        rows[kind.value] = frame.height
    entry = {"key": plan.key, "rows": rows}
    write_json(plan.layout.entry(job.k), entry)
    for paths in job.pieces.values():
        for path in paths:
            path.unlink(missing_ok=True)
    return entry


def done_entry(plan: StorePlan, k: int) -> dict[str, Any] | None:
    """The entry of shard ``k`` when it belongs to this store and its files exist, else None."""
    entry = read_own(plan.layout.entry(k), plan)
    if entry is None:
        return None
    files = all(plan.layout.shard(kind, k).is_file() for kind in plan.kinds)
    return entry if files else None


def merge_memory(rows: int) -> int:
    """Bytes one stage-(b) task needs for a shard of ``rows`` rows: the rows read, their sorted
    copy and the writer's buffers (about three typed copies)."""
    return 3 * rows * TYPED_ROW_BYTES
