"""The shard store prepared with Ray tasks on a two-node cluster equals the local store.

A ``ray.cluster_utils.Cluster`` on this machine (a head and a second node, one CPU each) runs
stage (a) (one task per source file) and stage (b) (one task per shard); every shard's frame
and the manifest's rows must equal those of the in-process preparation. Ray starts slowly, so
this runs in the Ray step of CI (``pytest -m ray``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# Ray reads this when first imported: its instances in this process stay on 127.0.0.1
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
ray = pytest.importorskip("ray")

from noetik.cli.main import main  # noqa: E402
from noetik.data.dataset import load_kuairand  # noqa: E402
from noetik.data.store import ShardStore, StoreConfig, prepare_store  # noqa: E402
from noetik.data.synthetic import SynthConfig, synthesize  # noqa: E402
from noetik.utils.ray_engine import ShardFailed, ray_session  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.ray]

SMALL = StoreConfig(block_bytes=16_384, buffer_rows=700)
PART2 = "log_standard_4_08_to_4_21_27k_part2.csv"


def _with_bad_value(data: Path, out: Path) -> Path:
    """A copy of ``data`` whose second standard part has 'x' as the tab of line 3."""
    shutil.copytree(data, out)
    lines = (out / PART2).read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0] + ",x"
    (out / PART2).write_text("\n".join(lines) + "\n")
    return out


def _same_store(a: ShardStore, b: ShardStore) -> None:
    assert a.n_shards == b.n_shards and a.kinds == b.kinds
    for key in ("key", "rows", "source_rows", "sources", "complete"):
        assert a.manifest[key] == b.manifest[key], key
    for kind in a.kinds:
        for k in range(a.n_shards):
            assert a.shard_path(kind, k) != b.shard_path(kind, k)
            assert a.scan_shard(kind, k).collect().equals(b.scan_shard(kind, k).collect())


def test_two_node_cluster_prepares_the_local_store(tmp_path: Path, two_node_cluster: str) -> None:
    data = tmp_path / "data"
    config = SynthConfig.for_release(
        "27k", users=24, videos=60, seed=4, standard_per_user=200, random_per_user=15
    )
    synthesize(data, config)
    local = prepare_store(load_kuairand(data, tmp_path / "local"), n_shards=5, config=SMALL)
    address = two_node_cluster
    with ray_session(address) as engine:
        assert engine.workers == 2
        ds = load_kuairand(data, tmp_path / "ray")
        _same_store(prepare_store(ds, engine, n_shards=5, config=SMALL), local)
        # a bad value in one part file: its task is named, with the line and column
        bad = _with_bad_value(data, tmp_path / "bad")
        failed = f"'Splitting log files \\(MB\\) 2/5' failed: .*{PART2}, line 3, column 'tab'"
        with pytest.raises(ShardFailed, match=failed):
            prepare_store(load_kuairand(bad, tmp_path / "bad-cache"), engine, n_shards=5)
    assert not ray.is_initialized()
    cache = tmp_path / "cli"
    argv = ["data", "prepare", str(data), "--cache", str(cache), "--n-shards", "5"]
    assert main([*argv, "--ray-address", address]) == 0
    _same_store(ShardStore.open(load_kuairand(data, cache)), local)
