"""Logs simulated in ``noetik/KuaiRand-v0``, in the KuaiRand log format, so that the same
analysis describes learned models: what a policy shows and how the learned response model's
simulated users react (feedback rates, like-after-like, tag concentration).

>>> envs = make_eval_envs("noetik/KuaiRand-v0", 1000)
>>> log = simulate_log(envs, EnvPolicy(agent, envs), seed=0)      # or random_policy(envs)
>>> analyse_behaviour(log, videos=load_kuairand(None).videos(), name="iql in KuaiRand-v0")

Each of the ``num_envs`` users plays one session per round; rows carry the request's time and
tab (from the ``info`` the policy saw) and the step's simulated feedback. A user the simulator
draws again (in another env or round) starts again from their logged past: the k-th repeat is
moved k whole days later so that two sessions of one user never interleave (hours stay). Return
intervals and habit curves of simulated logs are therefore not meaningful; hours, feedback
rates, precedence and tags are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from noetik.agents.onpolicy.collect import Collector, Step
from noetik.analysis.frame import FEEDBACK_FLAGS, REQUIRED_COLUMNS
from noetik.errors import ConfigError

Policy = Callable[[np.ndarray, dict[str, Any]], np.ndarray]


def random_policy(envs: Any, seed: int = 0) -> Policy:
    """A policy choosing uniformly among the ``envs``' actions (seeded)."""
    rng = np.random.default_rng(seed)
    n_actions = int(envs.single_action_space.n)

    def act(obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        return rng.integers(0, n_actions, size=len(obs))

    return act


def _step_rows(before: dict[str, Any], after: dict[str, Any], rows: np.ndarray) -> pl.DataFrame:
    """The log rows of the active env rows ``rows`` (K,) int64 of one step."""
    time_ms = np.round(np.asarray(before["time_s"], dtype=np.float64)[rows] * 1000.0)
    duration = np.asarray(after["duration_s"], dtype=np.float64)[rows]
    columns: dict[str, np.ndarray] = {
        "user_id": np.asarray(before["user_id"])[rows].astype(np.int32),
        "video_id": np.asarray(after["video_id"])[rows].astype(np.int32),
        "time_ms": time_ms.astype(np.int64),
        "tab": np.asarray(before["tab"])[rows].astype(np.int8),
        "play_time_ms": np.round(np.asarray(after["play_time_s"])[rows] * 1000.0).astype(np.int64),
        "duration_ms": np.round(np.maximum(duration, 0.0) * 1000.0).astype(np.int64),
    }
    for flag in FEEDBACK_FLAGS:  # binary feedback copied from the step's info
        columns[flag] = np.asarray(after[flag])[rows].astype(np.int8)
    return pl.DataFrame(columns)


_DAY_MS = 86_400_000


def _repeat_days(users: np.ndarray, drawn: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B,) int64 how many sessions of each env's user ``users`` (B,) int64 came before it
    (``drawn`` (>= max id + 1,) int64 sessions per user id in earlier rounds, then earlier
    envs of this round), and ``drawn`` updated with this round."""
    if len(users) and users.max() >= len(drawn):
        drawn = np.concatenate([drawn, np.zeros(users.max() + 1 - len(drawn), np.int64)])
    order = np.argsort(users, kind="stable")
    first = np.searchsorted(users[order], users[order], side="left")
    within = np.empty(len(users), dtype=np.int64)
    within[order] = np.arange(len(users)) - first
    return within + drawn[users], drawn + np.bincount(users, minlength=len(drawn))


def simulate_log(
    envs: Any, policy: Policy, seed: int = 0, rounds: int = 1, max_steps: int = 1_000
) -> pl.DataFrame:
    """One session per user of the vector env ``envs`` per round (``envs.reset(seed=seed +
    round)``), acted by ``policy(obs (B, D) float32, info) -> (B,) int64``, as a KuaiRand log
    (every column of :data:`noetik.analysis.frame.REQUIRED_COLUMNS`, ``date``/``hourmin`` in
    Beijing time as in KuaiRand), sorted by user and time."""
    if rounds < 1 or max_steps < 1:
        raise ConfigError(f"rounds and max_steps must be >= 1, got {rounds}, {max_steps}")
    frames: list[pl.DataFrame] = []
    drawn = np.zeros(0, dtype=np.int64)
    for r in range(rounds):
        collector = Collector(envs, seed=seed + r)
        users = np.asarray(collector.info["user_id"], dtype=np.int64)
        repeats, drawn = _repeat_days(users, drawn)
        shift = repeats * _DAY_MS

        def record(step: Step, shift: np.ndarray = shift) -> None:
            rows = np.flatnonzero(step.active)
            rows_frame = _step_rows(step.info, step.next_info, rows)
            frames.append(rows_frame.with_columns(pl.col("time_ms") + pl.Series(shift[rows])))

        collector.run(policy, max_steps, until_done=True, hooks=(record,))
    local = pl.from_epoch(pl.col("time_ms"), "ms").dt.replace_time_zone("UTC")
    local = local.dt.convert_time_zone("Asia/Shanghai")
    log = pl.concat(frames).with_columns(
        local.dt.strftime("%Y%m%d").cast(pl.Int32).alias("date"),
        (local.dt.hour().cast(pl.Int16) * 100).alias("hourmin"),
    )
    return log.select(REQUIRED_COLUMNS).sort("user_id", "time_ms", maintain_order=True)
