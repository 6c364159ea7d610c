"""Find the KuaiRand files in a directory and tell which release they belong to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from noetik.data.schema import FileKind, FileSpec, Release, expected_files, parse_file_name
from noetik.errors import DataError


@dataclass(frozen=True)
class DatasetFiles:
    """The official files found in one directory."""

    root: Path
    """The directory that was searched."""
    release: Release
    """The release detected from the file names."""
    present: dict[FileSpec, Path]
    """Official files that exist, in canonical order, with their paths."""
    missing: tuple[FileSpec, ...]
    """Official files of the release that are not in the directory."""
    ignored: tuple[str, ...]
    """Other CSV files in the directory (not official names), left untouched."""

    def files_of(self, kind: FileKind) -> list[tuple[FileSpec, Path]]:
        """The present files that make up table ``kind`` (several for split 27K files)."""
        return [(spec, path) for spec, path in self.present.items() if spec.kind is kind]

    def has(self, kind: FileKind) -> bool:
        """Whether at least one file of table ``kind`` is present."""
        return any(spec.kind is kind for spec in self.present)

    def is_complete(self, kind: FileKind) -> bool:
        """Whether every official file of table ``kind`` is present."""
        return self.has(kind) and not any(spec.kind is kind for spec in self.missing)


def discover(root: Path | str) -> DatasetFiles:
    """Scan ``root`` for official KuaiRand file names and detect the release.

    Raises DataError when ``root`` is not a readable directory, holds no KuaiRand file, or mixes
    files of different releases.
    """
    root = Path(root)
    if not root.exists():
        raise DataError(root, "no such directory")
    if not root.is_dir():
        raise DataError(root, "is not a directory (give the folder that holds the KuaiRand CSVs)")
    try:
        names = sorted(p.name for p in root.iterdir() if p.suffix == ".csv")
    except OSError as exc:
        raise DataError(root, f"cannot list directory ({exc.strerror or exc})") from None
    specs = {name: parse_file_name(name) for name in names}
    found = {spec for spec in specs.values() if spec is not None}
    releases = sorted({spec.release.value for spec in found})
    if not releases:
        shown = ", ".join(names[:3]) + (" ..." if len(names) > 3 else "") if names else "none"
        raise DataError(
            root,
            f"unknown release: no official KuaiRand file names found (CSV files: {shown}); "
            "expected names such as log_random_4_22_to_5_08_pure.csv",
        )
    if len(releases) > 1:
        raise DataError(root, f"files of several releases mixed in one directory: {releases}")
    release = Release(releases[0])
    canonical = expected_files(release)
    return DatasetFiles(
        root=root,
        release=release,
        present={spec: root / spec.name for spec in canonical if spec in found},
        missing=tuple(spec for spec in canonical if spec not in found),
        ignored=tuple(name for name, spec in specs.items() if spec is None),
    )
