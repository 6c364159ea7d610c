"""One way to turn a seed into independent random streams, so seeds flow everywhere."""

from __future__ import annotations

import numpy as np


def _sequence(seed: int, stream: tuple[int | str, ...]) -> np.random.SeedSequence:
    """The seed sequence of ``seed`` and the ``stream`` keys (each hashed to 32 bits)."""
    keys = [int.from_bytes(str(s).encode(), "little") % (2**32) for s in stream]
    return np.random.SeedSequence([seed, *keys])


def rng(seed: int, *stream: int | str) -> np.random.Generator:
    """A numpy Generator for ``seed`` and a named sub-stream (stable across runs and platforms).

    Different ``stream`` keys give statistically independent generators for the same seed, so
    adding a new random component never shifts the numbers drawn by existing ones.
    """
    return np.random.default_rng(_sequence(seed, stream))


def derive_seed(seed: int, *stream: int | str) -> int:
    """A 32-bit seed for ``seed`` and a named sub-stream: the same keys always give the same
    number, different keys independent ones (e.g. one seed per block of simulated users)."""
    return int(_sequence(seed, stream).generate_state(1)[0])
