"""Transitions: vocabulary, episode links, history sequences, sampling, and the real sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from noetik.data.dataset import KuaiRandDataset, load_kuairand
from noetik.data.episodes import EpisodeConfig
from noetik.data.features import STATE_SLICES, FeatureConfig, state_feature_names
from noetik.data.rewards import SIGNALS, RewardConfig
from noetik.data.schema import LOG_SCHEMA
from noetik.data.splits import SplitConfig
from noetik.data.transitions import (
    ItemVocab,
    Transitions,
    build_transitions,
    episode_links,
    format_episodes,
)
from tests.tiny import tiny_users, tiny_videos

MIN = 60_000
REAL_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "kuairand-pure-sample"
T0 = 1_650_900_000_000


def _toy_log() -> pl.DataFrame:
    """Users 0 (times 0, 10, 50, 55 min), 1 (0, 31 min), 2 (0 min); videos 0..5."""
    users = [0, 0, 0, 0, 1, 1, 2]
    minutes = [0, 10, 50, 55, 0, 31, 0]
    n = len(users)
    data: dict[str, object] = {name: [0] * n for name in LOG_SCHEMA}
    data.update(
        user_id=users,
        video_id=[5, 1, 3, 0, 1, 4, 2],
        date=[20220425] * n,
        hourmin=[1800] * n,
        time_ms=[T0 + m * MIN for m in minutes],
        is_click=[1, 0, 1, 0, 1, 1, 0],
        is_hate=[0, 0, 0, 1, 0, 0, 0],
        play_time_ms=[5_000, 1_000, 20_000, 0, 15_000, 1_500, 7_000],
        duration_ms=[10_000, 10_000, 10_000, 10_000, 10_000, 0, 0],
        tab=[1] * n,
    )
    return pl.DataFrame(data, schema=LOG_SCHEMA)


@pytest.fixture
def toy_ds(tmp_path: Path) -> KuaiRandDataset:
    """A Pure-named toy release: one standard log file plus the tiny feature tables."""
    root = tmp_path / "toy"
    root.mkdir()
    _toy_log().write_csv(root / "log_standard_4_22_to_5_08_pure.csv")
    tiny_users().write_csv(root / "user_features_pure.csv")
    tiny_videos().write_csv(root / "video_features_basic_pure.csv")
    return load_kuairand(root, tmp_path / "cache")


def test_item_vocab_round_trip() -> None:
    vocab = ItemVocab.from_ids([30, 10, 20, 10])
    assert len(vocab) == 3
    assert vocab.encode(np.array([10, 30, 20])).tolist() == [0, 2, 1]
    assert vocab.decode(np.array([2, 0])).tolist() == [30, 10]
    with pytest.raises(KeyError, match="15"):
        vocab.encode(np.array([10, 15]))


def test_episode_links() -> None:
    done, next_index = episode_links(np.array([0, 0, 1, 2, 2, 2]))
    assert done.tolist() == [False, True, True, False, False, True]
    assert next_index.tolist() == [1, 1, 2, 4, 5, 5]


def test_toy_transitions_sessions(toy_ds: KuaiRandDataset) -> None:
    t = build_transitions(toy_ds, features=FeatureConfig(obs_dtype="float32"))
    assert len(t) == 7 and t.obs.shape == (7, 128) and np.isfinite(t.obs).all()
    assert t.episode_id.tolist() == [0, 0, 1, 1, 2, 3, 4]
    assert t.step.tolist() == [0, 1, 0, 1, 0, 0, 0]
    assert t.done.tolist() == [False, True, False, True, True, True, True]
    assert t.next_index.tolist() == [1, 1, 3, 3, 4, 5, 6]
    assert t.vocab.decode(t.action).tolist() == [5, 1, 3, 0, 1, 4, 2]
    assert t.n_actions == 6
    # row 0: click, watch ratio 0.5 -> 0.75; row 5: duration 0 and video 4 lasts 14 s
    assert t.reward[0] == pytest.approx(0.75)
    assert t.reward[5] == pytest.approx(0.5 + 0.5 * 1.5 / 14)
    assert t.signals[2, SIGNALS.index("watch_ratio")] == 1.0  # 20 s of 10 s, clipped
    assert t.signals[2, SIGNALS.index("play_time_s")] == 20.0
    np.testing.assert_array_equal(t.next_obs(np.array([0, 1])), t.obs[[1, 1]])
    assert t.signals.shape == (7, 12) and t.signals.dtype == np.float32
    dtypes = [a.dtype for a in (t.action, t.reward, t.done, t.next_index, t.episode_id)]
    assert dtypes == [np.int64, np.float32, np.bool_, np.int64, np.int64]


def test_toy_transitions_windows_and_reward(toy_ds: KuaiRandDataset) -> None:
    reward = RewardConfig((("is_click", 1.0), ("is_hate", -5.0)))
    t = build_transitions(toy_ds, episodes=EpisodeConfig("window", window=3), reward=reward)
    assert t.episode_id.tolist() == [0, 0, 0, 1, 2, 2, 3]
    assert t.done.tolist() == [False, False, True, True, False, True, True]
    assert t.next_index.tolist() == [1, 2, 2, 3, 5, 5, 6]
    assert t.reward.tolist() == [1.0, 0.0, 1.0, -5.0, 1.0, 1.0, 0.0]
    assert t.obs.dtype == np.float16


def test_toy_split_keeps_history(toy_ds: KuaiRandDataset) -> None:
    config = FeatureConfig(obs_dtype="float32")
    full = build_transitions(toy_ds, features=config)
    split = SplitConfig(0.5, "user")
    train = build_transitions(toy_ds, split="train", split_config=split, features=config)
    test = build_transitions(toy_ds, split="test", split_config=split, features=config)
    assert train.user_id.tolist() == [0, 0, 1, 2] and test.user_id.tolist() == [0, 0, 1]
    np.testing.assert_array_equal(test.obs, full.obs[[2, 3, 5]])  # history from train rows
    assert train.done.tolist() == [False, True, True, True]  # episode 0 ends inside train
    assert test.next_index.tolist() == [1, 1, 2]


def test_history_sequences(toy_ds: KuaiRandDataset) -> None:
    t = build_transitions(toy_ds)
    items, signals, gap_s, mask = t.history(np.array([3, 4, 1]), k=3)
    assert mask.tolist() == [[True, True, True], [False, False, False], [False, False, True]]
    assert items.tolist() == [t.action[:3].tolist(), [6, 6, 6], [6, 6, t.action[0]]]
    assert gap_s[0].tolist() == [55 * 60.0, 45 * 60.0, 5 * 60.0]
    assert gap_s[1].tolist() == [0.0, 0.0, 0.0]
    assert signals.shape == (3, 3, 12) and signals.dtype == np.float32
    np.testing.assert_array_equal(signals[0], t.signals[:3])
    assert not signals[1].any()


def test_sample_is_seeded(toy_ds: KuaiRandDataset) -> None:
    t = build_transitions(toy_ds)
    a = t.sample(16, np.random.default_rng(3))
    b = t.sample(16, np.random.default_rng(3))
    np.testing.assert_array_equal(a.rows, b.rows)
    assert a.obs.dtype == np.float32 and a.obs.shape == (16, 128)
    np.testing.assert_array_equal(a.next_obs, t.obs[t.next_index[a.rows]].astype(np.float32))
    np.testing.assert_array_equal(a.reward, t.reward[a.rows])


def test_format_episodes(toy_ds: KuaiRandDataset) -> None:
    text = format_episodes(build_transitions(toy_ds), n=2)
    assert "episode 0: user 0, 2 steps" in text
    assert "episode 1: user 0, 2 steps" in text
    assert "0.5*is_click + 0.5*watch_ratio" in text
    assert "yes" in text and "no" in text


# ---------------------------------------------------------------------------------------------
# The real KuaiRand sample
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_transitions(tmp_path_factory: pytest.TempPathFactory) -> Transitions:
    if not (REAL_SAMPLE / "log_standard_4_22_to_5_08_pure.csv").is_file():
        pytest.skip(f"real KuaiRand sample not found at {REAL_SAMPLE}")
    ds = load_kuairand(REAL_SAMPLE, tmp_path_factory.mktemp("cache"))
    return build_transitions(ds)


def _independent_reward_mean() -> float:
    """0.5 * click rate + 0.5 * mean watch ratio, straight from the CSVs (no loader code)."""
    logs = pl.concat(
        pl.read_csv(p, columns=["video_id", "is_click", "play_time_ms", "duration_ms"])
        for p in sorted(REAL_SAMPLE.glob("log_standard_*_pure.csv"))
    )
    videos = pl.read_csv(
        REAL_SAMPLE / "video_features_basic_pure.csv", columns=["video_id", "video_duration"]
    )
    frame = logs.join(videos, on="video_id", how="left")
    duration = (
        pl.when(pl.col("duration_ms") > 0)
        .then(pl.col("duration_ms"))
        .when(pl.col("video_duration") > 0)
        .then(pl.col("video_duration"))
    )
    ratio = (pl.col("play_time_ms") / duration).clip(0.0, 1.0).fill_null(0.0)
    out = frame.select(pl.col("is_click").mean().alias("click"), ratio.mean().alias("ratio"))
    return float(0.5 * out["click"][0] + 0.5 * out["ratio"][0])


def test_real_sample_transitions(real_transitions: Transitions) -> None:
    t = real_transitions
    n = 229_329
    assert len(t) == n and t.obs.shape == (n, 128) and t.obs.dtype == np.float16
    assert t.signals.shape == (n, 12)
    assert np.isfinite(t.obs).all() and np.isfinite(t.signals).all()
    assert np.isfinite(t.reward).all()
    assert float(t.reward.mean(dtype=np.float64)) == pytest.approx(
        _independent_reward_mean(), abs=1e-5
    )
    assert (np.diff(t.episode_id) >= 0).all()
    assert t.done[-1] and (t.next_index[~t.done] == np.flatnonzero(~t.done) + 1).all()
    assert t.action.min() >= 0 and t.action.max() < t.n_actions
    # history features never see the future: the first row of a user has no history
    first = np.r_[True, t.user_id[1:] != t.user_id[:-1]]
    no_prev = t.obs[:, state_feature_names().index("hist.no_prev")]
    np.testing.assert_array_equal(no_prev == 1, first)
    assert not t.obs[first][:, STATE_SLICES["hist.mean"]].any()
