"""Typed columnar cache: each CSV is validated and converted to Parquet once, then reused.

Layout of a cache directory (one per data directory)::

    <cache>/<file stem>.parquet   the validated, typed table (LZ4-compressed Parquet)
    <cache>/<file stem>.json      manifest: source path, size, mtime, rows, schema version

Files above ``stream_above`` bytes (default :func:`~noetik.data.stream.stream_threshold`: a quarter
of the available memory, at most 8 GB) are converted batch by batch in bounded memory
(:func:`~noetik.data.stream.convert_csv`), smaller ones in memory
(:func:`~noetik.data.reader.read_table`, about twice as fast); both give the same table.

Both files are written to a temporary name and renamed, Parquet first and manifest last, so an
entry is valid only when it is complete: an interrupted run leaves no entry that looks usable.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import polars as pl

from noetik.data.reader import file_fingerprint, read_table
from noetik.data.schema import FileSpec
from noetik.data.stream import convert_csv, stream_threshold
from noetik.errors import DataError
from noetik.utils.io import atomic_path, write_json

#: Bump when the cached representation or the validation changes; old entries are then rebuilt
#: (2: negative ids are rejected, so entries cached before that check are validated again).
CACHE_VERSION = 2
_ENV_VAR = "NOETIK_CACHE_DIR"


def default_cache_dir(data_dir: Path) -> Path:
    """Cache folder for ``data_dir``: ``$NOETIK_CACHE_DIR`` or ``~/.cache/noetik``, one
    sub-folder per data directory (named after it plus a hash of its absolute path), so that
    read-only data directories work and two datasets never share entries."""
    base = Path(os.environ.get(_ENV_VAR) or Path.home() / ".cache" / "noetik")
    resolved = data_dir.resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:10]
    return base / f"{resolved.name or 'root'}-{digest}"


class ParquetCache:
    """The cache entries of one data directory."""

    def __init__(self, directory: Path, stream_above: int | None = None) -> None:
        self.directory = Path(directory)
        self.stream_above = stream_above
        """Source files larger than this many bytes are converted by streaming (None: the
        :func:`~noetik.data.stream.stream_threshold` at the time of the conversion)."""

    def parquet_path(self, spec: FileSpec) -> Path:
        """Where the Parquet file for ``spec`` lives."""
        return self.directory / f"{spec.stem}.parquet"

    def manifest_path(self, spec: FileSpec) -> Path:
        """Where the manifest for ``spec`` lives."""
        return self.directory / f"{spec.stem}.json"

    def lookup(self, spec: FileSpec, source: Path) -> dict[str, Any] | None:
        """The manifest of a valid entry for ``source``, or None when absent or stale."""
        manifest, parquet = self.manifest_path(spec), self.parquet_path(spec)
        if not (manifest.is_file() and parquet.is_file()):
            return None
        try:
            meta: dict[str, Any] = json.loads(manifest.read_text())
        except (OSError, ValueError):
            return None
        current = {"version": CACHE_VERSION, **file_fingerprint(source)}
        stored = {k: meta.get(k) for k in current}
        return meta if stored == current else None

    def ensure(self, spec: FileSpec, source: Path) -> dict[str, Any]:
        """Convert ``source`` into the cache unless a valid entry exists; return its manifest."""
        meta = self.lookup(spec, source)
        if meta is not None:
            return meta
        threshold = self.stream_above if self.stream_above is not None else stream_threshold()
        if file_fingerprint(source)["size"] > threshold:
            rows = convert_csv(source, spec.kind, self.parquet_path(spec))
        else:
            rows = self._convert_in_memory(spec, source)
        meta = {
            "version": CACHE_VERSION,
            **file_fingerprint(source),
            "source": str(source.resolve()),
            "file": spec.name,
            "kind": spec.kind.value,
            "rows": rows,
        }
        write_json(self.manifest_path(spec), meta)
        return meta

    def _convert_in_memory(self, spec: FileSpec, source: Path) -> int:
        """Read ``source`` whole, write its Parquet entry; return its rows."""
        frame = read_table(source, spec.kind)
        try:
            with atomic_path(self.parquet_path(spec)) as tmp:
                frame.write_parquet(tmp, compression="lz4", statistics=True)
        except OSError as exc:
            raise DataError(self.directory, f"cannot write cache ({exc.strerror or exc})") from None
        return frame.height

    def scan(self, spec: FileSpec) -> pl.LazyFrame:
        """A lazy scan of the cached table for ``spec`` (call :meth:`ensure` first)."""
        return pl.scan_parquet(self.parquet_path(spec))
