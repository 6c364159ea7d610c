"""One way to turn a seed into independent random streams, so seeds flow everywhere."""

from __future__ import annotations

import numpy as np


def rng(seed: int, *stream: int | str) -> np.random.Generator:
    """A numpy Generator for ``seed`` and a named sub-stream (stable across runs and platforms).

    Different ``stream`` keys give statistically independent generators for the same seed, so
    adding a new random component never shifts the numbers drawn by existing ones.
    """
    keys = [int.from_bytes(str(s).encode(), "little") % (2**32) for s in stream]
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def derive_seed(seed: int, *stream: int | str) -> int:
    """A 32-bit seed for ``seed`` and a named sub-stream: the same keys always give the same
    number, different keys independent ones (e.g. one seed per block of simulated users)."""
    keys = [int.from_bytes(str(s).encode(), "little") % (2**32) for s in stream]
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1)[0])
