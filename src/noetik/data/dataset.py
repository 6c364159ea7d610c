"""A KuaiRand dataset on disk: its files, its cache and its typed tables.

>>> ds = load_kuairand("path/to/KuaiRand-Pure/data")   # or load_kuairand() for synthetic data
>>> ds.prepare()                                         # validate + cache every file, once
>>> ds.table(FileKind.LOG_RANDOM)                        # a typed polars DataFrame
>>> ds.interactions(FileKind.LOG_STANDARD)               # lazy, with watch ratios, sorted
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

import polars as pl
from rich.progress import Progress

from noetik.data.cache import ParquetCache, default_cache_dir
from noetik.data.discover import DatasetFiles, discover
from noetik.data.quirks import add_watch_ratio, clean_users, clean_videos
from noetik.data.schema import FileKind, Release
from noetik.errors import DataError
from noetik.utils.progress import track

LOG_KINDS: tuple[FileKind, ...] = (FileKind.LOG_STANDARD, FileKind.LOG_RANDOM)


class KuaiRandDataset:
    """The official files found in a directory, validated and cached on first use."""

    def __init__(self, files: DatasetFiles, cache: ParquetCache) -> None:
        self.files = files
        self.cache = cache

    @property
    def root(self) -> Path:
        """The data directory."""
        return self.files.root

    @property
    def release(self) -> Release:
        """The detected release (pure, 1k or 27k)."""
        return self.files.release

    def has(self, kind: FileKind) -> bool:
        """Whether any file of table ``kind`` is present."""
        return self.files.has(kind)

    def prepare(
        self, progress: Progress | None = None, kinds: Collection[FileKind] | None = None
    ) -> dict[str, int]:
        """Validate and cache every present file of ``kinds`` (None: all), a no-op for files
        already cached (large files are converted by streaming, in bounded memory).

        Returns the number of data rows per file name.
        """
        present = [
            (spec, path)
            for spec, path in self.files.present.items()
            if kinds is None or spec.kind in kinds
        ]
        rows: dict[str, int] = {}
        for spec, path in track(present, len(present), "Preparing files", progress):
            rows[spec.name] = int(self.cache.ensure(spec, path)["rows"])
        return rows

    def scan(self, kind: FileKind) -> pl.LazyFrame:
        """Lazy typed table ``kind``: the concatenation of its present files, cached first."""
        parts = self.files.files_of(kind)
        if not parts:
            missing = ", ".join(s.name for s in self.files.missing if s.kind is kind)
            raise DataError(self.root, f"no {kind.value} file present (missing: {missing})")
        for spec, path in parts:
            self.cache.ensure(spec, path)
        frames = [self.cache.scan(spec) for spec, _ in parts]
        return frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical")

    def table(self, kind: FileKind) -> pl.DataFrame:
        """Typed table ``kind`` in memory (raw values, as validated against the schema)."""
        return self.scan(kind).collect()

    def users(self) -> pl.LazyFrame:
        """User features with quirks cleaned (see :mod:`noetik.data.quirks`)."""
        return clean_users(self.scan(FileKind.USER_FEATURES))

    def videos(self) -> pl.LazyFrame:
        """Basic video features with quirks cleaned (see :mod:`noetik.data.quirks`)."""
        return clean_videos(self.scan(FileKind.VIDEO_BASIC))

    def interactions(self, kind: FileKind = FileKind.LOG_STANDARD) -> pl.LazyFrame:
        """Log ``kind`` sorted by user and time, with watch ratios and ``hour`` added.

        The duration fallback uses the basic video features when they are present.
        """
        if kind not in LOG_KINDS:
            raise ValueError(f"{kind} is not a log")
        videos = self.videos() if self.has(FileKind.VIDEO_BASIC) else None
        log = self.scan(kind).sort(["user_id", "time_ms"], maintain_order=True)
        return add_watch_ratio(log, videos)


def load_kuairand(
    path: Path | str | None = None,
    cache_dir: Path | str | None = None,
) -> KuaiRandDataset:
    """Open the KuaiRand files in ``path`` (any release, any subset of its files).

    With ``path=None`` the built-in synthetic KuaiRand-Pure dataset is used (generated once,
    deterministically, into the cache). ``cache_dir`` overrides where typed Parquet copies go
    (default: :func:`noetik.data.cache.default_cache_dir`).
    """
    if path is None:
        from noetik.data.builtin import builtin_dataset_dir

        path = builtin_dataset_dir()
    files = discover(Path(path))
    cache = ParquetCache(Path(cache_dir) if cache_dir else default_cache_dir(files.root))
    return KuaiRandDataset(files, cache)
