"""What the Ray tests share: no Ray session around a test, and a two-node cluster on this
machine. Import it after ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER`` is set (Ray reads the variable
when first imported), as the Ray test modules do at their top."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import ray


@pytest.fixture
def clean_ray() -> Iterator[None]:
    """No Ray session before or after the test."""
    assert not ray.is_initialized()
    yield
    if ray.is_initialized():
        ray.shutdown()


@contextlib.contextmanager
def two_node_cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A ``ray.cluster_utils.Cluster`` on 127.0.0.1 with a head and a second node, one CPU
    each; yields its address and shuts it (and any session left on it) down on exit."""
    from ray.cluster_utils import Cluster

    from noetik.utils.ray_engine import LOCAL_ONLY

    monkeypatch.setenv(LOCAL_ONLY, "0")
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        yield cluster.address
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
