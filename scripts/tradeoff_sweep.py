"""Issue 6 result: the engagement-versus-interpretability trade-off of IQL on synthetic KuaiRand.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/tradeoff_sweep.py --steps 1000 \\
        --term attention_entropy --weights 0 0.01 0.1 1

A thin call of ``noetik sweep`` (:mod:`noetik.analysis.sweeps`): trains IQL with the History
Transformer on the training split of the standard log of the synthetic KuaiRand data in
--data (default results/agents/data; synthesized into --out/data like
scripts/agent_results.py does when absent) once per weight of one interpretability term
(same seed and budget for every weight), then measures each agent: engagement (one
KuaiRand-v0 session for each of --users simulated users of --sim, default
results/agents/sim, fitted into --out/sim when absent), attention entropy, the IG top-3 share,
attention-IG agreement and faithfulness on --decisions logged test decisions
(:mod:`noetik.analysis.sweeps.measure`).

Prints the Markdown table and writes the sweep folder --out (default results/tradeoff):
results.json, results.csv, table.md, pareto.png and one run folder per weight under trials/.
Trials already finished there are reused. --ray runs the weights as Ray Tune trials.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from noetik.analysis.sweeps import MeasureConfig, SweepConfig, run_sweep
from noetik.analysis.sweeps.config import TERMS
from noetik.utils.progress import make_progress


def _synthetic_data(out: Path, users: int, seed: int) -> Path:
    from noetik.data.schema import Release
    from noetik.data.synthetic import SynthConfig, synthesize

    data = out / "data"
    if not (data / "noetik_synth.json").is_file():
        synthesize(data, SynthConfig.for_release(Release.PURE, users=users, videos=2000, seed=seed))
    return data


def main() -> None:
    """Run the weight sweep and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("results/agents/data"))
    parser.add_argument("--sim", type=Path, default=Path("results/agents/sim"))
    parser.add_argument("--synth-users", type=int, default=4_000)
    parser.add_argument("--term", choices=TERMS, default="attention_entropy")
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.01, 0.1, 1.0])
    parser.add_argument("--steps", type=int, default=1_000)
    parser.add_argument("--samples", type=int, default=32, help="rows of the gradient terms")
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--decisions", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/tradeoff"))
    parser.add_argument("--ray", action="store_true", help="run the weights as Ray Tune trials")
    args = parser.parse_args()
    data = args.data
    if not (data / "noetik_synth.json").is_file() and not any(data.glob("*.csv")):
        data = _synthetic_data(args.out, args.synth_users, args.seed)
    config = SweepConfig(
        data=str(data),
        simulator=str(args.sim) if (args.sim / "simulator.json").is_file() else None,
        agent={"encoder": {"kind": "transformer"}, "interpretability": {"samples": args.samples}},
        seeds=(args.seed,),
        term=args.term,
        weights=tuple(args.weights),
        steps=args.steps,
        measure=MeasureConfig(users=args.users, decisions=args.decisions, seed=args.seed),
    )
    with make_progress() as progress:
        run_sweep(config, args.out, ray=args.ray, progress=progress)
    print(
        f"\nIQL-Transformer, {args.steps} steps, seed {args.seed}; {args.users:,} simulated "
        f"users (one KuaiRand-v0 session each); {args.decisions} test decisions\n"
    )
    print((args.out / "table.md").read_text(), end="")
    print(f"\nplot: {args.out / 'pareto.png'}")


if __name__ == "__main__":
    main()
