"""KuaiRand-27K out of core: preparation, states and training at 1/32, 1/16 and 1/8 of its rows.

    .venv/bin/python benchmarks/bench_outofcore.py --workdir /tmp/ooc
    .venv/bin/python benchmarks/bench_outofcore.py --workdir /tmp/ooc --scales 64 --videos 100000

Synthetic KuaiRand-27K data (``noetik data synth --release 27k``: the official file names,
the standard log in four part files, 11,812 standard rows per user as in the real release) is
generated once per scale into ``--workdir/s<N>``: 27,285 / N users, so 1/N of the real
322,278,385 standard rows. The catalogue is held at ``--videos`` (default 1,000,000) at every
scale, so that what is measured is how memory and time follow the LOG: the catalogue's own
tables (vocabulary, tags, item embeddings) are the subject of the 1K benchmark
(``bench_scale.py``).

Each stage runs as its own process, as a user would run it, so that its wall time and peak
resident memory (``ru_maxrss``) are its own, with a fresh cache per scale:

* prepare: ``noetik data prepare DIR`` (every CSV validated and converted with constant memory,
  the logs into user shards; a 27K release always builds the shard store);
* states: the training split's transitions of the default task, written shard by shard into
  record files on disk (``noetik.data.ondisk``);
* train: ``noetik train iql`` for 1,000 updates, sampling batches from those files.

Goals (issue 15): peak memory flat across the three scales (within 20 %) and under 8 GB; time
linear in rows; the full 27K time projected from a least-squares line through the three
scales. Prints one table per stage and the projection; ``--json`` writes the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np

from bench_scale import run_stage

REAL_USERS = 27_285
REAL_ROWS = 322_278_385
STATES = """
import sys
from noetik.agents.core.runs import offline_transitions, task_dataset
from noetik.agents.core.task import DataSource, TaskConfig
from noetik.utils.progress import make_progress
task = TaskConfig(data=DataSource(folder=sys.argv[1], cache_dir=sys.argv[2]))
with make_progress() as progress:
    t = offline_transitions(task, task_dataset(task), progress)
print(type(t).__name__, len(t), "rows", t.n_actions, "actions")
"""


def folder_bytes(path: Path) -> int:
    """Bytes of the files under ``path``."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run_scale(scale: int, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    """Synthesize (once), then time and measure the three stages at 1/``scale`` of 27K."""
    py, noetik = sys.executable, [sys.executable, "-m", "noetik"]
    data, cache = args.workdir / f"s{scale}", args.workdir / f"cache-s{scale}"
    run = args.workdir / f"run-s{scale}"
    users = round(REAL_USERS / scale)
    if not (data / "noetik_synth.json").is_file():
        sizes = ["--users", str(users), "--videos", str(args.videos)]
        run_stage("synth", [*noetik, "data", "synth", str(data), "--release", "27k", *sizes], env)
    shutil.rmtree(cache, ignore_errors=True)
    shutil.rmtree(run, ignore_errors=True)
    rows = sum(1 for _ in open_rows(data))
    print(f"--- 1/{scale}: {users:,} users, {rows:,} standard rows", flush=True)
    out: dict[str, Any] = {"scale": scale, "users": users, "rows": rows}
    where = ["--data", str(data), "--cache", str(cache), "--out", str(run)]
    train = [*noetik, "train", "iql", *where, "--steps", str(args.steps), "--seed", "0"]
    stages = [
        ("prepare", [*noetik, "data", "prepare", str(data), "--cache", str(cache)]),
        ("states", [py, "-c", STATES, str(data), str(cache)]),
        ("train", train),
    ]
    for name, argv in stages:
        out[name] = run_stage(name, argv, env)
    out["disk_gb"] = {
        "csv": folder_bytes(data) / 1024**3,
        "cache": folder_bytes(cache) / 1024**3,
    }
    return out


def open_rows(data: Path) -> Any:
    """Every data line of the standard-log part files (header lines skipped)."""
    for path in sorted(data.glob("log_standard_*.csv")):
        with path.open("rb") as handle:
            next(handle)
            yield from handle


def report(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Print the tables and the projection; return the summary."""
    summary: dict[str, Any] = {}
    rows = np.array([r["rows"] for r in results], dtype=np.float64)
    print("\n| stage | " + " | ".join(f"1/{r['scale']}" for r in results) + " | flat? |")
    print("|---|" + "---:|" * len(results) + "---|")
    for stage in ("prepare", "states", "train"):
        peaks = [r[stage]["peak_gb"] for r in results]
        secs = np.array([r[stage]["seconds"] for r in results])
        ratio = max(peaks) / min(peaks)
        cells = " | ".join(f"{s:.1f} s, {p:.2f} GB" for s, p in zip(secs, peaks, strict=True))
        print(f"| {stage} | {cells} | max/min {ratio:.2f} |")
        slope, intercept = np.polyfit(rows, secs, 1)
        fit = slope * rows + intercept
        r2 = 1 - ((secs - fit) ** 2).sum() / max(((secs - secs.mean()) ** 2).sum(), 1e-12)
        full = slope * REAL_ROWS + intercept
        summary[stage] = {
            "peak_ratio": ratio,
            "peak_max_gb": max(peaks),
            "us_per_row": slope * 1e6,
            "intercept_s": intercept,
            "r2": r2,
            "full_27k_s": full,
        }
    print("\n| stage | µs per row | fixed s | R² | projected full 27K |")
    print("|---|---:|---:|---:|---:|")
    for stage, s in summary.items():
        print(
            f"| {stage} | {s['us_per_row']:.2f} | {s['intercept_s']:.1f} | {s['r2']:.3f} | "
            f"{s['full_27k_s'] / 60:.1f} min |"
        )
    for r in results:
        disk = r["disk_gb"]
        print(f"disk at 1/{r['scale']}: CSV {disk['csv']:.1f} GB, cache {disk['cache']:.1f} GB")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/noetik-bench-ooc"))
    parser.add_argument("--scales", type=int, nargs="+", default=[32, 16, 8])
    parser.add_argument("--videos", type=int, default=1_000_000)
    parser.add_argument("--steps", type=int, default=1_000)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    results = [run_scale(scale, args, env) for scale in args.scales]
    summary = report(results)
    if args.json:
        args.json.write_text(json.dumps({"results": results, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
