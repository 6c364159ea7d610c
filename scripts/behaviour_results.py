"""Issue 6 result: behavioural analysis of the real KuaiRand sample, the built-in synthetic data
and logs simulated under learned policies.

    .venv/bin/python scripts/behaviour_results.py --out results/behaviour

Analyses the standard log of the real sample (--real, skipped when absent; its random-exposure
log too, for the comparison table) and of the built-in synthetic dataset (95 % bootstrap
intervals over users, --n-boot replicates, --seed), prints a Markdown summary per log (tables
and findings) and saves four figures per log into --out (``real_*.png``, ``real_random_*.png``,
``synthetic_*.png``). Unless --no-models: trains most-popular and a BC agent (MLP, --steps
updates) on the built-in data (runs in OUT/runs, reused when present), rolls them and a random
policy out in ``noetik/KuaiRand-v0`` (the default simulator, one session of --sim-users users
each) and analyses the simulated logs too; --run adds trained run folders. The comparison table
puts the headline numbers side by side. Writes OUT/behaviour.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import torch

from noetik.agents import ALGOS
from noetik.agents.core.base import Agent
from noetik.agents.core.runs import train_run
from noetik.agents.core.task import TaskConfig
from noetik.agents.networks.encoders import EncoderConfig
from noetik.analysis import (
    BehaviourConfig,
    BehaviourReport,
    analyse_behaviour,
    behaviour_markdown,
    save_figures,
)
from noetik.analysis.markdown import comparison_markdown
from noetik.analysis.simulated import Policy, random_policy, simulate_log
from noetik.data.dataset import load_kuairand
from noetik.evaluation.online.sessions import EnvPolicy, make_eval_envs

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "kuairand-pure-sample"


def _analyse(
    label: str, data: Any, config: BehaviourConfig, out: Path, **kw: Any
) -> BehaviourReport:
    start = time.perf_counter()
    report = analyse_behaviour(data, config, **kw)
    paths = save_figures(report, out, prefix=f"{label}_")
    took = time.perf_counter() - start
    print(
        f"<!-- {label}: analysed in {took:.1f} s; figures: {', '.join(p.name for p in paths)} -->"
    )
    return report


def _agents(args: argparse.Namespace) -> dict[str, Path]:
    runs: dict[str, Path] = {}
    for name, algo, steps in (("popular", "popular", 1), ("bc-mlp", "bc", args.steps)):
        run = args.out / "runs" / name
        if not (run / "run.json").is_file():
            config = ALGOS[algo](seed=args.seed)
            if algo == "bc":
                config = config.replace(encoder=EncoderConfig(kind="mlp"))
            start = time.perf_counter()
            with contextlib.redirect_stdout(sys.stderr):  # the progress bar is no Markdown
                train_run(config, TaskConfig(), run, steps)
            print(f"<!-- trained {name} ({steps} steps) in {time.perf_counter() - start:.0f} s -->")
        runs[name] = run
    for extra in args.run or []:
        runs[extra.name] = extra
    return runs


def _simulated(args: argparse.Namespace, config: BehaviourConfig) -> dict[str, BehaviourReport]:
    videos = load_kuairand(None).videos()
    envs = make_eval_envs("noetik/KuaiRand-v0", args.sim_users, {"return_history": True})
    policies: dict[str, Policy] = {"random": random_policy(envs, args.seed)}
    for name, run in _agents(args).items():
        agent = Agent.load(run)
        agent.eval()
        policies[name] = EnvPolicy(agent, envs, seed=args.seed)
    reports = {}
    for name, policy in policies.items():
        log = simulate_log(envs, policy, seed=args.seed)
        label = f"{name} in KuaiRand-v0"
        reports[label] = analyse_behaviour(log, config, videos=videos, name=label)
    return reports


def main() -> None:
    """Analyse, print the Markdown, save the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--real", type=Path, default=REAL, help="real KuaiRand folder")
    parser.add_argument("--n-boot", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/behaviour"))
    parser.add_argument("--sim-users", type=int, default=1_000)
    parser.add_argument("--steps", type=int, default=500, help="BC training steps")
    parser.add_argument("--run", type=Path, action="append", help="extra trained run folder")
    parser.add_argument("--no-models", action="store_true", help="skip the simulated logs")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = BehaviourConfig(n_boot=args.n_boot, seed=args.seed)
    reports: dict[str, BehaviourReport] = {}
    if (args.real / "log_standard_4_22_to_5_08_pure.csv").is_file():
        real = load_kuairand(args.real)
        reports["real sample"] = _analyse("real", real, config, args.out)
        random_log = dataclasses.replace(config, log="log_random")
        reports["real sample, random exposure"] = _analyse(
            "real_random", real, random_log, args.out
        )
    reports["synthetic"] = _analyse("synthetic", load_kuairand(None), config, args.out)
    if not args.no_models:
        reports.update(_simulated(args, config))
    detailed = ("real sample", "synthetic")
    parts = [behaviour_markdown(r) for label, r in reports.items() if label in detailed]
    parts.append("### Behaviour side by side (* robust)\n\n" + comparison_markdown(reports))
    text = "\n\n".join(parts) + "\n"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "behaviour.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
