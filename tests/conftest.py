"""Shared fixtures: the real KuaiRand sample (when present) and tiny valid KuaiRand files."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from tests.tiny import write_tiny_release

REPO = Path(__file__).resolve().parents[1]
REAL_SAMPLE = REPO.parent / "shared" / "data" / "kuairand-pure-sample"


@pytest.fixture
def real_sample() -> Path:
    """The real KuaiRand-Pure sample beside the repository; skips the test when absent."""
    if not (REAL_SAMPLE / "log_random_4_22_to_5_08_pure.csv").is_file():
        pytest.skip(f"real KuaiRand sample not found at {REAL_SAMPLE}")
    return REAL_SAMPLE


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """An empty cache folder for one test."""
    return tmp_path / "cache"


@pytest.fixture
def tiny_pure(tmp_path: Path) -> Path:
    """A complete, valid, tiny KuaiRand-Pure release (hand-made, known contents)."""
    return write_tiny_release(tmp_path / "pure", "pure")


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread() -> Iterator[None]:
    """Tests use tiny networks: one intra-op thread is fastest and immune to a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
