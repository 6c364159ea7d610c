"""The one rollout/collect engine and the one info -> History translation: hand-computed loops,
the old translations of on-policy rollouts and of online evaluation as references."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

from noetik.agents.core.base import Agent, AgentConfig, ProblemSpec
from noetik.agents.onpolicy.collect import Collector, SessionTotals, Step
from noetik.agents.onpolicy.episode_log import episode_log
from noetik.agents.onpolicy.history import (
    HISTORY_KEYS,
    HistoryView,
    history_map,
    last_k,
    pool_table,
)
from noetik.errors import ConfigError
from noetik.utils.arrays import IdIndex


class Counter:
    """Next-step-autoreset vector env: row ``j``'s episodes last ``j + 2`` steps; the reward
    is ``10 * action + t`` (t = step within the episode); obs ``[j, t]``; info carries ``t``
    and a ``sig`` signal equal to the action; every ``(j + 3)``-rd step of row ``j`` is
    truncated instead of terminated when it ends an episode of odd rows."""

    metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.NEXT_STEP}  # noqa: RUF012

    def __init__(self, num_envs: int) -> None:
        self.num_envs = num_envs
        self.t = np.zeros(num_envs, dtype=np.int64)
        self.done = np.zeros(num_envs, dtype=bool)

    def _obs(self) -> np.ndarray:
        return np.stack([np.arange(self.num_envs), self.t], axis=1).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: Any = None) -> tuple[Any, Any]:
        self.t[:], self.done[:] = 0, False
        return self._obs(), {"t": self.t.copy()}

    def step(self, actions: Any) -> tuple[Any, ...]:
        restart = self.done.copy()
        a = np.asarray(actions)
        reward = np.where(restart, 0.0, 10.0 * a + self.t)
        self.t = np.where(restart, 0, self.t + 1)
        ends = (self.t >= np.arange(self.num_envs) + 2) & ~restart
        odd = np.arange(self.num_envs) % 2 == 1
        term, trunc = ends & ~odd, ends & odd
        self.done = ends
        info = {"t": self.t.copy(), "sig": np.where(restart, 0.0, a * 1.0), "name": "x"}
        return self._obs(), reward, term, trunc, info


def policy(obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
    """Action = (row + t) % 3, from the observation."""
    return ((obs[:, 0] + obs[:, 1]) % 3).astype(np.int64)


def test_continuing_run_equals_the_hand_loop() -> None:
    n, steps = 3, 7
    env = Counter(n)
    obs, info = env.reset()
    rew, term, trunc, seen = [], [], [], []
    for _ in range(2 * steps):
        seen.append(obs.copy())
        obs, r, te, tr, info = env.step(policy(obs, info))
        rew.append(r)
        term.append(te)
        trunc.append(tr)
    collector = Collector(Counter(n), seed=0, next_step=True)
    ended, carry = np.zeros(n, dtype=bool), np.zeros(n)
    for half in range(2):  # two runs: the state (obs, episodes) carries across runs
        got = collector.run(policy, steps, keep_obs=True, keep_steps=True, episodes=True)
        part = slice(half * steps, (half + 1) * steps)
        assert got.steps == steps and got.extras == []
        assert got.obs is not None and got.reward is not None and got.episodes is not None
        np.testing.assert_array_equal(got.obs, np.stack(seen[part]))
        np.testing.assert_array_equal(got.reward, np.stack(rew[part]).astype(np.float32))
        np.testing.assert_array_equal(got.terminated, np.stack(term[part]))
        np.testing.assert_array_equal(got.truncated, np.stack(trunc[part]))
        want = episode_log(
            np.stack(rew[part]).astype(np.float32),
            np.stack(term[part]),
            np.stack(trunc[part]),
            ended=ended,
            carry=carry,
        )
        ended, carry = want.ended, want.carry
        np.testing.assert_array_equal(got.episodes.valid, want.valid)
        np.testing.assert_allclose(got.episodes.returns, want.returns)
        np.testing.assert_allclose(collector.carry, carry)
    # one row: episodes of 2 steps (actions 0 then 1: rewards 0 + 11) and an autoreset row,
    # so 14 steps close episodes at steps 1, 4 (first run) and 7, 10, 13 (second run)
    single = Collector(Counter(1), seed=0, next_step=True)
    for closed in (2, 3):
        log = single.run(policy, steps, keep_steps=True, episodes=True).episodes
        assert log is not None and log.returns.tolist() == [11.0] * closed


def test_policy_gets_the_host_buffer_row_and_extras_are_kept_in_order() -> None:
    collector = Collector(Counter(2), seed=0)
    rows: list[np.ndarray] = []

    def with_extra(obs: np.ndarray, info: dict[str, Any]) -> tuple[np.ndarray, Any]:
        rows.append(obs)
        return policy(obs, info), ("logp", int(info["t"][0]))

    got = collector.run(with_extra, 4, keep_obs=True)
    assert got.obs is not None
    assert all(np.shares_memory(r, got.obs[t]) for t, r in enumerate(rows))  # no second copy
    # row 0: t = 0, 1, then its final observation (t = 2), then the restarted episode
    assert [e[1] for e in got.extras] == [0, 1, 2, 0]
    assert got.reward is None and got.episodes is None


def test_sessions_stop_when_every_row_ended_and_ask_only_active_rows() -> None:
    n = 4
    env = Counter(n)
    asked: list[list[int]] = []

    def rows_policy(obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        asked.append(obs[:, 0].astype(int).tolist())
        assert info["t"].tolist() == obs[:, 1].astype(int).tolist()  # info follows obs rows
        return policy(obs, info)

    totals = SessionTotals(n, ("sig", "absent"), record_items=True)
    steps: list[Step] = []
    got = Collector(env, seed=0).run(
        rows_policy, 100, until_done=True, active_only=True, hooks=(totals, steps.append)
    )
    # row j's first episode lasts j + 2 steps: 5 steps in all, rows drop out one by one
    assert got.steps == 5
    assert asked == [[0, 1, 2, 3], [0, 1, 2, 3], [1, 2, 3], [2, 3], [3]]
    assert totals.lengths.tolist() == [2, 3, 4, 5]
    # hand-computed: row j acts (j + t) % 3 at t = 0..j+1, reward 10 * a + t
    want = [sum(10 * ((j + t) % 3) + t for t in range(j + 2)) for j in range(n)]
    assert totals.returns.tolist() == want
    means = totals.means()
    assert set(means) == {"sig"}
    for j in range(n):
        assert means["sig"][j] == pytest.approx(np.mean([(j + t) % 3 for t in range(j + 2)]))
    items = totals.items()
    assert items is not None and items.shape == (5, n)
    assert items[:, 0].tolist() == [0, 1, -1, -1, -1]
    assert [s.active.sum() for s in steps] == [4, 4, 3, 2, 1]
    assert steps[2].action[0] == 0  # row 0 was not asked at step 2: action 0


def test_episodes_need_a_continuing_run_and_next_step_envs() -> None:
    with pytest.raises(ConfigError, match="continuing"):
        Collector(Counter(1), seed=0).run(policy, 2, until_done=True, episodes=True)

    class SameStep(Counter):
        metadata: dict[str, Any] = {"autoreset_mode": AutoresetMode.SAME_STEP}  # noqa: RUF012

    with pytest.raises(ConfigError, match="next-step"):
        Collector(SameStep(1), next_step=True)


# -- the info -> History translation ------------------------------------------------------------


def old_rollout_history(
    info: dict[str, Any], k: int, pool: np.ndarray | None, n_actions: int
) -> tuple[np.ndarray, ...]:
    """The on-policy rollout's translation before the engine (``history_from_info``)."""
    items, signals, gap, mask = (np.asarray(info[key]) for key in HISTORY_KEYS)
    items, signals, gap, mask = items[:, -k:], signals[:, -k:], gap[:, -k:], mask[:, -k:]
    if pool is not None:
        idx, found = IdIndex(pool).lookup(items.ravel())
        items = np.where(found, idx, n_actions).reshape(items.shape)
    items = np.where(mask, items, n_actions)
    return items, signals, gap, mask


