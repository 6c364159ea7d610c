"""What a shard store is made of: its settings, its source files and its number of shards.

The number of shards is a function of the inputs only (the bytes of the standard-log files and
:attr:`StoreConfig.target_shard_rows`, or an explicit override), so a local run and a Ray run
of the same data build the same store. The store key (a hash of the version, the number of
shards and every source file's fingerprint) tells a finished piece, shard or manifest of this
store from one left by an older store.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from noetik.data.dataset import LOG_KINDS, KuaiRandDataset
from noetik.data.reader import file_fingerprint
from noetik.data.schema import LOG_SCHEMA, FileKind, FileSpec, Release
from noetik.data.store.layout import STORE_VERSION, StoreLayout
from noetik.data.stream import BLOCK_BYTES
from noetik.errors import ConfigError, DataError
from noetik.utils.io import read_json

#: Bytes of one standard-log row in the official CSV (about 72; used to plan the shards).
CSV_ROW_BYTES = 72
#: Bytes of one typed log row in memory (the fixed-width dtypes of LOG_SCHEMA: 63).
_WIDTH: dict[type[pl.DataType], int] = {pl.Int8: 1, pl.Int16: 2, pl.Int32: 4, pl.Int64: 8}
TYPED_ROW_BYTES: int = sum(_WIDTH[type(dtype)] for dtype in LOG_SCHEMA.values())


@dataclass(frozen=True)
class StoreConfig:
    """Settings of the shard store (the defaults suit KuaiRand-27K on a 24 GB machine)."""

    target_shard_rows: int = 3_000_000
    """Standard-log rows a shard should hold: the number of shards is the estimated rows of
    the standard log (its CSV bytes / :data:`CSV_ROW_BYTES`) over this, rounded up. A shard
    of 3M rows needs about 0.6 GB to sort and write."""
    block_bytes: int = BLOCK_BYTES
    """CSV bytes parsed per batch while splitting a source file."""
    buffer_rows: int = 1_000_000
    """Rows buffered over all shards while splitting before they are flushed to the pieces
    (memory of stage (a): about one batch plus this many typed rows)."""

    def __post_init__(self) -> None:
        for name in ("target_shard_rows", "block_bytes", "buffer_rows"):
            if getattr(self, name) < 1:
                raise ConfigError(f"store.{name} must be >= 1, got {getattr(self, name)}")


@dataclass(frozen=True)
class Source:
    """One source file of a log: split by stage (a) into one piece per shard."""

    kind: FileKind
    """The log it is (a part of)."""
    name: str
    """Its official file name."""
    path: Path
    """Its absolute path (workers read it by path)."""
    fingerprint: dict[str, int] = field(hash=False)
    """Its size and modification time when planned (:func:`file_fingerprint`)."""
    cached: Path | None = None
    """Its up-to-date typed Parquet copy in the ordinary cache, when there is one (read
    instead of the CSV: the same rows, already validated)."""

    @property
    def stem(self) -> str:
        """The name without ``.csv``: names its pieces."""
        return self.name.removesuffix(".csv")


@dataclass(frozen=True)
class StorePlan:
    """Everything the stages need, shared by every task (plain, picklable values)."""

    layout: StoreLayout
    """Where the store's files go."""
    n_shards: int
    """Number of user shards: user ``u`` is in shard ``u % n_shards``."""
    release: Release
    """The release of the dataset."""
    sources: tuple[Source, ...]
    """Source files of every log, logs in :data:`LOG_KINDS` order, parts in canonical order."""
    config: StoreConfig
    """The settings."""

    @property
    def kinds(self) -> tuple[FileKind, ...]:
        """The logs of the store (those present), in :data:`LOG_KINDS` order."""
        return tuple(k for k in LOG_KINDS if any(s.kind is k for s in self.sources))

    def sources_of(self, kind: FileKind) -> tuple[Source, ...]:
        """The source files of log ``kind`` in canonical order (the order of their rows)."""
        return tuple(s for s in self.sources if s.kind is kind)

    @property
    def fingerprints(self) -> dict[str, dict[str, int]]:
        """Fingerprint of every source file by name."""
        return {s.name: s.fingerprint for s in self.sources}

    @property
    def key(self) -> str:
        """Hash of the version, the number of shards and the sources' fingerprints."""
        text = json.dumps([STORE_VERSION, self.n_shards, self.fingerprints], sort_keys=True)
        return hashlib.sha1(text.encode()).hexdigest()[:16]


def auto_shards(standard_bytes: int, config: StoreConfig) -> int:
    """Shards for a standard log of ``standard_bytes`` CSV bytes: estimated rows over
    ``config.target_shard_rows``, rounded up (at least 1)."""
    rows = standard_bytes / CSV_ROW_BYTES
    return max(1, math.ceil(rows / config.target_shard_rows))


def log_sources(ds: KuaiRandDataset) -> list[tuple[FileSpec, Path]]:
    """The present files of every log, in canonical order. Raises DataError when no standard
    log is present, or when a log has some of its part files but not all (naming those
    missing)."""
    files = ds.files
    for kind in LOG_KINDS:
        missing = [s.name for s in files.missing if s.kind is kind]
        if files.has(kind) and missing:
            raise DataError(
                files.root, f"{kind.value} is incomplete: missing part file(s) {', '.join(missing)}"
            )
    if not files.has(FileKind.LOG_STANDARD):
        raise DataError(files.root, "no standard log present: the shard store needs one")
    return [item for kind in LOG_KINDS for item in files.files_of(kind)]


def plan_store(
    ds: KuaiRandDataset, config: StoreConfig | None = None, n_shards: int | None = None
) -> StorePlan:
    """The plan of ``ds``'s shard store: ``n_shards`` shards (None: :func:`auto_shards` of the
    standard-log bytes). Raises DataError for missing log files, ConfigError for a bad count."""
    config = config or StoreConfig()
    if n_shards is not None and n_shards < 1:
        raise ConfigError(f"--n-shards must be >= 1, got {n_shards}")
    sources = []
    for spec, path in log_sources(ds):
        fingerprint = file_fingerprint(path)
        cached = ds.cache.parquet_path(spec).resolve() if ds.cache.lookup(spec, path) else None
        sources.append(Source(spec.kind, spec.name, path.resolve(), fingerprint, cached))
    standard = sum(s.fingerprint["size"] for s in sources if s.kind is FileKind.LOG_STANDARD)
    return StorePlan(
        layout=StoreLayout.of_cache(ds.cache.directory),
        n_shards=n_shards or auto_shards(standard, config),
        release=ds.release,
        sources=tuple(sources),
        config=config,
    )


def read_own(path: Path, plan: StorePlan) -> dict[str, Any] | None:
    """The JSON object in ``path`` when it was written for this store (its ``key`` is
    ``plan.key``); None when absent, damaged or left by another store."""
    if not path.is_file():
        return None
    try:
        meta = read_json(path)
    except ConfigError:
        return None
    return meta if isinstance(meta, dict) and meta.get("key") == plan.key else None
