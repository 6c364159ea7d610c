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


@pytest.fixture(scope="session")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny KuaiRand simulator fitted once on a small synthetic dataset (60 users, 300
    videos), shared read-only by the environment, heuristic and evaluation tests."""
    from noetik.data.dataset import load_kuairand
    from noetik.data.synthetic import SynthConfig, synthesize
    from noetik.simulators.kuairand import ResponseModelConfig, fit_response_model

    root = tmp_path_factory.mktemp("tiny_sim")
    synthesize(root / "data", SynthConfig.for_release("pure", users=60, videos=300, seed=3))
    ds = load_kuairand(root / "data", cache_dir=root / "cache")
    config = ResponseModelConfig(hidden=32, epochs=1, fit_uncorrected=False, seed=0)
    fit_response_model(ds, config).save(root / "sim")
    return str(root / "sim")


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """An empty cache folder for one test."""
    return tmp_path / "cache"


@pytest.fixture
def tiny_pure(tmp_path: Path) -> Path:
    """A complete, valid, tiny KuaiRand-Pure release (hand-made, known contents)."""
    return write_tiny_release(tmp_path / "pure", "pure")


@pytest.fixture
def clean_ray() -> Iterator[None]:
    """No Ray session before or after the test (the ``ray`` tests; they import Ray first,
    after setting what it reads on import)."""
    import ray

    assert not ray.is_initialized()
    yield
    if ray.is_initialized():
        ray.shutdown()


@pytest.fixture
def two_node_cluster(clean_ray: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real Ray cluster on this machine (``ray.cluster_utils.Cluster``, on 127.0.0.1): a head
    and a second node, one CPU each, both checked alive; yields its address."""
    import ray
    from ray.cluster_utils import Cluster

    from noetik.utils.ray_engine import LOCAL_ONLY, ray_session

    monkeypatch.setenv(LOCAL_ONLY, "0")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        with ray_session(cluster.address) as engine:
            assert engine.workers == 2
            assert sum(node["Alive"] for node in ray.nodes()) == 2
        assert not ray.is_initialized()
        yield cluster.address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread() -> Iterator[None]:
    """Tests use tiny networks: one intra-op thread is fastest and immune to a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
