"""The streaming converter and the user-sharded log store, on tiny synthetic KuaiRand-27K data.

Each shard must hold exactly the rows, in exactly the order, that the in-memory sorted log
gives for its users; part files (cut by user, or by row count in the middle of a user as in
the real release) read as one log; a missing part, a crash, a changed source file and a bad
value deep in a file are each handled as documented.
"""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from noetik.data.cache import ParquetCache
from noetik.data.dataset import KuaiRandDataset, load_kuairand
from noetik.data.reader import read_table
from noetik.data.schema import FileKind, parse_file_name
from noetik.data.store import ShardStore, StoreConfig, auto_shards, plan_store, prepare_store
from noetik.data.stream import convert_csv, iter_csv_batches
from noetik.data.synthetic import SynthConfig, synthesize
from noetik.errors import DataError, OutOfMemoryPlan
from noetik.utils.shards import LocalShards
from tests.conftest import REPO

#: Small batches and buffers, so that every file spans several batches and flushes.
SMALL = StoreConfig(block_bytes=16_384, buffer_rows=700)
SPLIT, MERGE = "Splitting log files (MB)", "Writing shards"
PERIODS = ("4_08_to_4_21", "4_22_to_5_08")


@pytest.fixture(scope="module")
def data27k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny synthetic 27K release (part files cut by user): 24 users, ~5,000 log rows."""
    out = tmp_path_factory.mktemp("k27") / "data"
    config = SynthConfig.for_release(
        "27k", users=24, videos=60, seed=4, standard_per_user=200, random_per_user=15
    )
    synthesize(out, config)
    return out


@pytest.fixture(scope="module")
def recut27k(data27k: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same release with each standard period re-cut by ROW COUNT in the middle of a user
    (as the real parts are), the first row of part 2 tied in time with the last of part 1."""
    out = tmp_path_factory.mktemp("recut") / "data"
    shutil.copytree(data27k, out)
    for period in PERIODS:
        names = [out / f"log_standard_{period}_27k_part{i}.csv" for i in (1, 2)]
        log = pl.concat([pl.read_csv(p, schema=None) for p in names])
        cut = log.height // 2
        while log["user_id"][cut - 1] != log["user_id"][cut]:
            cut += 1  # a cut inside one user's rows
        time_ms = log["time_ms"].scatter(cut, log["time_ms"][cut - 1])
        log = log.with_columns(time_ms)
        log.slice(0, cut).write_csv(names[0])
        log.slice(cut).write_csv(names[1])
    return out


def _sorted_log(ds: KuaiRandDataset, kind: FileKind) -> pl.DataFrame:
    return ds.scan(kind).sort(["user_id", "time_ms"], maintain_order=True).collect()


def _assert_store_equals_log(store: ShardStore, ds: KuaiRandDataset) -> None:
    """Every shard equals its users' rows of the in-memory sorted log (exact frame equality)."""
    assert store.kinds == (FileKind.LOG_STANDARD, FileKind.LOG_RANDOM)
    n = store.n_shards
    for kind in store.kinds:
        full = _sorted_log(ds, kind)
        schema = pl.read_parquet_schema(ds.cache.parquet_path(ds.files.files_of(kind)[0][0]))
        for k in range(n):
            shard = store.scan_shard(kind, k).collect()
            assert shard.schema == schema
            assert shard.equals(full.filter(pl.col("user_id") % n == k)), (kind, k)
        assert store.shard_rows(kind) == [
            full.filter(pl.col("user_id") % n == k).height for k in range(n)
        ]


@dataclass
class Recorder:
    """A local engine that records the tasks it runs and can crash after ``crash_after``."""

    crash_after: int | None = None
    calls: list[tuple[str, Any]] = field(default_factory=list)
    workers: int = 1

    def map(
        self,
        fn: Callable[[Any, Any], Any],
        shared: Any,
        shards: Sequence[Any],
        *,
        sizes: Sequence[int],
        description: str,
        progress: Any = None,
    ) -> list[Any]:
        out = []
        for shard in shards:
            if self.crash_after is not None and len(self.calls) >= self.crash_after:
                raise RuntimeError("simulated crash")
            out.append(fn(shared, shard))
            self.calls.append((description, getattr(shard, "k", getattr(shard, "name", None))))
        return out

    def ran(self, description: str) -> list[Any]:
        return [what for desc, what in self.calls if desc == description]


