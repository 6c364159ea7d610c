"""MIPS at catalogue scale: off-policy estimates against simulated truth at 1K-100K items.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/mips_check.py --work /tmp/mips-work

Prepares once in --work (skipped when present): a synthetic KuaiRand-Pure-shaped dataset with
--videos videos (``synthesize``, ``SynthConfig.for_release("pure", users, videos)``), a small
simulator fitted on it (``fit_response_model`` with ``world.DEFAULT_FIT``) and a behaviour
cloning agent trained briefly on it (``train_run``, --bc-steps updates). Then, for each --size,
runs the OPE check (:func:`noetik.evaluation.ope.check.run_ope_check`) in
``noetik/KuaiRand-v0`` on that simulator with every video a candidate (``candidate_pool="all"``)
cut to --size videos evenly spaced (``pool_size``): a random linear behaviour policy, and as
targets the BC agent's own softmax over the pool (``PolicySpec`` scorer ``"agent"``), a cooler
linear policy and (at most --oracle-max items) the simulator's oracle; IS / WIS / PDIS / WPDIS
and MIPS / SNMIPS over the videos' main tag. Prints the command, the Markdown table, MIPS's
relative RMSE over IS's per size and target, and the runtime; --out writes the rows as JSON.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from noetik.agents.algorithms.bc import BCConfig
from noetik.agents.core.runs import train_run
from noetik.agents.core.task import DataSource, TaskConfig
from noetik.data.dataset import load_kuairand
from noetik.data.synthetic import SynthConfig, synthesize
from noetik.evaluation.ope.check import (
    DEFAULT_BEHAVIOUR,
    OPECheckConfig,
    format_table,
    run_ope_check,
)
from noetik.evaluation.ope.simulated_logs import PolicySpec
from noetik.simulators.kuairand.fit import fit_response_model
from noetik.simulators.kuairand.world import DEFAULT_FIT
from noetik.utils.progress import make_progress

ESTIMATORS = ("IS", "WIS", "PDIS", "WPDIS", "MIPS", "SNMIPS")


def prepare(work: Path, users: int, videos: int, bc_steps: int) -> tuple[Path, Path, Path]:
    """``(data, simulator, BC run)`` folders in ``work``, each made unless already there."""
    data, sim, run = work / "data", work / "sim", work / "bc"
    if not (data / "video_features_basic_pure.csv").is_file():
        synthesize(data, SynthConfig.for_release("pure", users=users, videos=videos, seed=0))
    if not (sim / "simulator.json").is_file():
        model = fit_response_model(load_kuairand(data), DEFAULT_FIT, device=torch.device("cpu"))
        model.save(sim)
    if not (run / "model.safetensors").is_file():
        task = TaskConfig(DataSource(str(data)), simulator=str(sim))
        train_run(BCConfig(seed=0), task, run, bc_steps, overwrite=True)
    return data, sim, run


def check_config(args: argparse.Namespace, size: int, dirs: tuple[Path, Path, Path]) -> Any:
    """The OPE check of ``size`` items (see the module doc)."""
    data, sim, run = dirs
    targets = [
        PolicySpec("bc-agent", "agent", temperature=1.0, run_dir=str(run)),
        PolicySpec("cooler", "linear", temperature=0.8, epsilon=0.1, close=True),
    ]
    if size <= args.oracle_max:
        targets.append(PolicySpec("oracle", "oracle", temperature=0.5, epsilon=0.1))
    options = {"sim_dir": str(sim), "data_dir": str(data), "candidate_pool": "all"}
    return OPECheckConfig(
        env_id="noetik/KuaiRand-v0",
        env_options=options,
        pool_size=size,
        horizon=args.horizon,
        n_episodes=args.n_episodes,
        n_datasets=args.n_datasets,
        behaviour=DEFAULT_BEHAVIOUR,
        targets=tuple(targets),
        estimators=ESTIMATORS,
        n_boot=args.n_boot,
        n_truth=args.n_truth,
        truth_batch=min(args.n_truth, max(200, 2_000_000 // size)),
        seed=args.seed,
    )


def ratios(rows: list[dict[str, Any]]) -> str:
    """MIPS's relative RMSE over IS's per (items, target), as Markdown lines."""
    lines = ["| items | policy | rel. RMSE IS | rel. RMSE MIPS | MIPS / IS | goal (<= 0.5) |"]
    lines.append("|---|---|---|---|---|---|")
    keyed = {(r["items"], r["policy"], r["estimator"]): r for r in rows}
    for items, policy, est in keyed:
        if est != "IS":
            continue
        ips, mips = keyed[items, policy, "IS"]["rel_rmse"], keyed[items, policy, "MIPS"]["rel_rmse"]
        share = mips / ips if ips > 0 else np.nan
        goal = "" if items < 10_000 else ("met" if share <= 0.5 else "missed")
        lines.append(f"| {items:,} | {policy} | {ips:.3g} | {mips:.3g} | {share:.3g} | {goal} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="folder of data, sim, BC run")
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--videos", type=int, default=100_000)
    parser.add_argument("--bc-steps", type=int, default=300)
    parser.add_argument("--size", type=int, action="append", help="pool size (repeatable)")
    parser.add_argument("--horizon", type=int, default=5)
    parser.add_argument("--n-episodes", type=int, default=300)
    parser.add_argument("--n-datasets", type=int, default=20)
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("--n-truth", type=int, default=3_000)
    parser.add_argument("--oracle-max", type=int, default=10_000, help="largest pool with oracle")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args()
    dirs = prepare(args.work, args.users, args.videos, args.bc_steps)
    rows: list[dict[str, Any]] = []
    seconds: dict[int, float] = {}
    with make_progress() as progress:
        for size in args.size or [1_000, 10_000, 100_000]:
            start = time.perf_counter()
            for row in run_ope_check(check_config(args, size, dirs), progress):
                rows.append({"items": size, **row})
            seconds[size] = time.perf_counter() - start
    print("$ OMP_NUM_THREADS=1 .venv/bin/python " + shlex.join(sys.argv))
    print()
    for size in seconds:
        print(f"{size:,} items:")
        print(format_table([r for r in rows if r["items"] == size]))
        print()
    print(ratios(rows))
    print()
    for size, sec in seconds.items():
        print(f"{size:,} items: {sec:.0f} s")
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "seconds": seconds}, indent=2))


if __name__ == "__main__":
    main()
