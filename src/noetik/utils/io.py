"""Atomic file writing: nothing half-written is ever left under a final name."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from noetik.errors import ConfigError


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it onto ``final`` only on success.

    On any exception the temporary file is removed and ``final`` is left untouched, so readers
    see either the previous complete file or the new complete file, never a partial one.

    The file ends up with the permissions a plainly created file would get (``0o666`` minus the
    process umask at the time of the call), whatever the writer did to the temporary file: some
    writers (safetensors, for one) replace it with a private ``0o600`` file of their own.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp, mode = _create_temp(final)
    try:
        yield tmp
        if tmp.stat().st_mode & 0o7777 != mode:
            os.chmod(tmp, mode)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def _create_temp(final: Path) -> tuple[Path, int]:
    """A new empty file beside ``final`` created with mode 0o666, and the mode the umask left.

    Letting the kernel apply the umask (rather than reading it with ``os.umask``, which has to
    change it) keeps this safe with other threads.
    """
    for _ in range(100):
        tmp = final.parent / f".{final.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        try:
            return tmp, os.fstat(fd).st_mode & 0o7777
        finally:
            os.close(fd)
    raise FileExistsError(f"no free temporary name beside {final}")


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
