"""The shard store: build it (:func:`prepare_store`) and read it (:class:`ShardStore`).

:func:`prepare_store` runs the two stages through a :class:`~noetik.utils.shards.ShardEngine`
(in this process by default, or Ray tasks: the same plain functions):

1. stage (a), one task per source file: :func:`~noetik.data.store.split.split_source`;
2. stage (b), one task per shard: :func:`~noetik.data.store.merge.merge_shard`;

then removes the pieces and writes ``manifest.json`` last. Each stage skips the work already
done for this store (done-markers and shard entries carrying the store key) and redoes the
rest from scratch, so an interrupted preparation resumes where it stopped; a changed source
file changes the store key, and everything is rebuilt. Before each stage the memory of the
tasks that run at the same time on this machine is estimated, and the preparation stops with
one line (:class:`~noetik.errors.OutOfMemoryPlan`) naming the setting that lowers it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from rich.progress import Progress

from noetik.data.dataset import LOG_KINDS, KuaiRandDataset
from noetik.data.schema import FileKind
from noetik.data.store.layout import STORE_VERSION, StoreLayout
from noetik.data.store.merge import ShardJob, done_entry, merge_memory, merge_shard
from noetik.data.store.plan import CSV_ROW_BYTES, StoreConfig, StorePlan, plan_store
from noetik.data.store.split import split_memory, split_source, valid_marker
from noetik.errors import DataError
from noetik.utils.io import read_json, write_json
from noetik.utils.memory import require
from noetik.utils.shards import LocalShards, ShardEngine

_MB = 1024**2


@dataclass(frozen=True)
class ShardStore:
    """A complete shard store of one dataset (open it with :meth:`open` or build it with
    :func:`prepare_store`)."""

    layout: StoreLayout
    """Where its files are."""
    manifest: dict[str, Any]
    """The content of ``manifest.json``: ``version``, ``key``, ``n_shards``, ``release``,
    ``sources`` (file name -> fingerprint ``{"size", "mtime_ns"}``), ``source_rows`` (file
    name -> data rows), ``rows`` (log kind value -> rows per shard, a list of ``n_shards``
    ints), ``complete`` (True)."""

    @classmethod
    def open(cls, ds: KuaiRandDataset, n_shards: int | None = None) -> ShardStore:
        """The complete, up-to-date store of ``ds`` (with ``n_shards`` shards when given).

        Raises DataError when there is none, or when a source file changed since it was built
        (run ``noetik data prepare --shards``, or :func:`prepare_store`).
        """
        layout = StoreLayout.of_cache(ds.cache.directory)
        hint = "run `noetik data prepare --shards` to build it"
        if not layout.manifest.is_file():
            raise DataError(layout.root, f"no complete shard store; {hint}")
        manifest = read_json(layout.manifest, "shard store manifest")
        plan = plan_store(ds, n_shards=n_shards or manifest.get("n_shards"))
        if not (manifest.get("complete") and manifest.get("key") == plan.key):
            raise DataError(layout.root, f"shard store is out of date (data changed); {hint}")
        return cls(layout, manifest)

    @property
    def n_shards(self) -> int:
        """Number of shards: user ``u`` is in shard ``u % n_shards``."""
        return int(self.manifest["n_shards"])

    @property
    def kinds(self) -> tuple[FileKind, ...]:
        """The logs in the store (``LOG_STANDARD``, and ``LOG_RANDOM`` when present)."""
        return tuple(kind for kind in LOG_KINDS if kind.value in self.manifest["rows"])

    def shard_path(self, kind: FileKind, k: int) -> Path:
        """The Parquet file of shard ``k`` of log ``kind`` (0 <= k < n_shards)."""
        self._check(kind, k)
        return self.layout.shard(kind, k)

    def scan_shard(self, kind: FileKind, k: int) -> pl.LazyFrame:
        """Shard ``k`` of log ``kind``: every row of the users with ``user_id % n_shards == k``
        sorted by (user_id, time_ms), ties in file order; the columns and dtypes of the
        cached Parquet of ``kind`` (rows x 19 log columns)."""
        return pl.scan_parquet(self.shard_path(kind, k))

    def shard_rows(self, kind: FileKind) -> list[int]:
        """Rows of every shard of log ``kind`` (``n_shards`` ints, shard order)."""
        self._check(kind, 0)
        return [int(n) for n in self.manifest["rows"][kind.value]]

    def _check(self, kind: FileKind, k: int) -> None:
        if kind.value not in self.manifest["rows"]:
            raise DataError(self.layout.root, f"no {kind.value} in the shard store")
        if not 0 <= k < self.n_shards:
            raise DataError(self.layout.root, f"no shard {k}: shards are 0 to {self.n_shards - 1}")


def prepare_store(
    ds: KuaiRandDataset,
    engine: ShardEngine | None = None,
    progress: Progress | None = None,
    n_shards: int | None = None,
    config: StoreConfig | None = None,
) -> ShardStore:
    """Build (or finish, or reuse) the shard store of ``ds``'s logs; return it.

    ``engine`` runs the tasks (default :class:`LocalShards`); ``progress`` shows "Splitting
    log files" (MB) and "Writing shards" (shards); ``n_shards`` overrides the planned number
    of shards; ``config`` the settings (:class:`StoreConfig`). Raises DataError for missing
    part files or invalid data, OutOfMemoryPlan when a stage would not fit in memory.
    """
    engine = engine or LocalShards()
    plan = plan_store(ds, config, n_shards)
    layout = plan.layout
    if layout.manifest.is_file():
        manifest = read_json(layout.manifest, "shard store manifest")
        if manifest.get("complete") and manifest.get("key") == plan.key:
            return ShardStore(layout, manifest)
        layout.manifest.unlink()  # from here on the store is incomplete until rewritten
    _remove_foreign_shards(plan)
    pending = [k for k in range(plan.n_shards) if done_entry(plan, k) is None]
    if pending:
        _merge(plan, pending, _split(plan, pending, engine, progress), engine, progress)
    shutil.rmtree(layout.pieces, ignore_errors=True)
    markers = {s.name: valid_marker(plan, s) for s in plan.sources}
    entries = [done_entry(plan, k) for k in range(plan.n_shards)]
    if any(e is None for e in entries):
        raise DataError(layout.root, "a shard went missing while the store was written")
    manifest = {
        "version": STORE_VERSION,
        "key": plan.key,
        "n_shards": plan.n_shards,
        "release": plan.release.value,
        "sources": plan.fingerprints,
        "source_rows": {
            name: None if marker is None else sum(marker["rows"])
            for name, marker in markers.items()
        },
        "rows": {
            kind.value: [int(e["rows"][kind.value]) for e in entries if e is not None]
            for kind in plan.kinds
        },
        "complete": True,
    }
    write_json(layout.manifest, manifest)
    return ShardStore(layout, manifest)


def _concurrent(engine: ShardEngine, tasks: int) -> int:
    """Tasks that may run at the same time on this machine."""
    return max(1, min(engine.workers, tasks, os.cpu_count() or 1))


def _split(
    plan: StorePlan, pending: list[int], engine: ShardEngine, progress: Progress | None
) -> dict[str, dict[str, Any]]:
    """Stage (a) for the sources whose pieces the ``pending`` shards need and lack; return
    every source's done-marker by file name."""
    markers: dict[str, dict[str, Any]] = {}
    todo = []
    for source in plan.sources:
        marker = valid_marker(plan, source)
        if marker is not None and all(
            plan.layout.piece(source.stem, k).is_file() for k in pending if marker["rows"][k] > 0
        ):
            markers[source.name] = marker
        else:
            todo.append(source)
    if todo:
        # the shards' sizes are known after the split: stop now if average ones cannot fit
        average = sum(s.fingerprint["size"] for s in plan.sources) / CSV_ROW_BYTES / plan.n_shards
        _require_merge(merge_memory(int(average)) * _concurrent(engine, len(pending)))
        need = split_memory(plan) * _concurrent(engine, len(todo))
        require(
            need,
            "shard store, splitting log files",
            "a smaller StoreConfig.buffer_rows or block_bytes",
        )
        done = engine.map(
            split_source,
            plan,
            todo,
            sizes=[max(1, s.fingerprint["size"] // _MB) for s in todo],
            description="Splitting log files (MB)",
            progress=progress,
        )
        markers |= {s.name: m for s, m in zip(todo, done, strict=True)}
    return markers


def _merge(
    plan: StorePlan,
    pending: list[int],
    markers: dict[str, dict[str, Any]],
    engine: ShardEngine,
    progress: Progress | None,
) -> None:
    """Stage (b) for the ``pending`` shards."""
    jobs = []
    for k in pending:
        pieces = {
            kind: tuple(
                plan.layout.piece(s.stem, k)
                for s in plan.sources_of(kind)
                if markers[s.name]["rows"][k] > 0
            )
            for kind in plan.kinds
        }
        rows = sum(markers[s.name]["rows"][k] for s in plan.sources)
        jobs.append(ShardJob(k, pieces, rows))
    if not jobs:
        return
    largest = sorted((merge_memory(j.rows) for j in jobs), reverse=True)
    _require_merge(sum(largest[: _concurrent(engine, len(jobs))]))
    engine.map(
        merge_shard,
        plan,
        jobs,
        sizes=[1] * len(jobs),
        description="Writing shards",
        progress=progress,
    )


def _require_merge(need: int) -> None:
    """Stop unless ``need`` bytes for the shards written at the same time fit in memory."""
    require(need, "shard store, writing shards", "a larger --n-shards (smaller shards)")


def _remove_foreign_shards(plan: StorePlan) -> None:
    """Remove temporary files an interrupted run left, shard files and entries numbered
    ``n_shards`` or more (an older store with more shards), and shard files of logs this store
    does not have."""
    root = plan.layout.root
    for tmp in root.glob("*/.*.tmp"):
        if tmp.is_file():
            tmp.unlink()
    for folder in [root / "entries", *(root / k.value for k in FileKind)]:
        for path in folder.glob("shard-*") if folder.is_dir() else ():
            number = path.name.removeprefix("shard-").split(".")[0]
            kind_ok = folder.name == "entries" or FileKind(folder.name) in plan.kinds
            if not (number.isdigit() and int(number) < plan.n_shards and kind_ok):
                path.unlink()
