"""The real_exposure lens against a synthetic world's TRUE one-step rates (bias, RMSE, coverage).

    OMP_NUM_THREADS=1 .venv/bin/python scripts/real_exposure_check.py --users 1000 --videos 2000

Synthesises a KuaiRand-Pure-shaped dataset (``--users`` x ``--videos``, seed ``--data-seed``;
or reads the synthetic folder ``--data``), keeps its random log's contexts fixed and redraws
the log ``--repeats`` times (:func:`noetik.evaluation.real_exposure_check.run_exposure_check`)
for the default policies (uniform, popularity, a fixed random linear softmax, popularity
ε-greedy). Prints the command, the Markdown table (for docs/simulator.md) and the runtime;
--out also writes the rows as JSON.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

from noetik.data.dataset import load_kuairand
from noetik.data.synthetic import SynthConfig, synthesize
from noetik.data.transitions import build_transitions
from noetik.evaluation.random_log import load_random_log
from noetik.evaluation.real_exposure import exposure_pool
from noetik.evaluation.real_exposure_check import (
    ExposureCheckConfig,
    default_policies,
    format_check,
    run_exposure_check,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="a synthetic dataset folder (else synthesised)")
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--videos", type=int, default=2_000)
    parser.add_argument("--data-seed", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=200, help="redrawn random logs")
    parser.add_argument("--n-boot", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data
        if root is None:
            root = Path(tmp) / "data"
            config = SynthConfig.for_release(
                "pure", users=args.users, videos=args.videos, seed=args.data_seed
            )
            synthesize(root, config)
        ds = load_kuairand(root, cache_dir=Path(tmp) / "cache")
        log = load_random_log(ds)
        pool = exposure_pool(ds, log)
        policies = default_policies(log, pool, build_transitions(ds, split="train"), args.seed)
        check = ExposureCheckConfig(repeats=args.repeats, n_boot=args.n_boot, seed=args.seed)
        rows = run_exposure_check(ds, log, pool, policies, check)
    seconds = time.perf_counter() - start
    users = len(set(log.user_id.tolist()))
    print("$ OMP_NUM_THREADS=1 .venv/bin/python " + shlex.join(sys.argv))
    print()
    print(
        f"{len(log.video_id):,} random impressions of {users:,} users, pool of {len(pool):,} "
        f"videos, {args.repeats} redrawn logs, {args.n_boot} bootstrap resamples each"
    )
    print()
    print(format_check(rows))
    print()
    print(f"{seconds:.0f} s")
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "seconds": seconds}, indent=2))


if __name__ == "__main__":
    main()
