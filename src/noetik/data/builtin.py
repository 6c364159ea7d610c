"""The built-in dataset: synthetic KuaiRand-Pure, generated once per seed into the cache."""

from __future__ import annotations

import os
from pathlib import Path

from rich.progress import Progress

from noetik.data.schema import Release

#: Size of the built-in dataset (small enough to generate in seconds on 2 cores).
BUILTIN_USERS = 1_000
BUILTIN_VIDEOS = 2_000
BUILTIN_SEED = 0


def builtin_dataset_dir(
    seed: int = BUILTIN_SEED, progress: Progress | None = None, root: Path | None = None
) -> Path:
    """Directory of the built-in synthetic dataset for ``seed``, generating it when absent.

    It lives under ``$NOETIK_CACHE_DIR`` (default ``~/.cache/noetik``) in ``builtin/``.
    """
    from noetik.data.synthetic import SynthConfig, synthesize

    base = root or Path(os.environ.get("NOETIK_CACHE_DIR") or Path.home() / ".cache" / "noetik")
    out = base / "builtin" / f"pure-u{BUILTIN_USERS}-v{BUILTIN_VIDEOS}-s{seed}"
    if not (out / "noetik_synth.json").is_file():
        config = SynthConfig.for_release(
            Release.PURE, users=BUILTIN_USERS, videos=BUILTIN_VIDEOS, seed=seed
        )
        synthesize(out, config, progress=progress)
    return out
