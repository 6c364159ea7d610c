"""Atomic file writing: nothing half-written is ever left under a final name."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from noetik.errors import ConfigError


def _default_mode() -> int:
    """Permissions a plainly created file would get (0o666 minus the process umask)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_MODE = _default_mode()


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it onto ``final`` only on success.

    On any exception the temporary file is removed and ``final`` is left untouched, so readers
    see either the previous complete file or the new complete file, never a partial one.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, _MODE)  # mkstemp creates 0600; give the file the usual permissions
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: Path, payload: Any) -> None:
    """Write ``payload`` as indented JSON to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def read_json(path: Path, what: str = "JSON file") -> Any:
    """The JSON value in ``path``; a missing, unreadable or damaged file raises a one-line
    :class:`~noetik.errors.ConfigError` naming it (``what`` says what the file is)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such {what}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read {what} ({exc})") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path}: damaged {what}, not valid JSON ({exc})") from None


def expect_object(value: Any, path: Path | str, what: str = "JSON file") -> dict[str, Any]:
    """``value`` when it is a JSON object, else a one-line :class:`ConfigError` naming ``path``."""
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: damaged {what}, expected a JSON object")
    return value
