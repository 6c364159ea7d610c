"""Every file Noetik writes gets the usual permissions (0o666 minus the umask): checkpoints as
much as JSON, whatever the writer does to the temporary file it writes through."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from noetik.agents.core.base import save_tensors
from noetik.utils.io import atomic_path, write_json, write_text
from tests.conftest import REPO


@pytest.fixture
def umask() -> Iterator[None]:
    """Restores the process umask after a test that sets its own."""
    old = os.umask(0o022)
    os.umask(old)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("umask")
@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002])
def test_every_atomic_writer_gives_the_usual_mode(mask: int, tmp_path: Path) -> None:
    os.umask(mask)
    expected = 0o666 & ~mask
    write_json(tmp_path / "a.json", {"x": 1})
    write_text(tmp_path / "b.txt", "text\n")
    save_tensors(tmp_path / "c.safetensors", {"w": torch.zeros(3)})
    with atomic_path(tmp_path / "d.bin") as tmp:  # a writer that replaces the file, 0o600
        tmp.unlink()
        tmp.write_bytes(b"x")
        tmp.chmod(0o600)
    for name in ("a.json", "b.txt", "c.safetensors", "d.bin"):
        assert _mode(tmp_path / name) == expected, (name, oct(_mode(tmp_path / name)))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a.json",
        "b.txt",
        "c.safetensors",
        "d.bin",
    ]


@pytest.mark.usefixtures("umask")
def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    os.umask(0o022)
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "x.json") as tmp:
        tmp.write_text("half")
        raise RuntimeError("writer failed")
    assert list(tmp_path.iterdir()) == []


def test_trained_run_files_have_the_usual_mode(tmp_path: Path) -> None:
    """`noetik train` under umask 022, as a user runs it: model and JSON files alike are 0644."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "NOETIK_CACHE_DIR": str(tmp_path / "c")}

    def noetik(*args: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "noetik", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            preexec_fn=lambda: os.umask(0o022),
        )
        assert done.returncode == 0, done.stderr

    config = tmp_path / "bc.json"
    config.write_text(json.dumps({"batch_size": 16, "encoder": {"kind": "mlp", "hidden": [8]}}))
    noetik("data", "synth", "data", "--users", "20", "--videos", "40")
    noetik("train", "bc", "--data", "data", "--steps", "2", "--out", "run", "--config", "bc.json")
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert any(p.suffix == ".safetensors" for p in files)
    assert any(p.suffix == ".json" for p in files)
    assert {p.name: oct(_mode(p)) for p in files} == {p.name: "0o644" for p in files}
