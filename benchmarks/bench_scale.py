"""The whole pipeline at KuaiRand-1K's real size: wall time and peak memory of every stage.

    .venv/bin/python benchmarks/bench_scale.py                   # real 1K: 4,369,953 videos
    .venv/bin/python benchmarks/bench_scale.py --videos 200000 --users 100   # a quick run

Synthetic data at the real 1K size (``noetik data synth --release 1k`` defaults) is generated
once into ``--workdir``. Every stage then runs as its own process, as a user would run it, so
that its wall time and peak resident memory (``ru_maxrss`` of that process) are its own:

    synth · prepare · transitions · sim fit · train IQL (2,000 updates) · act (top-10, 1,000
    users, seen videos excluded) · evaluate (1,000 simulated users, OPE, random log) · explain
    (10 decisions) · report

Three speed figures follow, each measured inside one process after loading: IQL updates per
second at the full catalogue against 1,000 items (same network and batch), the top-10 of
1,000 users over every video, and one explained decision (after the first, which builds the
item matrices). Goals (issue 14): whole pipeline < 20 min, every stage < 12 GB, the update
rate ratio >= 0.5, top-10 < 10 s, one explanation < 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

GB = 1024**3
ROOT = Path(__file__).resolve().parents[1]


def run_stage(name: str, argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run ``argv`` as a child process; its wall time, peak RSS and exit status."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = proc.stdout.read() if proc.stdout else b""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    row = {"stage": name, "seconds": wall, "peak_gb": usage.ru_maxrss * 1024 / GB, "rc": code}
    tail = out.decode(errors="replace").strip().splitlines()[-3:]
    print(f"{name:>12}: {wall:8.1f} s {row['peak_gb']:6.2f} GB rc={code}", flush=True)
    if code != 0:
        print("\n".join("    " + line for line in tail), flush=True)
    return row


_TRANSITIONS = """
import sys
from noetik.agents.core.task import TaskConfig, DataSource
from noetik.agents.core.runs import task_transitions
t = task_transitions(TaskConfig(data=DataSource(folder=sys.argv[1])), "train")
print(len(t), "rows", t.n_actions, "actions")
"""

_SPEED = """
import json, sys, time, dataclasses
import numpy as np, torch
from pathlib import Path
from noetik.agents.core.base import ALGOS, ProblemSpec
from noetik.agents.core.runs import load_run, task_dataset, task_transitions
from noetik.agents.core.recommend import decision_states, top_k
from noetik.agents.core.serving import seen_exclusions
from noetik.explain.explain_context import run_contexts
from noetik.explain.explanation import explain_recommendation

run = Path(sys.argv[1])
out = {}
_, task, agent = load_run(run)
ds = task_dataset(task)
train = task_transitions(task, "train", ds)

def rate(n_actions):
    t = train
    if n_actions != t.n_actions:  # the same rows, actions folded onto n_actions items
        vocab = type(t.vocab).from_ids(np.arange(n_actions))
        t = dataclasses.replace(t, action=t.action % n_actions, vocab=vocab)
    a = ALGOS["iql"](device="cpu").create(ProblemSpec.from_transitions(t))
    src = a.make_source(t)
    for _ in range(20):
        a.update(src.sample())
    start = time.perf_counter()
    for _ in range(200):
        a.update(src.sample())
    return 200 / (time.perf_counter() - start)

out["iql_updates_per_s_1000_items"] = rate(1000)
out["iql_updates_per_s_full"] = rate(train.n_actions)
out["n_actions"] = int(train.n_actions)

full = task_transitions(task, None, ds)
users = np.unique(full.user_id)[:1000].astype(np.int64)
states = decision_states(agent, ds, full, users, task.states.history_len)
seen = seen_exclusions(users, full.user_id, full.action)
top_k(agent, states, 10, seen)  # builds the eval-mode item matrix once
start = time.perf_counter()
top_k(agent, states, 10, seen)
out["top10_1000_users_s"] = time.perf_counter() - start

