"""The KuaiRand loader: release detection, partial directories, validation, cache."""

from __future__ import annotations

import csv
from pathlib import Path

import polars as pl
import pytest

from noetik.data import FileKind, Release, dataset_info, discover, expected_files, load_kuairand
from noetik.data.schema import parse_file_name
from tests.tiny import LOG_ROWS, tiny_log


def test_expected_files_per_release() -> None:
    pure = [s.name for s in expected_files(Release.PURE)]
    assert pure == [
        "log_standard_4_08_to_4_21_pure.csv",
        "log_standard_4_22_to_5_08_pure.csv",
        "log_random_4_22_to_5_08_pure.csv",
        "user_features_pure.csv",
        "video_features_basic_pure.csv",
        "video_features_statistic_pure.csv",
    ]
    assert [s.name.replace("_1k", "_pure") for s in expected_files(Release.K1)] == pure
    k27 = [s.name for s in expected_files(Release.K27)]
    assert "log_standard_4_08_to_4_21_27k_part2.csv" in k27
    assert "log_standard_4_22_to_5_08_27k_part1.csv" in k27
    assert "video_features_statistic_27k_part3.csv" in k27
    assert "log_random_4_22_to_5_08_27k.csv" in k27
    assert "user_features_27k.csv" in k27
    assert len(k27) == 10


@pytest.mark.parametrize(
    ("name", "kind", "release", "part"),
    [
        ("log_random_4_22_to_5_08_1k.csv", FileKind.LOG_RANDOM, Release.K1, 0),
        ("video_features_statistic_27k_part3.csv", FileKind.VIDEO_STATISTIC, Release.K27, 3),
        ("user_features_pure.csv", FileKind.USER_FEATURES, Release.PURE, 0),
    ],
)
def test_parse_file_name(name: str, kind: FileKind, release: Release, part: int) -> None:
    spec = parse_file_name(name)
    assert spec is not None
    assert (spec.kind, spec.release, spec.part) == (kind, release, part)


@pytest.mark.parametrize(
    "name",
    [
        "log_random_4_22_to_5_08_2k.csv",
        "log_random_4_22_to_5_08_pure_part1.csv",  # pure files are never split
        "log_standard_4_08_to_4_21_27k.csv",  # 27K standard logs are always split
        "user_features_pure.csv.bak",
        "random.csv",
    ],
)
def test_unofficial_names_are_rejected(name: str) -> None:
    assert parse_file_name(name) is None


def test_real_sample_true_figures(real_sample: Path, cache_dir: Path) -> None:
    ds = load_kuairand(real_sample, cache_dir=cache_dir)
    assert ds.release is Release.PURE
    rows = ds.prepare()
    assert rows["log_standard_4_22_to_5_08_pure.csv"] == 228_329
    assert rows["log_standard_4_08_to_4_21_pure.csv"] == 1_000
    assert rows["log_random_4_22_to_5_08_pure.csv"] == 22_763
    assert rows["user_features_pure.csv"] == 27_285
    assert rows["video_features_basic_pure.csv"] == 7_583
    info = dataset_info(ds)
    assert info.missing == []
    assert info.n_users == 27_285
    random_log = info.logs["log_random"]
    assert random_log.users == 500
    assert random_log.rates["is_click"] == pytest.approx(4_061 / 22_763)
    # duration_ms == 0: 3,568 + 19 standard rows and 690 random rows (counted with awk)
    assert info.logs["log_standard"].duration_zero_share == pytest.approx(3_587 / 229_329)
    assert random_log.duration_zero_share == pytest.approx(690 / 22_763)
    assert info.logs["log_standard"].rates["is_click"] == pytest.approx(101_268 / 229_329)


def test_real_sample_watch_ratio_stays_finite(real_sample: Path, cache_dir: Path) -> None:
    ds = load_kuairand(real_sample, cache_dir=cache_dir)
    log = ds.interactions(FileKind.LOG_STANDARD).collect()
    assert log.height == 229_329
    ratio = log["watch_ratio_raw"].drop_nulls()
    assert ratio.is_finite().all()
    assert log["watch_ratio"].drop_nulls().is_between(0.0, 1.0).all()
    # Independent count: duration 0 rows whose video has no positive video_duration.
    with (real_sample / "video_features_basic_pure.csv").open() as handle:
        known = {
            int(r["video_id"])
            for r in csv.DictReader(handle)
            if float(r["video_duration"] or 0) > 0
        }
    unknown = sum(
        1
        for path in sorted(real_sample.glob("log_standard_*.csv"))
        for r in csv.DictReader(path.open())
        if r["duration_ms"] == "0" and int(r["video_id"]) not in known
    )
    assert log["watch_ratio"].null_count() == unknown
    # In the real files every zero-duration video also lacks video_duration: all stay unknown.
    assert unknown == 3_587
    sorted_keys = log.select("user_id", "time_ms")
    assert sorted_keys.equals(sorted_keys.sort("user_id", "time_ms"))


def test_directory_with_only_a_random_log(tmp_path: Path, cache_dir: Path) -> None:
    tiny_log(rows=7, is_rand=1).write_csv(tmp_path / "log_random_4_22_to_5_08_1k.csv")
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    files = discover(tmp_path)
    assert files.release is Release.K1
    assert [s.name for s in files.present] == ["log_random_4_22_to_5_08_1k.csv"]
    assert len(files.missing) == 5
    assert files.ignored == ("notes.csv",)
    info = dataset_info(load_kuairand(tmp_path, cache_dir=cache_dir))
    assert info.rows == {"log_random_4_22_to_5_08_1k.csv": 7}
    assert info.logs["log_random"].rows == 7
    assert info.logs["log_random"].users == 4
    assert info.logs["log_random"].rates["is_click"] == pytest.approx(3 / 7)
    assert "log_standard" not in info.logs
    assert info.n_users is None


def test_tiny_release_tables_are_typed(tiny_pure: Path, cache_dir: Path) -> None:
    ds = load_kuairand(tiny_pure, cache_dir=cache_dir)
    log = ds.table(FileKind.LOG_STANDARD)
    assert log.height == 2 * LOG_ROWS  # two periods
    assert log.schema["is_click"] == pl.Int8
    assert log.schema["time_ms"] == pl.Int64
    assert ds.table(FileKind.VIDEO_BASIC)["video_duration"].null_count() == 1


def test_cache_is_reused_and_refreshed(tiny_pure: Path, cache_dir: Path) -> None:
    ds = load_kuairand(tiny_pure, cache_dir=cache_dir)
    ds.prepare()
    spec = next(s for s in ds.files.present if s.kind is FileKind.LOG_RANDOM)
    parquet = ds.cache.parquet_path(spec)
    first = parquet.stat().st_mtime_ns
    ds.prepare()
    assert parquet.stat().st_mtime_ns == first  # reused, not rewritten
    tiny_log(rows=3, is_rand=1).write_csv(tiny_pure / spec.name)
    assert load_kuairand(tiny_pure, cache_dir=cache_dir).prepare()[spec.name] == 3


def test_interrupted_cache_write_leaves_nothing(
    tiny_pure: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_write(self: pl.DataFrame, path: Path, **_: object) -> None:
        Path(path).write_bytes(b"PAR1 partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", broken_write)
    ds = load_kuairand(tiny_pure, cache_dir=cache_dir)
    with pytest.raises(Exception, match="No space left"):
        ds.prepare()
    assert list(cache_dir.glob("*")) == []