def old_eval_history(
    info: dict[str, Any], table: np.ndarray | None, n_actions: int, k: int | None
) -> tuple[np.ndarray, ...]:
    """Online evaluation's translation before the engine (``EnvPolicy._history``)."""
    items, signals, gaps, mask = (np.asarray(info[key]) for key in HISTORY_KEYS)
    if table is not None:
        items = table[items]
    items = np.where(mask & (items < n_actions), items, n_actions)
    width = items.shape[1] if k is None else k
    return last_k((items, signals, gaps, mask), width, n_actions)


def recorded_infos(vocab: int, width: int, steps: int = 6, b: int = 5) -> list[dict[str, Any]]:
    """A window of ``width`` past items per user sliding over ``steps`` steps (random items
    of a ``vocab``-sized vocabulary, padding index ``vocab``, users starting with fewer)."""
    rng = np.random.default_rng(0)
    items = np.full((b, width), vocab, dtype=np.int64)
    signals = np.zeros((b, width, 3), dtype=np.float32)
    gaps = np.zeros((b, width), dtype=np.float32)
    mask = np.zeros((b, width), dtype=bool)
    filled = rng.integers(0, width + 1, size=b)
    for j in range(b):
        items[j, width - filled[j] :] = rng.integers(0, vocab, size=filled[j])
        mask[j, width - filled[j] :] = True
    out = []
    for _ in range(steps):
        items = np.concatenate([items[:, 1:], rng.integers(0, vocab, size=(b, 1))], axis=1)
        signals = np.concatenate([signals[:, 1:], rng.random((b, 1, 3), np.float32)], axis=1)
        gaps = np.concatenate([gaps[:, 1:], rng.random((b, 1), np.float32) * 60], axis=1)
        mask = np.concatenate([mask[:, 1:], np.ones((b, 1), dtype=bool)], axis=1)
        out.append(dict(zip(HISTORY_KEYS, (items, signals, gaps, mask), strict=True)))
    return out


