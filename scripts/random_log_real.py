"""Random-log lens on the real KuaiRand sample: trained agents vs popularity, random, simulator.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/random_log_real.py --steps 1500

The random-log users are split like ``noetik sim fit --random-users 0.7``: the lowest 70 % of
ids (0-349 on the sample) are the simulator's training users, the rest (350-499) are held out.
IQL and BC (MLP encoders) train on the sample's standard logs without the held-out users'
rows; popularity counts exposures in the same rows. Every scorer then ranks the videos each
held-out user was randomly shown (:mod:`noetik.evaluation.random_log`), and the script prints
a Markdown table (mean and 95 % bootstrap interval over users) for docs/results.md.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from noetik.agents.algorithms.bc import BCConfig
from noetik.agents.algorithms.iql import IQLConfig
from noetik.agents.core.base import Agent, ProblemSpec
from noetik.agents.core.trainer import TrainerConfig
from noetik.agents.networks.encoders import EncoderConfig
from noetik.data.dataset import load_kuairand
from noetik.data.transitions import Transitions, build_transitions
from noetik.evaluation.random_log import (
    RandomLogConfig,
    Scorer,
    agent_scorer,
    evaluate_random_log,
    load_random_log,
    popularity_scorer,
    random_scorer,
    simulator_scorer,
)
from noetik.simulators.kuairand.examples import (
    parse_user_spec,
    random_log_users,
    split_random_users,
)

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO.parent / "shared" / "data" / "kuairand-pure-sample"
SHOWN = ("click_auc", "click_ndcg@10", "click_recall@10", "long_view_auc", "long_view_ndcg@10")


def exclude_users(t: Transitions, users: np.ndarray) -> Transitions:
    """``t`` without the rows of ``users`` (whole users, so episodes stay intact)."""
    keep = ~np.isin(t.user_id.astype(np.int64), users)
    new_row = np.cumsum(keep) - 1
    names = ("obs", "action", "reward", "done", "episode_id", "step", "user_id", "time_ms")
    kept = {name: getattr(t, name)[keep] for name in (*names, "signals")}
    return Transitions(
        **kept,
        next_index=new_row[t.next_index[keep]],
        vocab=t.vocab,
        reward_config=t.reward_config,
    )


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=SAMPLE, help="KuaiRand folder")
    p.add_argument(
        "--random-users", default="0.7", help="simulator training users (held out: rest)"
    )
    p.add_argument("--steps", type=int, default=1500, help="gradient steps of IQL and BC")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-boot", type=int, default=1000)
    p.add_argument("--no-sim", action="store_true", help="skip fitting the simulator")
    return p.parse_args()


def _train(name: str, config: BCConfig | IQLConfig, train: Transitions, steps: int) -> Agent:
    start = time.perf_counter()
    agent = config.create(ProblemSpec.from_transitions(train))
    quiet = TrainerConfig(progress=False, tensorboard=False, log_every=max(1, steps))
    agent.fit(train, steps=steps, trainer=quiet)
    print(f"trained {name}: {steps} steps in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return agent


def _scorers(
    args: argparse.Namespace, train: Transitions, train_users: np.ndarray
) -> dict[str, Scorer]:
    mlp = EncoderConfig(kind="mlp", hidden=(256, 256))
    base = {"seed": args.seed, "device": "cpu", "encoder": mlp}
    iql = _train("IQL", IQLConfig(**base), train, args.steps)
    scorers: dict[str, Scorer] = {
        "IQL (MLP) policy": agent_scorer(iql),
        "IQL (MLP) Q values": agent_scorer(iql, "q_values"),
        "BC (MLP)": agent_scorer(_train("BC", BCConfig(**base), train, args.steps)),
        "popularity (exposures)": popularity_scorer(train),
        "popularity (clicks)": popularity_scorer(train, "is_click"),
        "random": random_scorer(args.seed),
    }
    if not args.no_sim:
        from noetik.simulators.kuairand import ResponseModelConfig, fit_response_model

        start = time.perf_counter()
        config = ResponseModelConfig(random_users=tuple(int(u) for u in train_users), seed=0)
        sim = fit_response_model(load_kuairand(args.data), config, device=torch.device("cpu"))
        print(f"fitted the simulator in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        scorers["simulator p(click)"] = simulator_scorer(sim, "is_click")
    return scorers


def main() -> None:
    args = _args()
    torch.set_num_threads(1)
    ds = load_kuairand(args.data)
    ds.prepare()
    train_users, held = split_random_users(random_log_users(ds), parse_user_spec(args.random_users))
    train = exclude_users(build_transitions(ds), held)
    log = load_random_log(ds, users=held)
    config = RandomLogConfig(n_boot=args.n_boot, seed=args.seed)
    rows = []
    for name, scorer in _scorers(args, train, train_users).items():
        result = evaluate_random_log(scorer, log, config)
        cells = [
            f"{result[m]['mean']:.3f} [{result[m]['low']:.3f}, {result[m]['high']:.3f}]"
            for m in SHOWN
        ]
        rows.append(f"| {name} | " + " | ".join(cells) + f" | {result['n_unknown']['mean']:.0f} |")
    n_users, n_rows = len(np.unique(log.user_id)), len(log.video_id)
    print(f"Command: `{shlex.join(['python', *sys.argv])}`\n")
    print(
        f"Held-out random-log users {held.min()}-{held.max()} ({n_users} users, "
        f"{n_rows:,} random impressions); agents trained on {len(train):,} standard-log rows "
        f"of the other users, {args.steps} steps, seed {args.seed}.\n"
    )
    print("| scorer | " + " | ".join(SHOWN) + " | unknown videos |")
    print("|---" * (len(SHOWN) + 2) + "|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
