"""Online evaluation speed: 10,000 simulated users of ``noetik/KuaiRand-v0`` per trained agent.

    .venv/bin/python benchmarks/bench_eval.py                 # goal: under 60 s on 2 cores

Trains (once; reused from ``--cache``) IQL with the History Transformer and IQL with the MLP
encoder on the built-in synthetic dataset for ``--steps`` updates (``train_run``, training
split), and the most-popular heuristic. Each is then evaluated with
:func:`noetik.evaluation.online.sessions.evaluate_online`: one session for each of
``--users`` simulated users of ``noetik/KuaiRand-v0`` (its default simulator, fitted once on
the same data and cached), every metric with a 95 % bootstrap interval (2,000 resamples),
under both leave models: ``fixed`` (10 steps per session, the heavier case) and ``hazard``
(the logs' leave hazard; sessions end when the user leaves, so a policy's session length shows).

Timed: the wall time of one ``evaluate_online`` call (median of ``--repeats``), after a
64-user warm-up call that loads the simulator's world (the logs and tables, read once per
process). The breakdown comes from a second, instrumented run of the same work through the
module's public pieces: building the environment and the policy, time inside the policy (agent
forward passes on the users still in session), the environment's steps (the rest of the session
loop), and the metrics (per-session metrics and the bootstrap). ``--threads`` torch intra-op
threads (default 2, the goal's cores); the load average is printed, since other jobs may share
the machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from noetik.agents import ALGOS
from noetik.agents.core.base import Agent
from noetik.agents.core.runs import train_run
from noetik.agents.core.task import TaskConfig
from noetik.agents.networks.encoders import EncoderConfig
from noetik.evaluation.online.sessions import (
    EnvPolicy,
    acts_on_history,
    catalogue,
    evaluate_online,
    make_eval_envs,
    pool_sessions,
    run_sessions,
    session_table,
)

ENV_ID = "noetik/KuaiRand-v0"
#: (name, algorithm, encoder or None for the algorithm's default)
AGENTS: list[tuple[str, str, EncoderConfig | None]] = [
    ("iql-transformer", "iql", EncoderConfig(kind="transformer")),
    ("iql-mlp", "iql", EncoderConfig(kind="mlp")),
    ("popular", "popular", None),
]
LEAVE_MODELS = ("fixed", "hazard")
#: Metrics printed in the second table.
SHOWN = ("return", "length", "is_click_rate", "distinct_fraction", "intra_similarity", "coverage")


def train(name: str, algo: str, encoder: EncoderConfig | None, args: Any) -> Agent:
    """The agent of run ``name`` in ``args.cache`` (trained there first when missing)."""
    run = args.cache / name
    if not (run / "run.json").is_file():
        config = ALGOS[algo](seed=args.seed, device="cpu")
        if encoder is not None:
            config = config.replace(encoder=dataclasses.replace(encoder))
        steps = args.steps if algo != "popular" else 1
        start = time.perf_counter()
        train_run(config, TaskConfig(), run, steps)
        print(f"trained {name} ({steps} steps) in {time.perf_counter() - start:.0f} s")
    agent = Agent.load(run, device="cpu")
    agent.eval()
    return agent


class TimedPolicy:
    """An :class:`EnvPolicy` that adds up the seconds spent in its calls."""

    def __init__(self, policy: EnvPolicy) -> None:
        self.policy, self.seconds, self.rows = policy, 0.0, 0

    def __call__(self, obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        start = time.perf_counter()
        actions = self.policy(obs, info)
        self.seconds += time.perf_counter() - start
        self.rows += len(obs)
        return actions


def breakdown(agent: Agent, users: int, kwargs: dict[str, Any]) -> dict[str, float]:
    """Seconds building, in the policy, in the environment and in the metrics of one
    evaluation, and the user-steps played (the work of ``evaluate_online``, instrumented)."""
    kwargs = {**kwargs, "return_history": True} if acts_on_history(agent) else dict(kwargs)
    start = time.perf_counter()
    envs = make_eval_envs(ENV_ID, users, kwargs)
    policy = TimedPolicy(EnvPolicy(agent, envs))
    built = time.perf_counter()
    stats = run_sessions(envs, policy, seed=0)
    loop = time.perf_counter()
    n_items, features = catalogue(envs)
    session_table(pool_sessions([stats]), n_items, features)
    end = time.perf_counter()
    return {
        "build": built - start,
        "policy": policy.seconds,
        "env": loop - built - policy.seconds,
        "metrics": end - loop,
        "user_steps": float(stats.lengths.sum()),
        "policy_rows": float(policy.rows),
    }


def measure(agent: Agent, leave: str, args: Any) -> dict[str, Any]:
    """Wall time (median of ``args.repeats``), metrics and breakdown of one agent."""
    kwargs = {"leave_model": leave}
    evaluate_online(agent, ENV_ID, 64, kwargs)  # warm-up: loads the world once
    times, table = [], {}
    for _ in range(args.repeats):
        start = time.perf_counter()
        table = evaluate_online(agent, ENV_ID, args.users, kwargs, args.seed)
        times.append(time.perf_counter() - start)
    parts = breakdown(agent, args.users, kwargs) if args.breakdown else {}
    return {"wall": statistics.median(times), "table": table, **parts}


def _cell(row: dict[str, float], digits: int = 3) -> str:
    return f"{row['mean']:.{digits}f} [{row['low']:.{digits}f}, {row['high']:.{digits}f}]"


def report(results: list[tuple[str, str, dict[str, Any]]], args: Any) -> None:
    """Print the two Markdown tables (speed, then the metrics)."""
    print(
        f"\n{args.users:,} simulated users of {ENV_ID}, one session each, torch threads "
        f"{args.threads}, load average {args.load_before:.1f} before / "
        f"{os.getloadavg()[0]:.1f} after\n"
    )
    print(
        "| policy | leave model | user-steps | wall s | users/s | build s | policy s | env s "
        "| metrics s |\n|---|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    for name, leave, r in results:
        parts = [f"{r[k]:.1f}" if k in r else "–" for k in ("build", "policy", "env", "metrics")]
        steps = f"{int(r['user_steps']):,}" if "user_steps" in r else "–"
        print(
            f"| {name} | {leave} | {steps} | {r['wall']:.1f} | {args.users / r['wall']:,.0f} | "
            + " | ".join(parts)
            + " |"
        )
    print("\n| policy | leave model | " + " | ".join(SHOWN) + " |")
    print("|---|---|" + "---|" * len(SHOWN))
    for name, leave, r in results:
        cells = [
            _cell(r["table"][m], 4 if m == "coverage" else 3) if m in r["table"] else "–"
            for m in SHOWN
        ]
        print(f"| {name} | {leave} | " + " | ".join(cells) + " |")


def main() -> None:
    """Train (or load), time, print."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--steps", type=int, default=200, help="training updates (IQL)")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path("results/bench_eval"),
        help="folder of the trained runs (reused when present)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--leave", nargs="*", default=list(LEAVE_MODELS), choices=LEAVE_MODELS)
    parser.add_argument("--only", nargs="*", default=None, help="subset of policy names")
    parser.add_argument(
        "--no-breakdown",
        dest="breakdown",
        action="store_false",
        help="skip the instrumented second run",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.load_before = os.getloadavg()[0]
    results = []
    for name, algo, encoder in AGENTS:
        if args.only and name not in args.only:
            continue
        agent = train(name, algo, encoder, args)
        for leave in args.leave:
            r = measure(agent, leave, args)
            print(f"{name} {leave}: {r['wall']:.1f} s", flush=True)
            results.append((name, leave, r))
    report(results, args)


if __name__ == "__main__":
    main()
