"""Transitions on disk (noetik.data.ondisk): built per user shard, equal to the in-memory ones
user by user, sampled a window at a time exactly like an in-memory replay."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

from noetik.agents.algorithms.iql import IQLConfig
from noetik.agents.core.base import ProblemSpec
from noetik.agents.core.batches import DeviceReplay, HostReplay
from noetik.agents.core.reward_scale import reward_scale
from noetik.agents.networks.encoders import EncoderConfig
from noetik.data.dataset import KuaiRandDataset, load_kuairand
from noetik.data.ondisk import DiskTransitions, build_disk_transitions
from noetik.data.ondisk.cutoff import global_cutoff
from noetik.data.ondisk.records import to_records
from noetik.data.schema import FileKind
from noetik.data.splits import SplitConfig
from noetik.data.synthetic import SynthConfig, synthesize
from noetik.data.transitions import Transitions, build_transitions, episode_links


class UserShards:
    """A minimal sharded log for these tests: user ``u`` in shard ``u % n``, sorted rows."""

    def __init__(self, ds: KuaiRandDataset, n: int, folder: Path) -> None:
        self.n_shards, self.folder = n, folder
        folder.mkdir(parents=True, exist_ok=True)
        self.kinds = (FileKind.LOG_STANDARD, FileKind.LOG_RANDOM)
        self.rows: dict[FileKind, list[int]] = {}
        for kind in self.kinds:
            log = ds.scan(kind).sort(["user_id", "time_ms"], maintain_order=True)
            self.rows[kind] = []
            for k in range(n):
                part = log.filter(pl.col("user_id") % n == k).collect()
                part.write_parquet(folder / f"{kind.value}-{k}.parquet")
                self.rows[kind].append(part.height)

    def scan_shard(self, kind: FileKind, k: int) -> pl.LazyFrame:
        return pl.scan_parquet(self.folder / f"{kind.value}-{k}.parquet")

    def shard_rows(self, kind: FileKind) -> list[int]:
        return list(self.rows[kind])

    @property
    def manifest(self) -> dict[str, str]:
        return {"key": hashlib.sha1(str(self.rows[FileKind.LOG_STANDARD]).encode()).hexdigest()}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ondisk") / "data"
    synthesize(root, SynthConfig.for_release("pure", users=40, videos=200, seed=5))
    return root


def _in_memory(disk: DiskTransitions) -> Transitions:
    """Every record of ``disk`` in memory, in its row order."""
    rec = np.concatenate([f.read(0, f.rows) for f in disk.files])
    done, next_index = episode_links(rec["episode_id"])
    c = np.ascontiguousarray
    return Transitions(
        obs=c(rec["obs"]),
        action=c(rec["action"]),
        reward=c(rec["reward"]),
        done=done,
        next_index=next_index,
        episode_id=c(rec["episode_id"]),
        step=c(rec["step"]),
        user_id=c(rec["user_id"]),
        time_ms=c(rec["time_ms"]),
        signals=c(rec["signals"]),
        vocab=disk.vocab,
        reward_config=disk.reward_config,
    )


def test_global_cutoff_equals_the_quantile_of_the_whole_log() -> None:
    rng = np.random.default_rng(0)
    shards = [rng.integers(10**12, 10**12 + 10**9, size=n) for n in (0, 5, 1000, 37, 4000)]
    shards.append(np.full(300, 10**12 + 5))  # many ties
    whole = pl.Series(np.concatenate(shards))
    for q in (0.1, 0.5, 0.8, 0.999):
        expected = whole.quantile(q, interpolation="lower")
        assert global_cutoff(lambda k: shards[k], len(shards), q) == expected


@pytest.mark.parametrize(("split_by", "group_rows"), [("global", 10**6), ("user", 200)])
def test_disk_transitions_equal_the_in_memory_ones_user_by_user(
    data: Path, tmp_path: Path, split_by: str, group_rows: int
) -> None:
    ds = load_kuairand(data, cache_dir=tmp_path / "cache")
    split = SplitConfig(by=split_by)  # type: ignore[arg-type]
    store = UserShards(ds, 3, tmp_path / "shards")
    folder = build_disk_transitions(
        ds, store, tmp_path / "t", split="train", split_config=split, group_rows=group_rows
    )
    disk = DiskTransitions.load(folder)
    assert (len(disk.files) > 3) == (group_rows == 200)  # several groups of users per shard
    mem = build_transitions(ds, split="train", split_config=split)
    assert len(disk) == len(mem) and [f.rows for f in disk.files] != [len(mem)]
    np.testing.assert_array_equal(disk.vocab.video_ids, mem.vocab.video_ids)
    got = _in_memory(disk)
    for user in np.unique(mem.user_id):
        a, b = np.flatnonzero(mem.user_id == user), np.flatnonzero(got.user_id == user)
        for name in ("obs", "action", "reward", "done", "step", "time_ms", "signals"):
            np.testing.assert_array_equal(getattr(got, name)[b], getattr(mem, name)[a], name)
        starts_mem = np.r_[True, mem.episode_id[a][1:] != mem.episode_id[a][:-1]]
        starts_got = np.r_[True, got.episode_id[b][1:] != got.episode_id[b][:-1]]
        np.testing.assert_array_equal(starts_got, starts_mem)
    assert len(np.unique(got.episode_id)) == len(np.unique(mem.episode_id))
    np.testing.assert_array_equal(disk.stats.action_counts, mem.stats.action_counts)
    assert disk.stats.rows == mem.stats.rows
    assert disk.stats.reward_std == pytest.approx(mem.stats.reward_std, rel=1e-12)
    assert (disk.stats.return_min, disk.stats.return_max) == pytest.approx(
        (mem.stats.return_min, mem.stats.return_max)
    )
    for mode in ("std", "return_range"):
        assert reward_scale(disk, mode) == pytest.approx(reward_scale(mem, mode), rel=1e-12)


def test_a_rerun_rebuilds_only_missing_shards(data: Path, tmp_path: Path) -> None:
    ds = load_kuairand(data, cache_dir=tmp_path / "cache")
    store = UserShards(ds, 4, tmp_path / "shards")
    folder = build_disk_transitions(ds, store, tmp_path / "t")
    before = {p.name: p.stat().st_mtime_ns for p in folder.glob("shard-*.npy")}
    assert len(before) == 8
    first = _in_memory(DiskTransitions.load(folder))
    (folder / "shard-00002.json").unlink()  # as if the run stopped while writing shard 2
    (folder / "transitions.json").unlink()
    (folder / "shard-00001-000.npy.tmp").write_bytes(b"half")  # a stray temporary file
    assert build_disk_transitions(ds, store, tmp_path / "t") == folder
    after = {p.name: p.stat().st_mtime_ns for p in folder.glob("shard-*.npy")}
    changed = sorted(n for n in after if after[n] != before[n])
    assert changed == ["shard-00002-000.npy", "shard-00002.counts.npy"]
    again = _in_memory(DiskTransitions.load(folder))
    np.testing.assert_array_equal(to_records(again), to_records(first))


@pytest.mark.parametrize("history_len", [0, 3])
def test_disk_replay_draws_the_batches_of_an_in_memory_replay(
    data: Path, tmp_path: Path, history_len: int
) -> None:
    ds = load_kuairand(data, cache_dir=tmp_path / "cache")
    store = UserShards(ds, 3, tmp_path / "shards")
    disk = DiskTransitions.load(build_disk_transitions(ds, store, tmp_path / "t"))
    mem = _in_memory(disk)
    a = HostReplay(disk, 64, history_len=history_len, seed=3)
    b = HostReplay(mem, 64, history_len=history_len, seed=3)
    for _ in range(3):
        x, y = a.sample(), b.sample()
        for name in ("rows", "obs", "action", "reward", "next_obs", "done"):
            torch.testing.assert_close(getattr(x, name), getattr(y, name), rtol=0, atol=0)
        if history_len:
            for h, g in ((x.history, y.history), (x.next_history, y.next_history)):
                assert h is not None and g is not None
                for part in ("items", "signals", "gap_s", "mask"):
                    torch.testing.assert_close(getattr(h, part), getattr(g, part), rtol=0, atol=0)
    first_rows = np.r_[0, [f.rows for f in disk.files]].cumsum()[:-1]
    edge = a.batch(torch.as_tensor(first_rows))  # windows reaching before a shard's first row
    assert edge.history is None or not edge.history.mask.any()


def test_iql_trains_on_disk_transitions_as_on_the_same_rows_in_memory(
    data: Path, tmp_path: Path
) -> None:
    ds = load_kuairand(data, cache_dir=tmp_path / "cache")
    store = UserShards(ds, 2, tmp_path / "shards")
    disk = DiskTransitions.load(build_disk_transitions(ds, store, tmp_path / "t"))
    mem = _in_memory(disk)
    config = IQLConfig(seed=1, batch_size=32, encoder=EncoderConfig(kind="transformer"))
    losses = []
    for t in (disk, mem):
        agent = config.create(ProblemSpec.from_transitions(t))
        source = agent.make_source(t)
        assert isinstance(source, HostReplay if t is disk else DeviceReplay)
        torch.manual_seed(0)
        steps = [agent.update(source.sample()) for _ in range(3)]
        losses.append([{k: float(v) for k, v in m.items()} for m in steps])
    assert losses[0] == losses[1]


def test_a_27k_task_trains_from_disk_and_never_caches_its_logs(tmp_path: Path) -> None:
    from noetik.agents.core.runs import offline_transitions, train_run
    from noetik.agents.core.task import DataSource, TaskConfig

    data, cache = tmp_path / "data", tmp_path / "cache"
    synthesize(
        data, SynthConfig.for_release("27k", users=8, videos=400, seed=2, standard_per_user=300)
    )
    task = TaskConfig(data=DataSource(str(data), str(cache)))
    t = offline_transitions(task)
    assert isinstance(t, DiskTransitions) and len(t) > 0
    result = train_run(IQLConfig(seed=0, batch_size=16), task, tmp_path / "run", 3)
    assert result.steps == 3
    assert not list(cache.glob("log_*.parquet"))  # the logs live in the shard store only
    assert len(list((cache / "transitions").iterdir())) == 1  # built once, then reused
    in_memory = TaskConfig(data=DataSource(str(data), str(cache), out_of_core=False))
    assert len(offline_transitions(in_memory)) == len(t)


def test_noetik_train_out_of_core_records_it_in_the_task(data: Path, tmp_path: Path) -> None:
    from noetik.agents.core.task import read_task
    from noetik.cli.main import main

    run, cache = tmp_path / "run", tmp_path / "cache"
    argv = ["train", "bc", "--data", str(data), "--cache", str(cache), "--out", str(run)]
    assert main([*argv, "--steps", "2", "--out-of-core"]) == 0
    assert read_task(run / "task.json").data.out_of_core is True
    assert (cache / "shards" / "manifest.json").is_file()
    assert len(list((cache / "transitions").iterdir())) == 1
