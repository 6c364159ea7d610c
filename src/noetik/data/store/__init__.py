"""The user-sharded columnar store of a dataset's logs (built for KuaiRand-27K, out of core).

Layout under the dataset's cache directory (:mod:`noetik.data.store.layout`)::

    <cache>/shards/manifest.json                   version, key, n_shards, release, sources
                                                   (fingerprints), source_rows, rows (per log
                                                   kind, per shard), complete: written last
    <cache>/shards/log_standard/shard-00017.parquet
    <cache>/shards/log_random/shard-00017.parquet

Shard ``k`` of a log holds every row of the users with ``user_id % n_shards == k``, sorted by
``(user_id, time_ms)`` with ties in canonical file order (parts in order, then rows): exactly
``ds.scan(kind).sort(["user_id", "time_ms"], maintain_order=True)`` restricted to those users,
with the cached Parquet's columns and dtypes (rows x 19 log columns). Both logs use the same
``n_shards``, so a user's standard and random rows have the same shard number.

API::

    prepare_store(ds, engine=None, progress=None, n_shards=None, config=None) -> ShardStore
        build, finish or reuse the store (engine: LocalShards() or a RayShards of ray_session)
    ShardStore.open(ds, n_shards=None) -> ShardStore   the complete, up-to-date store, or
                                                       DataError (none yet / data changed)
    store.n_shards -> int
    store.kinds -> tuple[FileKind, ...]                the logs in the store
    store.shard_path(kind, k) -> Path                  shard k's Parquet file
    store.scan_shard(kind, k) -> pl.LazyFrame          shard k's sorted rows
    store.shard_rows(kind) -> list[int]                rows per shard (n_shards ints)
    store.manifest -> dict                             manifest.json as read
    plan_store(ds, config=None, n_shards=None) -> StorePlan   sources and number of shards
    StoreConfig(target_shard_rows=3_000_000, block_bytes=16 MiB, buffer_rows=1_000_000)

Modules: :mod:`~.layout` (paths), :mod:`~.plan` (settings, sources, number of shards),
:mod:`~.split` (stage a: source file -> pieces), :mod:`~.merge` (stage b: pieces -> shard),
:mod:`~.store` (the two stages in order, and reading).
"""

from noetik.data.store.layout import STORE_VERSION, StoreLayout
from noetik.data.store.plan import StoreConfig, StorePlan, auto_shards, plan_store
from noetik.data.store.store import ShardStore, prepare_store

__all__ = [
    "STORE_VERSION",
    "ShardStore",
    "StoreConfig",
    "StoreLayout",
    "StorePlan",
    "auto_shards",
    "plan_store",
    "prepare_store",
]
