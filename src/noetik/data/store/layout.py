"""Where the shard store keeps its files under a dataset's cache directory.

::

    <cache>/shards/manifest.json                       written last: the store is complete
    <cache>/shards/<log kind>/shard-00017.parquet      rows of users with user_id % n == 17
    <cache>/shards/entries/shard-00017.json            shard 17 is written (store key, rows)
    <cache>/shards/pieces/<file stem>/shard-00017.parquet   stage (a) output, deleted later
    <cache>/shards/sources/<file stem>.json            that source file is split (store key,
                                                       fingerprint, rows per shard)

``<log kind>`` is ``log_standard`` or ``log_random``. Files are written under a temporary name
(a dot-prefixed ``*.tmp`` beside them) and renamed, so a name above is always complete.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from noetik.data.schema import FileKind

#: Bump when the layout or the content of the store changes: older stores are rebuilt.
STORE_VERSION = 1


@dataclass(frozen=True)
class StoreLayout:
    """The paths of one shard store."""

    root: Path
    """``<cache>/shards``: every file of the store is under it."""

    @classmethod
    def of_cache(cls, cache_dir: Path) -> StoreLayout:
        """The store of the cache directory ``cache_dir``."""
        return cls(Path(cache_dir).resolve() / "shards")

    @property
    def manifest(self) -> Path:
        """``manifest.json``: present only once every shard is written."""
        return self.root / "manifest.json"

    def shard(self, kind: FileKind, k: int) -> Path:
        """Shard ``k`` of log ``kind``."""
        return self.root / kind.value / f"shard-{k:05d}.parquet"

    def entry(self, k: int) -> Path:
        """The JSON entry written once shard ``k`` of every log is written."""
        return self.root / "entries" / f"shard-{k:05d}.json"

    @property
    def pieces(self) -> Path:
        """Folder of stage (a)'s output (removed when the store is complete)."""
        return self.root / "pieces"

    def piece_dir(self, stem: str) -> Path:
        """The pieces of source file ``stem`` (one folder, renamed into place when complete)."""
        return self.pieces / stem

    def piece(self, stem: str, k: int) -> Path:
        """The rows of source file ``stem`` that belong to shard ``k``, in file order."""
        return self.piece_dir(stem) / f"shard-{k:05d}.parquet"

    def piece_marker(self, stem: str) -> Path:
        """The done-marker of source file ``stem``: its fingerprint and rows per shard (kept
        when the pieces are removed: it tells which shards hold rows of the file)."""
        return self.root / "sources" / f"{stem}.json"
