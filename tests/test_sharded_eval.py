"""Sharded online evaluation without Ray: users in seeded blocks, shards in this process equal
the local run exactly; without --ray nothing imports Ray; a missing Ray is one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.progress import Progress

from noetik.agents.algorithms.heuristics import PopularConfig, RandomConfig
from noetik.agents.algorithms.iql import IQLConfig
from noetik.agents.core.base import Agent, ProblemSpec
from noetik.agents.networks.encoders import EncoderConfig
from noetik.errors import ConfigError
from noetik.evaluation.online.sessions import (
    EnvPolicy,
    OnlineSetup,
    UserBlock,
    catalogue,
    evaluate_online,
    evaluate_policy,
    make_eval_envs,
    run_sessions,
    run_user_blocks,
    session_table,
    user_blocks,
)
from noetik.utils.shards import LocalShards, split_even
from tests.conftest import REPO

KUAIRAND = "noetik/KuaiRand-v0"
REC = "noetik/RECEnv-v0"


def _mlp_agent(sim_dir: str) -> Agent:
    """An untrained IQL agent with a small MLP over the KuaiRand pool (seeded weights)."""
    envs = make_eval_envs(KUAIRAND, 1, {"sim_dir": sim_dir})
    pool = np.asarray(envs.candidate_video_ids)
    spec = ProblemSpec(len(pool), 128, None, pool)
    encoder = EncoderConfig(kind="mlp", hidden=(16,))
    return IQLConfig(device="cpu", seed=5, encoder=encoder, item_embed_dim=8).create(spec)


def _popular(n_actions: int, obs_dim: int) -> Agent:
    agent = PopularConfig(device="cpu", exclude_seen=False).create(ProblemSpec(n_actions, obs_dim))
    agent.set_counts(np.linspace(1.0, 3.0, n_actions))  # type: ignore[operator]
    return agent


def test_split_even_and_user_blocks() -> None:
    assert split_even(list(range(7)), 3) == [[0, 1, 2], [3, 4], [5, 6]]
    assert split_even([1, 2], 5) == [[1], [2]]
    assert split_even([], 2) == []
    with pytest.raises(ConfigError, match="n_shards"):
        split_even([1], 0)
    blocks = user_blocks(20, (4, 9), block_users=8)
    assert [(b.seed, b.index, b.users) for b in blocks] == [
        (4, 0, 8),
        (4, 1, 8),
        (4, 2, 4),
        (9, 0, 8),
        (9, 1, 8),
        (9, 2, 4),
    ]
    seeds = [b.block_seed for b in blocks]
    assert seeds[0] == 4 and seeds[3] == 9  # block 0 keeps the simulator seed itself
    assert len(set(seeds)) == len(seeds)
    assert UserBlock(4, 1, 3).block_seed == blocks[1].block_seed  # depends on (seed, index)
    with pytest.raises(ConfigError, match="n_users"):
        user_blocks(0, (0,))
    with pytest.raises(ConfigError, match="block_users"):
        user_blocks(5, (0,), block_users=0)


def test_blocks_give_the_same_sessions_in_any_grouping(sim_dir: str) -> None:
    agent = _mlp_agent(sim_dir)
    kwargs = (("return_history", True), ("sim_dir", sim_dir))
    setup = OnlineSetup(KUAIRAND, kwargs, deterministic=False)
    blocks = user_blocks(21, (0, 3), block_users=6)  # 4 blocks per seed, the last of 3 users
    whole = run_user_blocks(agent, setup, blocks)
    parts = [run_user_blocks(agent, setup, group) for group in split_even(blocks[::-1], 3)]
    runs = [run for part in parts for run in part.runs][::-1]  # the groups ran in reverse
    assert len(runs) == len(whole.runs) == 8
    for alone, together in zip(runs, whole.runs, strict=True):
        np.testing.assert_array_equal(alone.returns, together.returns)
        np.testing.assert_array_equal(alone.lengths, together.lengths)
        assert alone.items is not None and together.items is not None
        np.testing.assert_array_equal(alone.items, together.items)
    # the blocks are different users, not one block repeated
    assert not np.array_equal(whole.runs[0].items, whole.runs[1].items)


def test_sharded_evaluation_equals_the_local_one(sim_dir: str) -> None:
    agent = _mlp_agent(sim_dir)
    kwargs = {"sim_dir": sim_dir, "leave_model": "hazard"}

    def run(
        engine: LocalShards | None, deterministic: bool, block_users: int = 5
    ) -> dict[str, dict[str, float]]:
        return evaluate_online(
            agent,
            KUAIRAND,
            26,
            kwargs,
            7,
            seeds=(7, 8),
            deterministic=deterministic,
            n_boot=200,
            block_users=block_users,
            engine=engine,
        )

    for deterministic in (True, False):
        local = run(None, deterministic)
        for workers in (1, 2, 3):
            assert run(LocalShards(workers), deterministic) == local, (deterministic, workers)
        assert run(None, deterministic, block_users=6) != local  # blocks: the unit of seeding
        for row in local.values():
            assert row["low"] <= row["mean"] <= row["high"]


def test_one_block_is_the_single_batched_run(sim_dir: str) -> None:
    """Up to one block of users, the evaluation is the batched run of all of them from the
    simulator seed (block 0 keeps it)."""
    agent = _mlp_agent(sim_dir)
    kwargs = {"sim_dir": sim_dir, "return_history": True}
    envs = make_eval_envs(KUAIRAND, 12, kwargs)
    expected = evaluate_policy(EnvPolicy(agent, envs), envs, (3,), n_boot=100, boot_seed=3)
    assert evaluate_online(agent, KUAIRAND, 12, {"sim_dir": sim_dir}, 3, n_boot=100) == expected


def test_agents_with_their_own_random_stream_shard_exactly() -> None:
    random = RandomConfig(device="cpu", seed=2).create(ProblemSpec(100, 5))
    popular = _popular(100, 5)
    for agent, deterministic in ((random, True), (popular, False)):
        tables = [
            evaluate_online(
                agent,
                REC,
                40,
                seeds=(0, 1),
                deterministic=deterministic,
                exclude_seen=False,
                n_boot=100,
                block_users=9,
                engine=engine,
            )
            for engine in (None, LocalShards(2), None)
        ]
        assert tables[0] == tables[1] == tables[2], type(agent).__name__


def test_the_random_agent_draws_as_a_fresh_agent_from_seed_0() -> None:
    """Reseeding per block keeps a one-block evaluation from seed 0 what it was before blocks:
    the draws of the freshly built agent (its config seed)."""
    spec = ProblemSpec(100, 5)
    used = RandomConfig(device="cpu", seed=2).create(spec)
    used.scores(torch.zeros(3, 5))  # its stream moved on: the evaluation restarts it
    table = evaluate_online(used, REC, 30, exclude_seen=False, n_boot=100)
    envs = make_eval_envs(REC, 30)
    fresh = RandomConfig(device="cpu", seed=2).create(spec)
    stats = run_sessions(envs, EnvPolicy(fresh, envs, exclude_seen=False), seed=0)
    n_items, features = catalogue(envs)
    assert table == session_table(stats, n_items, features, n_boot=100, seed=0)


def test_progress_counts_the_users_evaluated() -> None:
    agent = _popular(100, 5)
    for engine in (None, LocalShards(2)):
        with Progress(disable=True) as progress:
            evaluate_online(
                agent,
                REC,
                23,
                seeds=(0, 1),
                exclude_seen=False,
                n_boot=50,
                block_users=4,
                engine=engine,
                progress=progress,
                description="users",
            )
            (task,) = progress.tasks
            assert task.description == "users"
            assert task.total == task.completed == 46


def _train_popular(sim_dir: str, out: Path) -> Path:
    from noetik.cli.main import main

    root = Path(sim_dir).parent
    argv = ["train", "popular", "--data", str(root / "data"), "--cache", str(root / "cache")]
    assert main([*argv, "--steps", "1", "--out", str(out)]) == 0
    return out


def test_evaluate_without_ray_imports_no_ray(sim_dir: str, tmp_path: Path) -> None:
    run = _train_popular(sim_dir, tmp_path / "popular")
    code = (
        "import sys\n"
        "from noetik.cli.main import main\n"
        f"argv = ['evaluate', {str(run)!r}, '--env-option', 'sim_dir={sim_dir}',\n"
        "        '--users', '12', '--user-block', '5', '--no-ope', '--json']\n"
        "assert main(argv) == 0\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**_env(), "PYTHONPATH": str(REPO / "src")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2_000:]
    assert '"online"' in done.stdout


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def test_ray_missing_is_one_line(
    sim_dir: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from noetik.cli.main import main
    from noetik.utils.ray_engine import RAY_MISSING, ray_session

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(ConfigError, match=r"noetik\[ray\] is not installed"), ray_session():
        pass
    run = _train_popular(sim_dir, tmp_path / "popular")
    capsys.readouterr()
    argv = ["evaluate", str(run), "--env-option", f"sim_dir={sim_dir}", "--users", "4"]
    assert main([*argv, "--ray"]) == 2
    assert capsys.readouterr().err.strip() == f"error: {RAY_MISSING}"
    assert main([*argv, "--ray-address", "127.0.0.1:1", "--no-online"]) == 2
    assert "--ray shards the online lens" in capsys.readouterr().err
