"""The built-in synthetic KuaiRand generator: format, determinism, consistency, calibration."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from noetik.data.schema import (
    LOG_SCHEMA,
    USER_SCHEMA,
    VIDEO_BASIC_SCHEMA,
    VIDEO_STATISTIC_SCHEMA,
    FileKind,
    Release,
    expected_files,
)
from noetik.data.synthetic import SynthConfig, SyntheticWorld, load_config, synthesize
from noetik.errors import ConfigError

REAL_SAMPLE = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "kuairand-pure-sample"
)
STD = "log_standard_4_22_to_5_08_pure.csv"
RANDOM = "log_random_4_22_to_5_08_pure.csv"

#: (target standard, tolerance, target random, tolerance) per signal.
TARGETS: dict[str, tuple[float, float, float, float]] = {
    "is_click": (0.44, 0.04, 0.17, 0.03),
    "long_view": (0.31, 0.04, 0.08, 0.03),
    "is_like": (0.017, 0.006, 0.006, 0.004),
}
SCHEMAS = {
    FileKind.LOG_STANDARD: LOG_SCHEMA,
    FileKind.LOG_RANDOM: LOG_SCHEMA,
    FileKind.USER_FEATURES: USER_SCHEMA,
    FileKind.VIDEO_BASIC: VIDEO_BASIC_SCHEMA,
    FileKind.VIDEO_STATISTIC: VIDEO_STATISTIC_SCHEMA,
}


def _read_logs(directory: Path, kind: FileKind, release: Release) -> pl.DataFrame:
    files = [directory / s.name for s in expected_files(release) if s.kind is kind]
    return pl.concat([pl.read_csv(f, schema=LOG_SCHEMA) for f in files])


@pytest.fixture(scope="module")
def pure_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth-pure")
    synthesize(out, SynthConfig.for_release(Release.PURE, users=400, videos=2_000, seed=0))
    return out


@pytest.fixture(scope="module")
def logs(pure_dir: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    std = _read_logs(pure_dir, FileKind.LOG_STANDARD, Release.PURE)
    rnd = _read_logs(pure_dir, FileKind.LOG_RANDOM, Release.PURE)
    return std, rnd


def test_files_have_official_names_and_headers(pure_dir: Path) -> None:
    specs = expected_files(Release.PURE)
    csvs = sorted(p.name for p in pure_dir.iterdir() if p.suffix == ".csv")
    assert csvs == sorted(s.name for s in specs)
    assert (pure_dir / "noetik_synth.json").is_file()
    for spec in specs:
        header = (pure_dir / spec.name).open().readline().strip().split(",")
        assert header == list(SCHEMAS[spec.kind]), spec.name
        frame = pl.read_csv(pure_dir / spec.name, schema=SCHEMAS[spec.kind])
        assert frame.height > 0, spec.name


def test_27k_release_writes_part_files(tmp_path: Path) -> None:
    config = SynthConfig.for_release(
        "27k", users=40, videos=300, seed=1, standard_per_user=60.0, random_per_user=5.0
    )
    paths = synthesize(tmp_path, config)
    names = [p.name for p in paths]
    assert names == [s.name for s in expected_files(Release.K27)]
    assert "log_standard_4_08_to_4_21_27k_part2.csv" in names
    assert "video_features_statistic_27k_part3.csv" in names
    std = _read_logs(tmp_path, FileKind.LOG_STANDARD, Release.K27)
    assert std["user_id"].n_unique() == 40
    for path in paths:
        assert pl.read_csv(path, infer_schema_length=0).height > 0, path.name


def _digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_deterministic_per_seed(tmp_path: Path) -> None:
    config = SynthConfig.for_release("pure", users=60, videos=300, seed=3)
    synthesize(tmp_path / "a", config)
    synthesize(tmp_path / "b", config)
    synthesize(tmp_path / "c", SynthConfig.for_release("pure", users=60, videos=300, seed=4))
    a, b, c = (_digest(tmp_path / x) for x in "abc")
    assert a == b
    assert all(a[name] != c[name] for name in a if name.endswith(".csv"))


def test_config_round_trip_rebuilds_world(pure_dir: Path) -> None:
    config = load_config(pure_dir)
    assert config == SynthConfig.for_release(Release.PURE, users=400, videos=2_000, seed=0)
    a, b = SyntheticWorld.from_config(config), SyntheticWorld.from_config(config)
    assert np.array_equal(a.theta, b.theta)
    assert np.array_equal(a.log_popularity, b.log_popularity)


def test_bad_arguments_raise_config_error() -> None:
    with pytest.raises(ConfigError):
        SynthConfig.for_release("2k")
    with pytest.raises(ConfigError):
        SynthConfig(n_users=0)
    with pytest.raises(ConfigError):
        SynthConfig(n_videos=10, pool_size=20)
    with pytest.raises(ConfigError):
        SynthConfig.from_dict({"n_users": 5, "bogus": 1})


def test_signals_follow_official_definitions(
    logs: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    for frame, is_rand in zip(logs, (0, 1), strict=True):
        known = frame.filter(pl.col("duration_ms") > 0)
        play, dur = known["play_time_ms"].to_numpy(), known["duration_ms"].to_numpy()
        long_view = np.where(dur <= 18_000, play >= dur, play >= 18_000)
        click = np.where(dur <= 7_000, play >= dur, play > 7_000)
        assert np.array_equal(known["long_view"].to_numpy(), long_view.astype(np.int8))
        assert np.array_equal(known["is_click"].to_numpy(), click.astype(np.int8))
        assert set(frame["is_rand"].unique()) == {is_rand}
        assert frame["tab"].is_between(0, 14).all()
        binary = ["is_like", "is_follow", "is_comment", "is_forward", "is_hate", "is_profile_enter"]
        assert frame.select(pl.col(binary).is_in([0, 1]).all()).row(0) == (True,) * 6
        # stay times only where the corresponding action happened
        assert frame.filter(pl.col("profile_stay_time") > 0)["is_profile_enter"].min() in (1, None)
        assert frame.filter(pl.col("is_comment") == 1)["comment_stay_time"].min() in (None,) or (
            frame.filter(pl.col("is_comment") == 1)["comment_stay_time"].min() > 0  # type: ignore[operator]
        )


def test_dates_and_times_are_consistent(pure_dir: Path) -> None:
    ranges = {
        "log_standard_4_08_to_4_21_pure.csv": (20220408, 20220421),
        "log_standard_4_22_to_5_08_pure.csv": (20220422, 20220508),
        "log_random_4_22_to_5_08_pure.csv": (20220422, 20220508),
    }
    for name, (lo, hi) in ranges.items():
        frame = pl.read_csv(pure_dir / name, schema=LOG_SCHEMA)
        assert frame["date"].is_between(lo, hi).all(), name
        assert (frame["hourmin"] % 100 == 0).all() and frame["hourmin"].is_between(0, 2300).all()
        # date/hourmin name the UTC+8 hour in which the row was recorded: the hour of time_ms
        # or the next one (a logging delay of under an hour, as in the real files).
        hour_of_time = (frame["time_ms"].to_numpy() + 8 * 3_600_000) // 3_600_000
        days = np.array(
            [
                np.datetime64(f"{d // 10000:04d}-{d // 100 % 100:02d}-{d % 100:02d}")
                for d in frame["date"].unique().to_list()
            ]
        )
        day_of = dict(zip(frame["date"].unique().to_list(), days.astype(np.int64), strict=True))
        bucket = np.array([day_of[d] for d in frame["date"].to_list()]) * 24 + (
            frame["hourmin"].to_numpy() // 100
        )
        delta = pl.Series(bucket - hour_of_time)
        assert delta.is_in([0, 1]).all(), name
        assert delta.mean() < 0.4  # type: ignore[operator]
        assert frame.select(pl.col("time_ms").diff().over("user_id").min()).item() >= 0


def _rates(frame: pl.DataFrame) -> dict[str, float]:
    out = {c: float(frame[c].mean()) for c in TARGETS}  # type: ignore[arg-type]
    out["dur0"] = float((frame["duration_ms"] == 0).mean())  # type: ignore[arg-type]
    out["median_duration"] = float(frame["duration_ms"].median())  # type: ignore[arg-type]
    return out


def test_calibrated_to_targets(logs: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    std, rnd = (_rates(f) for f in logs)
    for signal, (t_std, tol_std, t_rnd, tol_rnd) in TARGETS.items():
        assert abs(std[signal] - t_std) <= tol_std, (signal, std[signal])
        assert abs(rnd[signal] - t_rnd) <= tol_rnd, (signal, rnd[signal])
    for rates in (std, rnd):
        assert 0.005 <= rates["dur0"] <= 0.05
    assert abs(std["median_duration"] - 70_000) <= 0.25 * 70_000


def _tab_share(frame: pl.DataFrame) -> np.ndarray:
    counts = np.bincount(frame["tab"].to_numpy(), minlength=15)[:15].astype(np.float64)
    return counts / counts.sum()


def test_close_to_real_sample(logs: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    if not (REAL_SAMPLE / STD).is_file():
        pytest.skip("real KuaiRand sample not available")
    real = [pl.read_csv(REAL_SAMPLE / n, schema=LOG_SCHEMA) for n in (STD, RANDOM)]
    for name, synth_frame, real_frame in zip(("standard", "random"), logs, real, strict=True):
        syn, ref = _rates(synth_frame), _rates(real_frame)
        print(f"\n{name:8s} {'signal':16s} {'synthetic':>10s} {'real':>10s}")
        for key in syn:
            print(f"{name:8s} {key:16s} {syn[key]:10.4f} {ref[key]:10.4f}")
        for signal, (_, tol_std, _, tol_rnd) in TARGETS.items():
            tol = tol_std if name == "standard" else tol_rnd
            assert abs(syn[signal] - ref[signal]) <= tol, (name, signal, syn[signal], ref[signal])
        tvd = 0.5 * np.abs(_tab_share(synth_frame) - _tab_share(real_frame)).sum()
        print(f"{name:8s} tab TVD {tvd:.4f}")
        assert tvd < 0.15


def _gini(counts: np.ndarray) -> float:
    x = np.sort(counts.astype(np.float64))
    n = x.size
    return float((2 * np.arange(1, n + 1) - n - 1).dot(x) / (n * x.sum()))


def test_logging_policy_is_biased(pure_dir: Path, logs: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    std, rnd = logs
    pool = load_config(pure_dir).pool_size
    g_std = _gini(np.bincount(std["video_id"].to_numpy(), minlength=pool))
    g_rnd = _gini(np.bincount(rnd["video_id"].to_numpy(), minlength=pool))
    assert g_std > g_rnd + 0.2
    assert rnd["video_id"].max() < pool  # type: ignore[operator]
    world = SyntheticWorld.from_config(load_config(pure_dir))

    def true_click(frame: pl.DataFrame) -> float:
        cols = [frame[c].to_numpy().astype(np.int64) for c in ("user_id", "video_id", "tab")]
        hour = frame["hourmin"].to_numpy().astype(np.int64) // 100
        return float(world.click_probability(cols[0], cols[1], hour, cols[2]).mean())

    p_std, p_rnd = true_click(std), true_click(rnd)
    assert p_std > p_rnd + 0.1
    # the true model predicts the observed click rates (it is the generating model)
    assert abs(p_std - float(std["is_click"].mean())) < 0.02  # type: ignore[arg-type]
    assert abs(p_rnd - float(rnd["is_click"].mean())) < 0.02  # type: ignore[arg-type]


def test_user_and_video_features_are_realistic(pure_dir: Path) -> None:
    users = pl.read_csv(pure_dir / "user_features_pure.csv", schema=USER_SCHEMA)
    assert users["user_id"].to_list() == list(range(400))
    assert 0.65 < float((users["is_live_streamer"] == -124).mean()) < 0.88  # type: ignore[arg-type]
    assert {"full_active", "high_active"} <= set(users["user_active_degree"].to_list())
    follow = users.filter(pl.col("follow_user_num") > 500)["follow_user_num_range"].unique()
    assert follow.to_list() == ["500+"]
    zero = users.filter(pl.col("friend_user_num") == 0)["friend_user_num_range"].unique()
    assert zero.to_list() in ([], ["0"])
    videos = pl.read_csv(pure_dir / "video_features_basic_pure.csv", schema=VIDEO_BASIC_SCHEMA)
    assert 0.0 < videos["video_duration"].null_count() / videos.height < 0.08
    multi = videos["tag"].drop_nulls().str.contains(",").mean()
    assert 0.15 < multi < 0.3  # type: ignore[operator]
    text = (pure_dir / "video_features_basic_pure.csv").read_text().splitlines()[1]
    assert text.split(",")[6].endswith(".0")  # durations written as floats, like "87433.0"
