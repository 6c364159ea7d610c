"""Issue 4 result: agents trained offline on synthetic KuaiRand, compared in KuaiRand-v0.

    .venv/bin/python scripts/agent_results.py --steps 1500 --users 1000 --synth-users 4000

Without --data, writes a synthetic KuaiRand-Pure dataset of --synth-users users and 2,000
videos (seed --seed) into OUT/data. Fits the KuaiRand simulator on the data (unless --sim is
given), trains IQL (Transformer and
MLP encoders), BC (MLP and Transformer), random and most-popular on the training split of the
standard log with the same budget and seed, then evaluates every agent with one 10-step session
for each of --users simulated users (95 % bootstrap intervals). Prints a Markdown table for
docs/results.md and writes results.json into --out.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import torch

from noetik.agents import ALGOS
from noetik.agents.core.runs import train_run
from noetik.agents.core.task import DataSource, TaskConfig
from noetik.agents.networks.encoders import EncoderConfig
from noetik.data.dataset import load_kuairand
from noetik.evaluation.leaderboard import LeaderboardConfig, evaluate_run, write_leaderboard

TRANSFORMER = EncoderConfig(kind="transformer")
MLP = EncoderConfig(kind="mlp")

#: (run name, algorithm, encoder or None for the algorithm's default)
AGENTS: list[tuple[str, str, EncoderConfig | None]] = [
    ("iql-transformer", "iql", TRANSFORMER),
    ("iql-mlp", "iql", MLP),
    ("bc-mlp", "bc", MLP),
    ("bc-transformer", "bc", TRANSFORMER),
    ("popular", "popular", None),
    ("random", "random", None),
]


def _fit_simulator(data: Path, out: Path, seed: int) -> Path:
    from noetik.simulators.kuairand import ResponseModelConfig, fit_response_model

    sim_dir = out / "sim"
    if not (sim_dir / "simulator.json").is_file():
        sim = fit_response_model(load_kuairand(data), ResponseModelConfig(seed=seed))
        sim.save(sim_dir)
    return sim_dir


def _synthetic_data(out: Path, users: int, seed: int) -> Path:
    from noetik.data.schema import Release
    from noetik.data.synthetic import SynthConfig, synthesize

    data = out / "data"
    if not (data / "noetik_synth.json").is_file():
        synthesize(data, SynthConfig.for_release(Release.PURE, users=users, videos=2000, seed=seed))
    return data


def _train(name: str, algo: str, encoder: EncoderConfig | None, args: Any, data: Path) -> Path:
    config = ALGOS[algo](seed=args.seed)
    if encoder is not None:
        config = config.replace(encoder=dataclasses.replace(encoder))
    run = args.out / "runs" / name
    if (run / "run.json").is_file():  # already trained by an earlier invocation: reuse it
        return run
    steps = args.steps if algo not in ("random", "popular") else 1
    start = time.perf_counter()
    train_run(config, TaskConfig(DataSource(str(data))), run, steps)
    print(f"trained {name} ({steps} steps) in {time.perf_counter() - start:.0f} s")
    return run


def _row(entry: dict[str, Any]) -> str:
    cells = [Path(entry["run"]).name]
    for metric in ("return", "is_click_rate", "watch_ratio", "coverage"):
        v = entry["online"][metric]
        cells.append(f"{v['mean']:.3f} [{v['low']:.3f}, {v['high']:.3f}]")
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    """Train, evaluate, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="default: built-in synthetic")
    parser.add_argument("--synth-users", type=int, default=4_000, help="users of OUT/data")
    parser.add_argument("--sim", type=Path, default=None, help="fitted simulator run folder")
    parser.add_argument("--steps", type=int, default=2_000)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/agents"))
    parser.add_argument("--only", nargs="*", default=None, help="subset of run names")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = args.data or _synthetic_data(args.out, args.synth_users, args.seed)
    sim_dir = args.sim or _fit_simulator(data, args.out, args.seed)
    entries = []
    for name, algo, encoder in AGENTS:
        if args.only and name not in args.only:
            continue
        run = _train(name, algo, encoder, args, data)
        board = LeaderboardConfig(
            env_kwargs=(("sim_dir", str(sim_dir)),), n_users=args.users, seed=args.seed, ope=False
        )
        entries.append(evaluate_run(run, board))
    write_leaderboard(entries, args.out)
    (args.out / "results.json").write_text(json.dumps(entries, indent=2))
    print(f"\n{args.users:,} simulated users, one 10-step session each, seed {args.seed}")
    print("| agent | return | click rate | watch ratio | coverage |\n|---|---|---|---|---|")
    for entry in sorted(entries, key=lambda e: -e["online"]["return"]["mean"]):
        print(_row(entry))


if __name__ == "__main__":
    main()
