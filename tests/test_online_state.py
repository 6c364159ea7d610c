"""Online states: replaying a log through OnlineStates reproduces build_states exactly."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import replace

import numpy as np
import polars as pl
import pytest

from noetik.data.dataset import KuaiRandDataset, load_kuairand
from noetik.data.features import STATE_SLICES, FeatureConfig
from noetik.data.online_state import (
    LoggedHistory,
    OnlineStates,
    OnlineStateTables,
    clock_hour_weekday,
    history_after,
    history_before,
)
from noetik.data.rewards import N_SIGNALS
from noetik.data.schema import FileKind
from noetik.data.synthetic import SynthConfig, synthesize
from noetik.data.transitions import Transitions, build_transitions

ATOL = 1e-4
CLOCK = [STATE_SLICES["ctx.hour"], STATE_SLICES["ctx.weekday"]]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[KuaiRandDataset, Transitions]:
    root = tmp_path_factory.mktemp("online")
    synthesize(root / "data", SynthConfig.for_release("pure", users=30, videos=200, seed=1))
    ds = load_kuairand(root / "data", cache_dir=root / "cache")
    return ds, build_transitions(ds, features=FeatureConfig(obs_dtype="float32"))


@pytest.fixture(scope="module")
def tables(world: tuple[KuaiRandDataset, Transitions]) -> OnlineStateTables:
    ds, t = world
    return OnlineStateTables.from_dataset(ds, t.vocab)


def _log_extras(ds: KuaiRandDataset) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row of the standard log (transitions order): tab, hour, weekday, duration_ms."""
    frame = ds.interactions(FileKind.LOG_STANDARD).collect()
    day = frame["date"].cast(pl.String).str.to_date("%Y%m%d").dt.weekday() - 1
    return (
        frame["tab"].to_numpy().astype(np.int64),
        frame["hour"].to_numpy().astype(np.int64),
        day.to_numpy().astype(np.int64),
        frame["duration_ms"].cast(pl.Float64).to_numpy(),
    )