@pytest.mark.parametrize(
    ("source", "cached"), [("data27k", False), ("recut27k", False), ("recut27k", True)]
)
def test_shards_equal_the_sorted_log(
    source: str, cached: bool, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    data = request.getfixturevalue(source)
    ds = load_kuairand(data, tmp_path / "cache")
    if cached:  # stage (a) reads the ordinary cache's Parquet instead of the CSV
        ds.prepare()
    assert all((s.cached is not None) == cached for s in plan_store(ds, SMALL).sources)
    store = prepare_store(ds, n_shards=4, config=SMALL)
    assert store.n_shards == 4
    _assert_store_equals_log(store, ds)
    # four standard parts read as one log; the manifest says where every row came from
    assert len(store.manifest["sources"]) == 5
    assert sum(store.shard_rows(FileKind.LOG_STANDARD)) == sum(
        n for name, n in store.manifest["source_rows"].items() if "standard" in name
    )
    assert store.manifest["complete"] and not store.layout.pieces.exists()
    assert ShardStore.open(ds).manifest == store.manifest
    with pytest.raises(DataError, match="no shard 4: shards are 0 to 3"):
        store.shard_path(FileKind.LOG_RANDOM, 4)


def test_ties_across_a_part_cut_keep_file_order(recut27k: Path, tmp_path: Path) -> None:
    """The re-cut parts have rows of one user, at one time, on both sides of the cut."""
    ds = load_kuairand(recut27k, tmp_path / "cache")
    store = prepare_store(ds, n_shards=3, config=SMALL)
    part1 = pl.read_csv(recut27k / "log_standard_4_08_to_4_21_27k_part1.csv")
    part2 = pl.read_csv(recut27k / "log_standard_4_08_to_4_21_27k_part2.csv")
    last, first = part1.row(-1, named=True), part2.row(0, named=True)
    assert (last["user_id"], last["time_ms"]) == (first["user_id"], first["time_ms"])
    k = last["user_id"] % 3
    tied = store.scan_shard(FileKind.LOG_STANDARD, k).filter(
        (pl.col("user_id") == last["user_id"]) & (pl.col("time_ms") == last["time_ms"])
    )
    assert tied.collect().rows(named=True)[:2] == [last, first]


def test_number_of_shards_follows_the_standard_log_bytes(data27k: Path, tmp_path: Path) -> None:
    ds = load_kuairand(data27k, tmp_path / "cache")
    config = StoreConfig(target_shard_rows=1_000)
    standard = sum(p.stat().st_size for _, p in ds.files.files_of(FileKind.LOG_STANDARD))
    assert plan_store(ds, config).n_shards == auto_shards(standard, config) > 3
    assert auto_shards(0, config) == 1
    assert auto_shards(322_278_385 * 72, StoreConfig()) == 108  # KuaiRand-27K
    assert plan_store(ds, config, n_shards=2).n_shards == 2


def test_a_missing_part_is_one_line_naming_it(data27k: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(data27k, data)
    (data / "log_standard_4_22_to_5_08_27k_part2.csv").unlink()
    ds = load_kuairand(data, tmp_path / "cache")
    with pytest.raises(DataError) as info:
        prepare_store(ds)
    message = str(info.value)
    assert "\n" not in message
    assert "missing part file(s) log_standard_4_22_to_5_08_27k_part2.csv" in message


def test_an_interrupted_preparation_resumes(data27k: Path, tmp_path: Path) -> None:
    ds = load_kuairand(data27k, tmp_path / "cache")
    crashing = Recorder(crash_after=5 + 2)  # every split, then two shards
    with pytest.raises(RuntimeError, match="simulated crash"):
        prepare_store(ds, crashing, n_shards=4, config=SMALL)
    assert crashing.ran(MERGE) == [0, 1]
    layout = plan_store(ds, SMALL, 4).layout
    assert not layout.manifest.exists()
    with pytest.raises(DataError, match="no complete shard store"):
        ShardStore.open(ds)
    # the rerun splits nothing again and writes only the two shards that were missing
    resumed = Recorder()
    store = prepare_store(ds, resumed, n_shards=4, config=SMALL)
    assert resumed.ran(SPLIT) == [] and resumed.ran(MERGE) == [2, 3]
    _assert_store_equals_log(store, ds)
    # a lost shard file, a temporary file and a stale manifest: only that shard is redone
    kept = layout.shard(FileKind.LOG_RANDOM, 0).stat().st_mtime_ns
    layout.shard(FileKind.LOG_STANDARD, 1).unlink()
    (layout.root / "log_standard" / ".shard-00003.parquet.dead.tmp").write_bytes(b"partial")
    layout.manifest.write_text('{"complete": false}')
    again = Recorder()
    store = prepare_store(ds, again, n_shards=4, config=SMALL)
    assert again.ran(MERGE) == [1]
    assert len(again.ran(SPLIT)) == 5  # its pieces were removed: the sources are split again
    assert layout.shard(FileKind.LOG_RANDOM, 0).stat().st_mtime_ns == kept
    assert not list((layout.root / "log_standard").glob(".*.tmp"))
    _assert_store_equals_log(store, ds)
    unchanged = Recorder()
    assert prepare_store(ds, unchanged, n_shards=4).manifest == store.manifest
    assert unchanged.calls == []


def test_a_changed_source_rebuilds_the_store(data27k: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(data27k, data)
    ds = load_kuairand(data, tmp_path / "cache")
    before = prepare_store(ds, n_shards=3, config=SMALL)
    random_log = data / "log_random_4_22_to_5_08_27k.csv"
    pl.read_csv(random_log).slice(3).write_csv(random_log)
    with pytest.raises(DataError, match="out of date"):
        ShardStore.open(ds)
    engine = Recorder()
    after = prepare_store(ds, engine, n_shards=3, config=SMALL)
    assert len(engine.ran(SPLIT)) == 5 and engine.ran(MERGE) == [0, 1, 2]
    assert after.manifest["key"] != before.manifest["key"]
    _assert_store_equals_log(after, ds)
    # fewer shards: the store is rebuilt and the shards beyond the new count are gone
    smaller = prepare_store(ds, n_shards=2, config=SMALL)
    assert sorted(p.name for p in (smaller.layout.root / "log_random").iterdir()) == [
        "shard-00000.parquet",
        "shard-00001.parquet",
    ]
    _assert_store_equals_log(smaller, ds)


def test_a_stage_that_does_not_fit_in_memory_stops_first(
    data27k: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ds = load_kuairand(data27k, tmp_path / "cache")
    # about 1 MB: the split's 16 MB blocks do not fit, the shards of 1/8 of the log would
    monkeypatch.setenv("NOETIK_MEMORY_LIMIT_GB", "0.001")
    with pytest.raises(OutOfMemoryPlan, match=r"splitting log files: needs about .* lower it"):
        prepare_store(ds, LocalShards(), n_shards=8)
    # about 0.1 MB: one shard of the whole log does not fit, even with tiny split blocks
    monkeypatch.setenv("NOETIK_MEMORY_LIMIT_GB", "0.0001")
    with pytest.raises(OutOfMemoryPlan, match=r"writing shards: .* a larger --n-shards"):
        prepare_store(ds, LocalShards(), n_shards=1, config=StoreConfig(16_384, 1_024, 100))
    assert not list(ds.cache.directory.rglob("*.parquet"))  # stopped before any work


def test_streaming_conversion_equals_the_in_memory_path(data27k: Path, tmp_path: Path) -> None:
    for csv in sorted(data27k.glob("*.csv")):
        spec = parse_file_name(csv.name)
        assert spec is not None
        out = tmp_path / f"{spec.stem}.parquet"
        rows = convert_csv(csv, spec.kind, out, block_bytes=4_096)
        streamed, in_memory = pl.read_parquet(out), read_table(csv, spec.kind)
        assert rows == in_memory.height
        assert streamed.schema == in_memory.schema
        assert streamed.equals(in_memory, null_equal=True), csv.name
    # the cache streams files above its threshold: same entry as in memory
    spec = parse_file_name("video_features_basic_27k.csv")
    assert spec is not None
    source = data27k / spec.name
    streamed_cache, memory_cache = ParquetCache(tmp_path / "s", 0), ParquetCache(tmp_path / "m")
    assert streamed_cache.ensure(spec, source)["rows"] == memory_cache.ensure(spec, source)["rows"]
    assert streamed_cache.scan(spec).collect().equals(memory_cache.scan(spec).collect())


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        (3, "12:30", "column 'hourmin': value '12:30' is not a valid integer"),
        (1, "-7", "column 'video_id': value -7 is negative"),
        (6, "2", "column 'is_like': value 2 is not 0 or 1"),
        (4, "", "column 'time_ms': missing value"),
        (18, None, "column 'tab': missing value"),  # a short row
    ],
)
def test_a_bad_value_deep_in_a_file_names_its_line(
    data27k: Path, tmp_path: Path, column: int, value: str | None, problem: str
) -> None:
    lines = (data27k / "log_standard_4_08_to_4_21_27k_part1.csv").read_text().splitlines()
    line = len(lines) - 5  # 1-based line number, far beyond the first batch
    fields = lines[line - 1].split(",")
    if value is None:
        fields.pop()
    else:
        fields[column] = value
    lines[line - 1] = ",".join(fields)
    bad = tmp_path / "log_standard_4_08_to_4_21_27k_part1.csv"
    bad.write_text("\n".join(lines) + "\n")
    expected = f"{bad}, line {line}, {problem}"
    with pytest.raises(DataError) as streamed:
        convert_csv(bad, FileKind.LOG_STANDARD, tmp_path / "out.parquet", block_bytes=4_096)
    with pytest.raises(DataError) as in_memory:
        read_table(bad, FileKind.LOG_STANDARD)
    assert str(streamed.value).startswith(expected)
    assert str(streamed.value) == str(in_memory.value)
    # it travels from a Ray worker to the driver as a pickle
    assert str(pickle.loads(pickle.dumps(streamed.value))) == str(streamed.value)
    assert not (tmp_path / "out.parquet").exists()
    assert not list(tmp_path.glob(".*.tmp"))
    batches = iter_csv_batches(bad, FileKind.LOG_STANDARD, block_bytes=4_096)
    assert next(batches).height < line - 2  # the fault is beyond the first batch


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env |= {"PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "noetik", "data", "prepare", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_prepare_shards_through_the_cli(data27k: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    cache = tmp_path / "cache"
    done = _cli([str(data27k), "--cache", str(cache), "--shards", "--n-shards", "3"], elsewhere)
    assert done.returncode == 0, done.stderr[-2_000:]
    assert "shard store: 3 shards" in done.stdout
    # 27K logs live in the store only; the feature tables are in the ordinary cache
    assert not list(cache.glob("log_*.parquet"))
    assert len(list(cache.glob("video_features_*.parquet"))) == 4
    ds = load_kuairand(data27k, cache)
    _assert_store_equals_log(ShardStore.open(ds), ds)
    partial = tmp_path / "partial"
    shutil.copytree(data27k, partial)
    (partial / "log_standard_4_08_to_4_21_27k_part1.csv").unlink()
    for args in (
        [str(tmp_path / "nowhere"), "--shards"],
        [str(data27k), "--cache", str(cache), "--n-shards", "0"],
        [str(partial), "--cache", str(tmp_path / "partial-cache")],
    ):
        failed = _cli(args, elsewhere)
        assert failed.returncode == 2, failed.stderr
        assert failed.stderr.startswith("error: ") and failed.stderr.count("\n") == 1
        assert "Traceback" not in failed.stderr