agent, contexts = run_contexts(run, None, n_sample=4, seed=0)
start = time.perf_counter()
explain_recommendation(agent, contexts[0])
out["first_explanation_s"] = time.perf_counter() - start
times = []
for context in contexts[1:]:
    start = time.perf_counter()
    explain_recommendation(agent, context)
    times.append(time.perf_counter() - start)
out["explanation_s"] = float(np.median(times))
print("SPEED " + json.dumps(out))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/noetik-bench-scale"))
    parser.add_argument("--users", type=int, default=None, help="default: the real 1,000")
    parser.add_argument("--videos", type=int, default=None, help="default: the real 4,369,953")
    parser.add_argument("--steps", type=int, default=2_000)
    args = parser.parse_args()
    work = args.workdir
    data, sim, run = work / "data", work / "sim", work / "runs" / "iql"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "NOETIK_PROGRESS_INTERVAL": "60"}
    noetik = [sys.executable, "-m", "noetik"]
    sizes = [*(["--users", str(args.users)] if args.users else [])]
    sizes += ["--videos", str(args.videos)] if args.videos else []
    rows = []
    if not (data / "noetik_synth.json").is_file():
        rows.append(
            run_stage(
                "synth", [*noetik, "data", "synth", str(data), "--release", "1k", *sizes], env
            )
        )
    stages: list[tuple[str, list[str]]] = [
        ("prepare", [*noetik, "data", "prepare", str(data)]),
        ("transitions", [sys.executable, "-c", _TRANSITIONS, str(data)]),
        ("sim fit", [*noetik, "sim", "fit", str(data), "--out", str(sim)]),
        (
            "train iql",
            [
                *noetik,
                "train",
                "iql",
                "--data",
                str(data),
                "--sim",
                str(sim),
                "--steps",
                str(args.steps),
                "--out",
                str(run),
                "--overwrite",
            ],
        ),
        ("act", [*noetik, "act", str(run), "--sample", "1000", "--k", "10", "--json"]),
        (
            "evaluate",
            [
                *noetik,
                "evaluate",
                str(run),
                "--users",
                "1000",
                "--random-log",
                str(next(data.glob("log_random_*.csv"))),
                "--out",
                str(work / "leaderboard"),
            ],
        ),
        ("explain", [*noetik, "explain", str(run), "--sample", "10"]),
        ("report", [*noetik, "report", str(run), "--leaderboard", str(work / "leaderboard")]),
    ]
    rows += [run_stage(name, argv, env) for name, argv in stages]
    total = sum(r["seconds"] for r in rows if r["stage"] != "synth")
    print(
        f"{'pipeline':>12}: {total:8.1f} s (without synth), max peak "
        f"{max(r['peak_gb'] for r in rows):.2f} GB"
    )
    speed = subprocess.run(
        [sys.executable, "-c", _SPEED, str(run)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    line = [ln for ln in speed.stdout.splitlines() if ln.startswith("SPEED ")]
    figures = json.loads(line[0][6:]) if line else {"error": speed.stderr[-2000:]}
    if line:
        ratio = figures["iql_updates_per_s_full"] / figures["iql_updates_per_s_1000_items"]
        figures["update_rate_ratio"] = ratio
        print(
            f"IQL updates/s: {figures['iql_updates_per_s_full']:.1f} at "
            f"{figures['n_actions']:,} items, {figures['iql_updates_per_s_1000_items']:.1f} "
            f"at 1,000 items (ratio {ratio:.2f}, goal >= 0.5)"
        )
        print(
            f"top-10 for 1,000 users over every video: {figures['top10_1000_users_s']:.1f} s "
            "(goal < 10 s)"
        )
        print(
            f"one explained decision: {figures['explanation_s']:.2f} s (first one "
            f"{figures['first_explanation_s']:.1f} s; goal < 1 s)"
        )
    print(json.dumps({"stages": rows, "speed": figures}, indent=1))


if __name__ == "__main__":
    main()