def _replay(
    world: tuple[KuaiRandDataset, Transitions], tables: OnlineStateTables, log_clock: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Replay every user's log (batch row = user); returns (online states, row order)."""
    ds, t = world
    tab, hour, weekday, duration_ms = _log_extras(ds)
    users, starts, counts = np.unique(t.user_id, return_index=True, return_counts=True)
    states = OnlineStates(tables, len(users))
    states.reset(np.arange(len(users)), users)
    got = np.zeros_like(t.obs)
    for i in range(int(counts.max())):
        alive = i < counts
        row = np.where(alive, starts + i, 0)
        clock = {"hour": hour[row], "weekday": weekday[row]} if log_clock else {}
        obs = states.observe(t.time_ms[row] / 1000.0, tab[row], t.step[row], **clock)
        got[row[alive]] = obs[alive]
        states.push(
            t.action[row],
            t.signals[row],
            t.time_ms[row] / 1000.0,
            mask=alive,
            duration_ms=duration_ms[row],
        )
    assert np.all(states.n_past == counts)
    return got, t.obs


def test_replay_matches_build_states(
    world: tuple[KuaiRandDataset, Transitions], tables: OnlineStateTables
) -> None:
    got, want = _replay(world, tables, log_clock=True)
    assert len(want) > 1000
    np.testing.assert_allclose(got, want, atol=ATOL, rtol=1e-5)


def test_replay_with_simulated_clock_differs_only_in_hour_and_weekday(
    world: tuple[KuaiRandDataset, Transitions], tables: OnlineStateTables
) -> None:
    got, want = _replay(world, tables, log_clock=False)
    other = np.ones(want.shape[1], dtype=bool)
    for s in CLOCK:
        other[s] = False
    np.testing.assert_allclose(got[:, other], want[:, other], atol=ATOL, rtol=1e-5)
    # The log names the hour a row was recorded (minutes after time_ms): mostly the same hour.
    same = np.all(np.abs(got[:, CLOCK[0]] - want[:, CLOCK[0]]) < ATOL, axis=1)
    assert same.mean() > 0.6


def test_video_durations_alone_match_the_synthetic_log(
    world: tuple[KuaiRandDataset, Transitions], tables: OnlineStateTables
) -> None:
    """Synthetic logs' duration_ms is 0 or video_duration, so the tables alone suffice."""
    ds, t = world
    _, hour, weekday, _ = _log_extras(ds)
    users = np.unique(t.user_id)
    rows = np.searchsorted(t.user_id, users, side="right") - 1  # each user's last row
    states = OnlineStates(tables, len(users))
    states.reset(np.arange(len(users)), users, history_before(t, rows))
    tab = _log_extras(ds)[0][rows]
    obs = states.observe(
        t.time_ms[rows] / 1000.0, tab, t.step[rows], hour=hour[rows], weekday=weekday[rows]
    )
    np.testing.assert_allclose(obs, t.obs[rows], atol=ATOL, rtol=1e-5)


def test_seeded_history_continues_the_log(
    world: tuple[KuaiRandDataset, Transitions], tables: OnlineStateTables
) -> None:
    ds, t = world
    tab, hour, weekday, duration_ms = _log_extras(ds)
    rng = np.random.default_rng(0)
    rows = rng.choice(len(t), size=64, replace=False)
    seed = history_before(t, rows)
    window = np.maximum(rows[:, None] - 10 + np.arange(10), 0)
    seed = replace(seed, duration_ms=np.where(seed.mask, duration_ms[window], np.nan))
    states = OnlineStates(tables, 64)
    states.reset(np.arange(64), t.user_id[rows], seed)
    for step in range(3):  # then keep replaying the log from there
        nxt = np.minimum(rows + step, len(t) - 1)
        same = t.user_id[nxt] == t.user_id[rows]
        obs = states.observe(
            t.time_ms[nxt] / 1000.0, tab[nxt], t.step[nxt], hour=hour[nxt], weekday=weekday[nxt]
        )
        np.testing.assert_allclose(obs[same], t.obs[nxt][same], atol=ATOL, rtol=1e-5)
        items, sig, gap, mask = states.history(t.time_ms[nxt] / 1000.0)
        want = t.history(nxt, 10)
        np.testing.assert_array_equal(items[same], want[0][same])
        np.testing.assert_array_equal(mask[same], want[3][same])
        np.testing.assert_allclose(sig[same], want[1][same])
        np.testing.assert_allclose(gap[same], want[2][same], rtol=1e-6, atol=1e-3)
        states.push(t.action[nxt], t.signals[nxt], t.time_ms[nxt] / 1000.0)


def test_history_after_and_absent_users(
    world: tuple[KuaiRandDataset, Transitions], tables: OnlineStateTables
) -> None:
    _, t = world
    users = np.array([int(t.user_id[0]), 10_000_000])
    seed = history_after(t, users)
    n_first = int(np.sum(t.user_id == users[0]))
    assert seed.n_past.tolist() == [n_first, 0]
    assert seed.mask[0].sum() == min(n_first, 10) and not seed.mask[1].any()
    states = OnlineStates(tables, 2)
    states.reset(np.arange(2), users, seed)
    obs = states.observe(np.full(2, t.time_ms[n_first - 1] / 1000.0 + 60), np.zeros(2), np.ones(2))
    missing_row = STATE_SLICES["user.missing"].stop - 1
    assert obs[1, missing_row] == 1.0 and obs[0, missing_row] == 0.0
    assert obs[1, STATE_SLICES["hist.gap"]].tolist() == [0.0, 1.0]
    assert obs[0, STATE_SLICES["hist.gap"]].tolist() == pytest.approx([np.log1p(60.0), 0.0])
    holed = seed.mask.copy()
    holed[0, -1] = False  # the most recent interaction missing: not right-aligned
    bad = LoggedHistory(seed.items, seed.signals, seed.time_s, holed, seed.n_past, seed.cum_sum)
    with pytest.raises(ValueError, match="right-aligned"):
        states.reset(np.arange(2), users, bad)


def test_clock_matches_datetime() -> None:
    stamps = np.array([0.0, 1_650_900_000.0, 1_651_999_999.5, 1_649_376_000.0])
    hour, weekday = clock_hour_weekday(stamps)
    tz = dt.timezone(dt.timedelta(hours=8))
    for s, h, d in zip(stamps, hour, weekday, strict=True):
        local = dt.datetime.fromtimestamp(float(s), tz)
        assert (h, d) == (local.hour, local.weekday())
    lagged, _ = clock_hour_weekday(np.array([3599.0]) - 8 * 3600, lag_s=1.0)
    assert lagged.tolist() == [1]


@pytest.mark.slow  # a speed figure: benchmarks/bench_envs.py measures it
def test_speed_4096(tables: OnlineStateTables) -> None:
    b, rng = 4096, np.random.default_rng(0)
    states = OnlineStates(tables, b)
    states.reset(np.arange(b), rng.integers(0, 30, size=b))
    clock = 1_650_000_000.0 + np.zeros(b)
    tab = rng.integers(0, 15, size=b)
    signals = rng.random((b, N_SIGNALS)).astype(np.float32)
    items = rng.integers(0, tables.n_actions, size=b)
    n, t0 = 200, time.perf_counter()
    for step in range(n):
        obs = states.observe(clock, tab, np.full(b, step))
        states.push(items, signals, clock)
        clock = clock + 30.0
    per_step_ms = (time.perf_counter() - t0) / n * 1e3
    print(f"\nOnlineStates B={b}: {per_step_ms:.2f} ms per observe+push")
    assert obs.shape == (b, 128) and np.isfinite(obs).all()
    assert per_step_ms < 100.0
