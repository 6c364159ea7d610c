"""The top-level API promised by the README: ``import noetik`` registers the environments."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _fresh_python(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter that imports this checkout's ``noetik``."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_import_noetik_registers_every_environment() -> None:
    done = _fresh_python(
        "import noetik, gymnasium; gymnasium.make('noetik/KuaiRand-v0')\n"
        "from noetik.envs import ENV_IDS\n"
        "assert all(i in gymnasium.registry for i in ENV_IDS), ENV_IDS\n"
    )
    assert done.returncode == 0, done.stderr


def test_import_noetik_stays_cheap() -> None:
    """Registering loads no environment module (entry points are strings) and no torch."""
    done = _fresh_python(
        "import sys, noetik\n"
        "heavy = [m for m in ('torch', 'noetik.envs.kuairand_env', 'noetik.simulators')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    assert done.returncode == 0, done.stderr
