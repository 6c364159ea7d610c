"""Sweep speed: 8 trials as Ray Tune trials on a 2-CPU local Ray against one after another.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sweep.py        # goal: ratio <= 0.6
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sweep.py --steps 20 --users 20  # quick

Synthetic KuaiRand (``--synth-users`` users, 1,500 videos) and a simulator fitted on it are
made once in ``--workdir``. The sweep is IQL with a small History Transformer (batch 64), 4
weights of the attention-entropy term x 2 seeds = 8 trials of ``--steps`` updates each, every
trial then measured on ``--users`` simulated users and 64 test decisions (faithfulness off: the
trials are mostly training). The same sweep runs twice, into fresh folders:

* sequential: ``run_sweep`` in this process, the trials one after another;
* Ray: ``run_sweep(..., ray=True, num_cpus=2)``: a local Ray instance with 2 CPUs started and
  shut down inside the timing (its setup cost counts), each trial a Tune trial with one CPU.

Every trial runs with one torch thread either way. Prints both wall times, their ratio (Ray /
sequential) and whether every trial's metrics are identical; the load average is printed,
since other jobs may share the machine. About 4 to 5 minutes in all on the reference
machine; with 2 CPUs the ratio cannot go below 0.5 plus Ray's start over the sequential time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path

from noetik.analysis.sweeps import MeasureConfig, SweepConfig, run_sweep

#: A small History Transformer: about 30 ms per IQL update on one thread of the 2-core
#: reference machine, so a trial of 500 updates trains for about 15 s.
ENCODER = {"kind": "transformer", "d_model": 32, "n_layers": 1, "n_heads": 2}
#: The sweep's grid: weights x seeds = 8 trials.
WEIGHTS = (0.0, 0.1, 1.0, 10.0)
SEEDS = (0, 1)


def prepare(workdir: Path, users: int) -> tuple[str, str]:
    """The synthetic data and simulator folders in ``workdir`` (made when absent)."""
    from noetik.data.dataset import load_kuairand
    from noetik.data.synthetic import SynthConfig, synthesize
    from noetik.simulators.kuairand import ResponseModelConfig, fit_response_model

    data, sim = workdir / "data", workdir / "sim"
    if not (data / "noetik_synth.json").is_file():
        synthesize(data, SynthConfig.for_release("pure", users=users, videos=1_500, seed=0))
    ds = load_kuairand(data)  # builds the typed cache once, outside the timings
    if not (sim / "simulator.json").is_file():
        fit_response_model(ds, ResponseModelConfig(epochs=2, seed=0)).save(sim)
    return str(data), str(sim)


def _metrics(out: Path) -> dict[str, object]:
    rows = json.loads((out / "results.json").read_text())
    return {r["trial"]: {k: v for k, v in r.items() if not k.endswith("_s")} for r in rows}


def main() -> None:
    """Time the sweep both ways and print the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/noetik-bench-sweep"))
    parser.add_argument("--synth-users", type=int, default=400)
    parser.add_argument("--steps", type=int, default=500, help="IQL updates per trial")
    parser.add_argument("--users", type=int, default=200, help="simulated users per trial")
    args = parser.parse_args()
    data, sim = prepare(args.workdir, args.synth_users)
    config = SweepConfig(
        data=data,
        simulator=sim,
        agent={"encoder": ENCODER, "batch_size": 64},
        seeds=SEEDS,
        weights=WEIGHTS,
        steps=args.steps,
        measure=MeasureConfig(users=args.users, decisions=64, faithfulness=False),
    )
    seconds = {}
    for mode in ("sequential", "ray"):
        out = args.workdir / mode
        shutil.rmtree(out, ignore_errors=True)
        start = time.perf_counter()
        run_sweep(config, out, ray=mode == "ray", num_cpus=2)
        seconds[mode] = time.perf_counter() - start
        print(f"{mode:>10}: {seconds[mode]:7.1f} s for {len(WEIGHTS) * len(SEEDS)} trials")
    same = _metrics(args.workdir / "sequential") == _metrics(args.workdir / "ray")
    ratio = seconds["ray"] / seconds["sequential"]
    print(f"     ratio: {ratio:.2f} (Ray / sequential; goal <= 0.6)")
    print(f"identical metrics: {same}; load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
