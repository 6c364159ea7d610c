"""The synthetic generator at real KuaiRand-1K/27K scale: grouped policy, coverage, defaults."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from noetik.cli.main import main
from noetik.data.schema import FileKind, Release, expected_files
from noetik.data.synthetic import SynthConfig, SyntheticWorld, synthesize
from noetik.data.synthetic.config import RELEASE_SIZES
from noetik.data.synthetic.features import _mean_rates, _mean_rates_grouped, rate_sample_size
from noetik.data.synthetic.logs import Coverage, GroupedPolicy, policy_videos
from noetik.data.synthetic.writer import user_blocks


def _small_1k(seed: int = 0) -> SynthConfig:
    """A 1K-like config with the scale features on: 20 users, 20,000 videos, ~40K rows."""
    return SynthConfig.for_release(
        "1k", users=20, videos=20_000, seed=seed, standard_per_user=2_000.0
    )


def _standard_video_counts(directory: Path, release: Release, n_videos: int) -> np.ndarray:
    files = [directory / s.name for s in expected_files(release) if s.kind is FileKind.LOG_STANDARD]
    videos = pl.concat([pl.read_csv(f, columns=["video_id"]) for f in files])["video_id"]
    return np.bincount(videos.to_numpy(), minlength=n_videos)


def _digest(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def test_for_release_defaults_are_the_real_sizes() -> None:
    k1 = SynthConfig.for_release("1k")
    assert (k1.n_users, k1.n_videos, k1.pool_size) == (1_000, 4_369_953, 7_388)
    assert k1.n_users * k1.standard_per_user == pytest.approx(11_713_045)
    assert k1.n_users * k1.random_per_user == pytest.approx(43_028)
    k27 = SynthConfig.for_release("27k")
    assert (k27.n_users, k27.n_videos, k27.pool_size) == (27_285, 32_038_725, 7_583)
    assert k27.n_users * k27.standard_per_user == pytest.approx(322_278_385)
    assert k27.n_users * k27.random_per_user == pytest.approx(1_186_059, rel=1e-4)
    for big in (k1, k27):
        assert big.grouped_policy and big.catalogue_coverage
    pure = SynthConfig.for_release("pure")
    assert (pure.n_users, pure.n_videos, pure.pool_size) == (27_285, 7_583, 7_583)
    # Pure keeps the dense policy and no coverage: its files are unchanged.
    assert not pure.grouped_policy and not pure.catalogue_coverage
    assert RELEASE_SIZES[Release.K1].videos == 4_369_953
    # small catalogues cap the pool
    assert SynthConfig.for_release("1k", videos=500).pool_size == 500


def test_nothing_scales_with_users_times_videos() -> None:
    k27 = SynthConfig.for_release("27k")
    blocks = user_blocks(k27, parts=2)
    # blocks are bounded by rows, not by the catalogue (the dense policy would need 1 user each)
    assert len(blocks) < 400
    assert max(hi - lo for lo, hi in blocks) * k27.n_topics**2 <= 6_000_000
    assert rate_sample_size(k27.n_users, k27.n_videos) == 16
    assert rate_sample_size(27_285, 7_583) == 128


def test_grouped_policy_is_the_exact_softmax() -> None:
    """Known answer: the factorised policy's probabilities equal the dense softmax's."""
    config = SynthConfig(n_users=3, n_videos=60, pool_size=10, n_topics=4, seed=1)
    world = SyntheticWorld.from_config(config)
    users = np.arange(3, dtype=np.int64)
    logits = world.policy_logits(users)
    dense = np.exp(logits - logits.max(axis=1, keepdims=True))
    dense /= dense.sum(axis=1, keepdims=True)
    grouped = GroupedPolicy.build(world)
    # P(v | G) from the within-group CDF, P(G | u) from the group logits
    frac = grouped.cdf - grouped.group[grouped.order]  # within-group CDF, in (0, 1]
    first = np.r_[True, np.diff(grouped.group[grouped.order]) != 0]
    within = np.where(first, frac, np.diff(frac, prepend=0.0))
    p_video = np.empty(world.n_videos)
    p_video[grouped.order] = within
    aff = world.topic_affinity(users[:, None], grouped.member[None, :])
    group_logits = config.params.policy_affinity * aff + grouped.log_mass[None, :]
    p_group = np.exp(group_logits - group_logits.max(axis=1, keepdims=True))
    p_group /= p_group.sum(axis=1, keepdims=True)
    factorised = p_group[:, grouped.group] * p_video[None, :]
    np.testing.assert_allclose(factorised, dense, rtol=1e-9, atol=1e-15)
    # ... and its draws follow it as closely as the dense sampler's
    n = 100_000
    counts = np.full(3, n)
    draws = grouped.sample(world, users, counts, np.random.default_rng(0)).reshape(3, n)
    reference = policy_videos(world, users, counts, np.random.default_rng(1)).reshape(3, n)
    for i in range(3):
        tvd = 0.5 * np.abs(np.bincount(draws[i], minlength=60) / n - dense[i]).sum()
        tvd_dense = 0.5 * np.abs(np.bincount(reference[i], minlength=60) / n - dense[i]).sum()
        assert tvd < 0.012
        assert tvd < 2.5 * tvd_dense + 0.002


def test_coverage_places_each_video_once() -> None:
    world = SyntheticWorld.from_config(_small_1k())
    coverage = Coverage.build(world)
    assert coverage.per_user.sum() == world.n_videos
    assert np.array_equal(np.sort(coverage.videos), np.arange(world.n_videos))
    users = np.arange(5, 12, dtype=np.int64)
    counts = coverage.per_user[users] + 7
    policy = np.full(int(counts.sum() - coverage.per_user[users].sum()), -1, dtype=np.int64)
    rows = coverage.place(users, counts, policy, np.random.default_rng(0))
    lo, hi = coverage.start[5], coverage.start[12]
    assert sorted(rows[rows >= 0].tolist()) == sorted(coverage.videos[lo:hi].tolist())
    row_user = np.repeat(users, counts)
    assert np.array_equal(np.bincount(row_user[rows == -1], minlength=12)[5:], np.full(7, 7))


def test_every_video_appears_and_files_are_deterministic(tmp_path: Path) -> None:
    config = _small_1k(seed=2)
    synthesize(tmp_path / "a", config)
    synthesize(tmp_path / "b", config)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    counts = _standard_video_counts(tmp_path / "a", Release.K1, config.n_videos)
    assert counts.min() >= 1
    # coverage rows are on top of the policy's heavy head
    assert counts.max() > 20
    assert 0.3 < float(np.mean(counts == 1)) < 0.9
    std_rows = int(counts.sum())
    assert abs(std_rows - config.n_users * config.standard_per_user) < 0.3 * std_rows
    # without coverage (same grouped policy) most of the catalogue is never shown
    bare = replace(config, catalogue_coverage=False)
    synthesize(tmp_path / "c", bare)
    assert np.mean(_standard_video_counts(tmp_path / "c", Release.K1, config.n_videos) == 0) > 0.3


def test_grouped_mean_rates_equal_the_exact_ones() -> None:
    world = SyntheticWorld.from_config(_small_1k())
    users = np.arange(0, 20, 3, dtype=np.int64)
    for hour, tab in ((20, 1), (3, 0), (12, 11)):
        exact = _mean_rates(world, users, hour, tab)
        fast = _mean_rates_grouped(world, users, hour, tab)
        np.testing.assert_allclose(fast, exact, rtol=1e-4, atol=1e-6)


def test_cli_synth_defaults_to_the_release_size(tmp_path: Path) -> None:
    out = tmp_path / "k1"
    argv = ["data", "synth", str(out), "--release", "1k", "--users", "3", "--videos", "5000"]
    assert main(argv) == 0
    config = json.loads((out / "noetik_synth.json").read_text())
    assert (config["n_users"], config["n_videos"], config["pool_size"]) == (3, 5_000, 5_000)
    assert config["grouped_policy"] and config["catalogue_coverage"]
    assert _standard_video_counts(out, Release.K1, 5_000).min() >= 1
