"""Transitions of a sharded log, built shard by shard into record files on disk.

A log too large for memory (KuaiRand-27K: 322M rows, 82 GB of float16 states alone) is held
as user shards (:mod:`noetik.data.store`). Each shard holds whole users, and states, episodes
and histories only ever look at one user's rows, so the transitions of a shard are exactly the
rows of those users in the transitions of the whole log (:func:`build_disk_transitions` tests
this against :func:`~noetik.data.transitions.build_transitions`). Two things are global and
computed first: the item vocabulary, and the time cutoff of a global temporal split
(:mod:`noetik.data.ondisk.cutoff`).

Layout of one folder (one per log, task and split; :func:`transitions_key` names it)::

    shard-00017-000.npy      records of shard 17's first group of whole users (at most
                             group_rows rows; noetik.data.ondisk.records), rows in order
    shard-00017-001.npy      its next group, ...
    shard-00017.counts.npy   (2, m) int64: the actions shard 17 logs and their counts
    shard-00017.json         its statistics; written last, so a shard is done when it exists
    video_ids.npy            (A,) int64 the action vocabulary
    transitions.json         the key, the shards' rows and the pooled statistics; written last

Episode ids are ``(shard << 40) + episode within the shard``: unique and non-decreasing over
the concatenation of the shards, with no shard waiting for another. Shards run through a
:class:`~noetik.utils.shards.ShardEngine` (this process, or Ray tasks): the same function
either way. A re-run skips the shards already written under the same key and redoes the rest.
Memory: the transitions of one group of whole users (``group_rows`` rows) at a time per worker,
whatever the sizes of the log and of its shards.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import polars as pl
from rich.progress import Progress

from noetik.data.dataset import KuaiRandDataset
from noetik.data.episodes import EpisodeConfig
from noetik.data.features import FeatureConfig, StateTables, state_tables
from noetik.data.ondisk.cutoff import global_cutoff
from noetik.data.ondisk.records import record_dtype, save_npy, to_records
from noetik.data.quirks import add_watch_ratio
from noetik.data.rewards import RewardConfig
from noetik.data.schema import FileKind
from noetik.data.splits import SplitConfig
from noetik.data.transition_stats import TransitionStats
from noetik.data.transitions import ItemVocab, transitions_from_log
from noetik.utils.io import read_json, write_json
from noetik.utils.memory import require
from noetik.utils.shards import LocalShards, ShardEngine

__all__ = ["EPISODE_SHIFT", "DiskJob", "ShardedLog", "build_disk_transitions", "transitions_key"]

#: Episode ids of shard ``k`` start at ``k << EPISODE_SHIFT``.
EPISODE_SHIFT = 40
#: Version of the folder layout; a new version rebuilds old folders.
LAYOUT_VERSION = 2
#: Default rows of whole users whose states are built at once (about 0.4 GB of work).
GROUP_ROWS = 500_000


class ShardedLog(Protocol):
    """A log held as user shards (:class:`noetik.data.store.ShardStore` is one)."""

    @property
    def n_shards(self) -> int:
        """Number of shards."""
        ...

    @property
    def kinds(self) -> tuple[FileKind, ...]:
        """The logs it holds."""
        ...

    def scan_shard(self, kind: FileKind, k: int) -> pl.LazyFrame:
        """Every row of shard ``k``'s users in log ``kind``, sorted by user and time."""
        ...

    def shard_rows(self, kind: FileKind) -> list[int]:
        """Rows of each shard of log ``kind``."""
        ...

    @property
    def manifest(self) -> dict[str, Any]:
        """The store's manifest; its ``"key"`` changes whenever the sharded data change (the
        sources, or the sharding)."""
        ...


@dataclass(frozen=True)
class DiskJob:
    """What every shard's work shares (sent once to each Ray worker)."""

    ds: KuaiRandDataset
    """The dataset (its video table gives the duration fallback of watch ratios)."""
    store: ShardedLog
    """The shards of its logs."""
    kind: FileKind
    """The log whose transitions are built."""
    tables: StateTables
    """User and video tables of the states (computed once)."""
    vocab: ItemVocab
    """The action vocabulary of the whole dataset."""
    reward: RewardConfig
    """The reward."""
    episodes: EpisodeConfig
    """How episodes are cut."""
    features: FeatureConfig
    """How states are computed."""
    split: Literal["train", "test"] | None
    """Which rows are kept (None: all)."""
    split_config: SplitConfig
    """The temporal split."""
    cutoff_ms: int | None
    """The global split cutoff of the whole log (None for a per-user split)."""
    out: Path
    """The folder of the record files."""
    key: str
    """The folder's key (:func:`transitions_key`)."""
    group_rows: int = GROUP_ROWS
    """Rows of whole users turned into states at once (bounds the memory of a shard's work)."""


