"""Online evaluation of 100,000 simulated users, in this process and on a local Ray instance.

    .venv/bin/python benchmarks/bench_eval_ray.py                    # 100,000 users
    .venv/bin/python benchmarks/bench_eval_ray.py --users 20000      # a quick run

One agent (IQL with the History Transformer, trained once on the built-in synthetic data and
reused from ``--cache``, as in ``bench_eval.py``) plays one session of ``noetik/KuaiRand-v0``
(its default simulator, leave model ``--leave``) for each of ``--users`` simulated users, with
2,000 bootstrap resamples. Timed twice: in this process (``evaluate_online`` without an
engine, torch threads ``--threads``), then on Ray (``noetik evaluate --ray``'s path:
a local instance on this machine's cores, one task per group of user blocks, each worker on one
torch thread). Ray's start-up is timed apart and included in the total. The two results must be
equal (same seeds: same users, same sessions); the benchmark stops otherwise.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from bench_eval import AGENTS, ENV_ID, train
from noetik.evaluation.online.sessions import evaluate_online
from noetik.utils.ray_engine import ray_session


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--steps", type=int, default=200, help="training updates (IQL)")
    parser.add_argument("--cache", type=Path, default=Path("results/bench_eval"))
    parser.add_argument("--threads", type=int, default=2, help="torch threads, local run")
    parser.add_argument("--leave", default="fixed", choices=("fixed", "hazard"))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    name, algo, encoder = AGENTS[0]
    agent = train(name, algo, encoder, args)
    kwargs = {"leave_model": args.leave}
    load = os.getloadavg()[0]
    evaluate_online(agent, ENV_ID, 64, kwargs)  # loads the simulator's world once
    start = time.perf_counter()
    local = evaluate_online(agent, ENV_ID, args.users, kwargs, args.seed)
    local_s = time.perf_counter() - start
    print(f"local: {local_s:.1f} s", flush=True)
    start = time.perf_counter()
    with ray_session(None) as engine:
        ready = time.perf_counter()
        remote = evaluate_online(agent, ENV_ID, args.users, kwargs, args.seed, engine=engine)
        done = time.perf_counter()
        workers = engine.workers
    if remote != local:
        raise SystemExit("Ray's results differ from the local ones")
    ray_s, start_s = done - start, ready - start
    print(
        f"\n{args.users:,} simulated users of {ENV_ID} ({name}, leave model {args.leave}), "
        f"load average {load:.1f} before / {os.getloadavg()[0]:.1f} after\n"
    )
    print("| run | wall s | users/s |\n|---|---:|---:|")
    print(f"| local, {args.threads} torch threads | {local_s:.1f} | {args.users / local_s:,.0f} |")
    print(
        f"| Ray, {workers} workers (start {start_s:.1f} s included) | {ray_s:.1f} | "
        f"{args.users / ray_s:,.0f} |"
    )
    ret = local["return"]
    print(
        f"\nequal results; return {ret['mean']:.4f} [{ret['low']:.4f}, {ret['high']:.4f}], "
        f"Ray / local time {ray_s / local_s:.2f}"
    )


if __name__ == "__main__":
    main()
