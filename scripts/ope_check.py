"""Issue 5 result: off-policy estimates against the true values of simulated policies.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/ope_check.py
    OMP_NUM_THREADS=1 .venv/bin/python scripts/ope_check.py --env InterestEvolution-v0

Runs the default check (:func:`noetik.evaluation.ope.check.default_check`) of each --env
(default: RECEnv-v0 and the built-in synthetic KuaiRand-v0): n_datasets logged datasets of a
behaviour policy, the true value of each target by Monte-Carlo rollouts, and IS / WIS / PDIS /
WPDIS / DR / DM with 95 % bootstrap intervals. Prints the command, the Markdown table (for
docs/results.md) and the runtime; --out also writes the rows as JSON.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from noetik.evaluation.ope.check import default_check, format_table, run_ope_check
from noetik.utils.progress import make_progress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", action="append", help="environment (repeatable)")
    parser.add_argument("--n-datasets", type=int, help="logged datasets per environment")
    parser.add_argument("--n-episodes", type=int, help="episodes per logged dataset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args()
    changes: dict[str, Any] = {"seed": args.seed}
    if args.n_datasets:
        changes["n_datasets"] = args.n_datasets
    if args.n_episodes:
        changes["n_episodes"] = args.n_episodes
    rows: list[dict[str, Any]] = []
    seconds: dict[str, float] = {}
    with make_progress() as progress:
        for env in args.env or ["RECEnv-v0", "KuaiRand-v0"]:
            config = default_check(env, **changes)
            start = time.perf_counter()
            rows += run_ope_check(config, progress)
            seconds[env] = time.perf_counter() - start
    print("$ OMP_NUM_THREADS=1 .venv/bin/python " + shlex.join(sys.argv))
    print()
    print(format_table(rows))
    print()
    for env, sec in seconds.items():
        print(f"{env}: {sec:.0f} s")
    if args.out:
        args.out.write_text(json.dumps({"rows": rows, "seconds": seconds}, indent=2))


if __name__ == "__main__":
    main()