def transitions_key(
    store: ShardedLog,
    kind: FileKind,
    *,
    reward: RewardConfig,
    episodes: EpisodeConfig,
    features: FeatureConfig,
    split: str | None,
    split_config: SplitConfig,
    group_rows: int = GROUP_ROWS,
) -> str:
    """A short hash naming the transitions of ``kind`` under these settings."""
    payload = {
        "layout": LAYOUT_VERSION,
        "store": store.manifest["key"],
        "n_shards": store.n_shards,
        "kind": kind.value,
        "reward": reward.as_dict(),
        "episodes": dataclasses.asdict(episodes),
        "features": dataclasses.asdict(features),
        "split": split,
        "split_config": dataclasses.asdict(split_config),
        "group_rows": group_rows,
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def build_disk_transitions(
    ds: KuaiRandDataset,
    store: ShardedLog,
    root: Path,
    *,
    kind: FileKind = FileKind.LOG_STANDARD,
    reward: RewardConfig | None = None,
    episodes: EpisodeConfig | None = None,
    features: FeatureConfig | None = None,
    split: Literal["train", "test"] | None = None,
    split_config: SplitConfig | None = None,
    vocab: ItemVocab | None = None,
    engine: ShardEngine | None = None,
    progress: Progress | None = None,
    group_rows: int = GROUP_ROWS,
) -> Path:
    """Write the transitions of log ``kind`` of ``store`` under ``root/<key>`` (see the module
    docstring) unless already there; return that folder. Same arguments as
    :func:`~noetik.data.transitions.build_transitions`; ``group_rows`` bounds the rows whose
    states one task builds at once (its memory)."""
    reward, episodes = reward or RewardConfig(), episodes or EpisodeConfig()
    features, split_config = features or FeatureConfig(), split_config or SplitConfig()
    key = transitions_key(
        store,
        kind,
        reward=reward,
        episodes=episodes,
        features=features,
        split=split,
        split_config=split_config,
        group_rows=group_rows,
    )
    out = Path(root) / key
    manifest = out / "transitions.json"
    if manifest.is_file() and read_json(manifest).get("key") == key:
        return out
    out.mkdir(parents=True, exist_ok=True)
    vocab = vocab or store_vocab(ds, store)
    users = ds.users() if ds.has(FileKind.USER_FEATURES) else None
    videos = ds.videos() if ds.has(FileKind.VIDEO_BASIC) else None
    cutoff = None
    if split is not None and split_config.by == "global":
        cutoff = global_cutoff(
            lambda k: _times(store, kind, k), store.n_shards, split_config.train_fraction
        )
    job = DiskJob(
        ds=ds,
        store=store,
        kind=kind,
        tables=state_tables(users, videos),
        vocab=vocab,
        reward=reward,
        episodes=episodes,
        features=features,
        split=split,
        split_config=split_config,
        cutoff_ms=cutoff,
        out=out,
        key=key,
        group_rows=group_rows,
    )
    rows = store.shard_rows(kind)
    todo = [k for k in range(store.n_shards) if not _done(out, k, key)]
    (engine or LocalShards()).map(
        build_shard,
        job,
        todo,
        sizes=[rows[k] for k in todo],
        description="Building states (shards)",
        progress=progress,
    )
    stats = TransitionStats.pooled(read_shard_stats(out, k, len(vocab)) for k in range(len(rows)))
    save_npy(out / "video_ids.npy", vocab.video_ids)
    write_json(
        manifest,
        {
            "key": key,
            "kind": kind.value,
            "split": split,
            "reward": reward.as_dict(),
            "obs_dtype": features.obs_dtype,
            "n_actions": len(vocab),
            "shard_rows": [int(read_json(_stats_path(out, k))["rows"]) for k in range(len(rows))],
            "stats": stats.to_json(),
        },
    )
    return out


def build_shard(job: DiskJob, k: int) -> int:
    """Write shard ``k``'s records (one file per group of whole users of at most
    ``job.group_rows`` rows, so memory does not depend on the shard's size), its action counts
    and its statistics; return its rows."""
    bytes_per_row = 2 * record_dtype(job.features.obs_dtype).itemsize + 200
    require(
        job.group_rows * bytes_per_row,
        f"the states of {job.group_rows:,} rows of shard {k}",
        "a smaller group_rows",
    )
    scan = job.store.scan_shard(job.kind, k)
    videos = shard_videos(job.ds, scan)
    parts: list[int] = []
    stats: TransitionStats | None = None
    episode_base = k << EPISODE_SHIFT
    for lo, hi in user_groups(scan, job.group_rows):
        group = scan.filter(pl.col("user_id").is_between(lo, hi))
        t = transitions_from_log(
            add_watch_ratio(group, videos),
            job.tables,
            job.vocab,
            reward=job.reward,
            episodes=job.episodes,
            features=job.features,
            split=job.split,
            split_config=job.split_config,
            cutoff_ms=job.cutoff_ms,
        )
        save_npy(part_path(job.out, k, len(parts)), to_records(t, episode_base))
        episode_base += int(t.episode_id.max()) + 1 if len(t) else 0
        part = TransitionStats.of_arrays(t.reward, t.episode_id, t.action, t.n_actions)
        stats = part if stats is None else TransitionStats.pooled([stats, part])
        parts.append(len(t))
    if stats is None:
        stats = TransitionStats.of_arrays(np.zeros(0), np.zeros(0), np.zeros(0), len(job.vocab))
    present = np.flatnonzero(stats.action_counts)
    counts = np.stack([present, stats.action_counts[present]]).astype(np.int64)
    save_npy(job.out / f"shard-{k:05d}.counts.npy", counts)
    write_json(_stats_path(job.out, k), {"key": job.key, "parts": parts, **stats.to_json()})
    return stats.rows


def shard_videos(ds: KuaiRandDataset, scan: pl.LazyFrame) -> pl.LazyFrame | None:
    """The cleaned video table's rows of the videos a shard logs (for the watch ratios'
    duration fallback), read once per shard rather than joined from the whole table (32M
    videos in 27K) for every group of users; None without a video table."""
    if not ds.has(FileKind.VIDEO_BASIC):
        return None
    shown = scan.select("video_id").unique()
    return ds.videos().join(shown, on="video_id", how="semi").collect().lazy()


def user_groups(scan: pl.LazyFrame, group_rows: int) -> list[tuple[int, int]]:
    """``(first user, last user)`` of consecutive runs of the users of ``scan`` (in user
    order) holding at most ``group_rows`` rows each (a user with more rows is a run alone)."""
    users = scan.group_by("user_id").len().sort("user_id").collect()
    ids, sizes = users["user_id"].to_numpy(), users["len"].to_numpy()
    groups, start, total = [], 0, 0
    for i, size in enumerate(sizes.tolist()):
        if total and total + size > group_rows:
            groups.append((int(ids[start]), int(ids[i - 1])))
            start, total = i, 0
        total += size
    if len(ids):
        groups.append((int(ids[start]), int(ids[-1])))
    return groups


def part_path(out: Path, k: int, g: int) -> Path:
    """The record file of group ``g`` of shard ``k``."""
    return out / f"shard-{k:05d}-{g:03d}.npy"


def store_vocab(ds: KuaiRandDataset, store: ShardedLog) -> ItemVocab:
    """:meth:`ItemVocab.from_dataset` with the logs read from the shards (a 27K log is only
    there: it never enters the ordinary cache)."""
    scans = [ds.scan(FileKind.VIDEO_BASIC)] if ds.has(FileKind.VIDEO_BASIC) else []
    scans += [store.scan_shard(kind, k) for kind in store.kinds for k in range(store.n_shards)]
    return ItemVocab.from_scans(scans)


def read_shard_stats(out: Path, k: int, n_actions: int) -> TransitionStats:
    """The statistics :func:`build_shard` wrote for shard ``k``."""
    meta: dict[str, Any] = read_json(_stats_path(out, k))
    pairs = np.load(out / f"shard-{k:05d}.counts.npy", allow_pickle=False)
    counts = np.zeros(n_actions, dtype=np.int64)
    counts[pairs[0]] = pairs[1]
    return TransitionStats.from_json(meta, counts)


def record_files(out: Path, n_shards: int) -> Sequence[Path]:
    """The record files of a folder's ``n_shards`` shards, in row order."""
    files = []
    for k in range(n_shards):
        parts = read_json(_stats_path(out, k), "shard statistics")["parts"]
        files += [part_path(out, k, g) for g in range(len(parts))]
    return files


def _stats_path(out: Path, k: int) -> Path:
    return out / f"shard-{k:05d}.json"


def _done(out: Path, k: int, key: str) -> bool:
    path = _stats_path(out, k)
    try:
        meta = json.loads(path.read_text())
        parts = range(len(meta["parts"]))
        return bool(meta["key"] == key) and all(part_path(out, k, g).is_file() for g in parts)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _times(store: ShardedLog, kind: FileKind, k: int) -> np.ndarray:
    frame = store.scan_shard(kind, k).select(pl.col("time_ms").cast(pl.Int64)).collect()
    return frame["time_ms"].to_numpy()