@pytest.mark.parametrize("k", [3, 6])
@pytest.mark.parametrize("with_pool", [True, False])
def test_rollout_view_equals_the_old_rollout_translation(k: int, with_pool: bool) -> None:
    vocab, n_actions = 20, 7
    pool = np.array([1, 4, 5, 9, 12, 13, 19]) if with_pool else None
    table = None if pool is None else pool_table(pool, n_actions)
    view = HistoryView(n_actions, k, table, strict=True)
    for info in recorded_infos(vocab if with_pool else n_actions, width=6):
        want = old_rollout_history(info, k, pool, n_actions)
        got = view.arrays(info)
        assert got is not None
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
        h = view(info)
        assert h is not None and h.items.dtype == torch.int64 and h.items.shape == (5, k)


class Videos(Agent):
    def scores(self, obs: torch.Tensor, history: Any = None) -> torch.Tensor:
        return torch.zeros(obs.shape[0], self.spec.n_actions)


@pytest.mark.parametrize("k", [None, 4, 9])
def test_agent_view_equals_the_old_evaluation_translation(k: int | None) -> None:
    vocab_ids = np.array([50, 10, 40, 70, 20, 99, 30, 60])  # vocabulary index -> video id
    agent = Videos(AgentConfig(device="cpu"), ProblemSpec(4, 3, None, np.array([10, 20, 30, 40])))
    table = history_map(agent, vocab_ids)
    assert table is not None and table.tolist() == [4, 0, 3, 4, 1, 4, 2, 4, 4]
    view = HistoryView(agent.spec.n_actions, k, table)

    class Envs:
        vocab_video_ids = vocab_ids

    from_agent = HistoryView.for_agent(agent, Envs()).item_table
    assert from_agent is not None and from_agent.tolist() == table.tolist()
    for info in recorded_infos(len(vocab_ids), width=6):
        want = old_eval_history(info, table, agent.spec.n_actions, k)
        got = view.arrays(info)
        assert got is not None
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
    assert view.arrays({}) is None  # no window in info: lenient views read none


def test_strict_view_refuses_a_missing_or_narrow_window() -> None:
    view = HistoryView(5, 8, None, strict=True)
    with pytest.raises(ConfigError, match="return_history"):
        view.arrays({})
    with pytest.raises(ConfigError, match="history_len"):
        view.arrays(recorded_infos(5, width=6)[0])


def test_pool_table_maps_pool_indices_and_nothing_else() -> None:
    table = pool_table(np.array([2, 5, 6]), n_actions=3)
    assert table.tolist() == [3, 3, 0, 3, 3, 1, 2, 3]
    view = HistoryView(3, 2, table)
    info = dict(
        zip(
            HISTORY_KEYS,
            (
                np.array([[5, 100]]),  # 100: a logged video past the pool -> padding
                np.zeros((1, 2, 1), np.float32),
                np.zeros((1, 2), np.float32),
                np.array([[True, True]]),
            ),
            strict=True,
        )
    )
    got = view.arrays(info)
    assert got is not None and got[0].tolist() == [[1, 3]]
