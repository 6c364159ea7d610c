"""Steps per second of the Noetik environments, single and batched, against RECGym.

RECGym (SCOPE-RL's ``recgym``) runs in its own interpreter, never in the project's venv::

    python3.11 -m venv /tmp/peer-scope-rl
    /tmp/peer-scope-rl/bin/pip install torch==2.13.0 && /tmp/peer-scope-rl/bin/pip install scope-rl

Then::

    .venv/bin/python benchmarks/bench_envs.py --peer-python /tmp/peer-scope-rl/bin/python

Setting (the same for both): ``RECEnv`` with 100 items, 100 users, 5-dim features, 10-step
episodes, uniformly random actions drawn beforehand (so action sampling is not timed). Each
figure is the median of ``--repeats`` runs. RECGym resets itself at episode end; our single
env is reset by the loop, through ``gymnasium.make`` (its wrappers included).
To add an environment, add a line to :data:`CASES`.

``noetik/KuaiRand-v0`` runs its default simulator (fitted once on the built-in synthetic data,
a 2 x 64 MLP) unless ``--kuairand-sim-dir DIR`` names a fitted run (e.g. ``noetik sim fit``'s
default 2 x 256 MLP); batched figures are user-steps per second (``--num-envs`` users per call,
one batched model call each), on CPU unless CUDA is available. Its goal: >= 100,000 batched
user-steps per second on 2 cores. Its rows with ensemble options (``ensemble``, ``pessimism``:
one batched call per member) need a simulator with members: when the simulator has none, the
benchmark copies it to a temporary folder and fits ``--members`` members there first
(``noetik sim ensemble``), so the plain and ensemble rows share one base model.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

import noetik.envs  # noqa: F401  (registers the ids)

#: (env id, options) measured by :func:`bench_env`.
CASES: list[tuple[str, dict[str, Any]]] = [
    ("noetik/RECEnv-v0", {"n_items": 100, "n_users": 100, "step_per_episode": 10}),
    ("noetik/InterestEvolution-v0", {}),
    ("noetik/KuaiRand-v0", {}),
    ("noetik/KuaiRand-v0", {"ensemble": "mean"}),
    ("noetik/KuaiRand-v0", {"ensemble": "sample"}),
    ("noetik/KuaiRand-v0", {"pessimism": 1.0}),
    ("noetik/KuaiRand-v0", {"ensemble": "mean", "pessimism": 1.0}),
]
#: Options of KuaiRand-v0 that need ensemble members.
ENSEMBLE_OPTIONS = ("ensemble", "pessimism")
#: Fewer single-env steps per run for environments that are slow one user at a time.
SINGLE_STEPS: dict[str, int] = {"noetik/KuaiRand-v0": 10_000}

PEER_SCRIPT = """
import sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
from recgym import RECEnv
steps = int(sys.argv[1])
env = RECEnv(step_per_episode=10, n_items=100, n_users=100, item_feature_dim=5,
             user_feature_dim=5, random_state=0)
env.reset(seed=0)
actions = np.random.default_rng(0).integers(0, 100, size=steps).tolist()
start = time.perf_counter()
for a in actions:
    env.step(a)
print(steps / (time.perf_counter() - start))
"""


def _actions(space: gym.Space[Any], n: int, seed: int = 0) -> np.ndarray:
    """``n`` random actions of ``space`` (Discrete or MultiDiscrete), drawn up front."""
    rng = np.random.default_rng(seed)
    if isinstance(space, gym.spaces.Discrete):
        return rng.integers(0, int(space.n), size=n)
    nvec = np.asarray(space.nvec)  # type: ignore[attr-defined]
    return rng.integers(0, nvec, size=(n, *nvec.shape))


def single_steps_per_second(env_id: str, options: dict[str, Any], steps: int) -> float:
    """One user at a time through ``gymnasium.make``, resetting when an episode ends."""
    env = gym.make(env_id, **options)
    actions = list(_actions(env.action_space, steps))
    if isinstance(env.action_space, gym.spaces.Discrete):
        actions = [int(a) for a in actions]  # Python ints, as RECGym is given
    env.reset(seed=0)
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def batched_steps_per_second(
    env_id: str, options: dict[str, Any], num_envs: int, calls: int
) -> float:
    """User-steps per second of the native vector env (autoreset included)."""
    env = gym.make_vec(
        env_id, num_envs=num_envs, vectorization_mode="vector_entry_point", **options
    )
    actions = _actions(env.single_action_space, calls * num_envs).reshape(calls, num_envs, -1)
    actions = (
        actions.squeeze(-1) if isinstance(env.single_action_space, gym.spaces.Discrete) else actions
    )
    env.reset(seed=0)
    start = time.perf_counter()
    for batch in actions:
        env.step(batch)
    return calls * num_envs / (time.perf_counter() - start)


def recgym_steps_per_second(peer_python: str, steps: int) -> float:
    """RECGym's steps per second, measured in the peer interpreter."""
    out = subprocess.run(
        [peer_python, "-c", PEER_SCRIPT, str(steps)], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def bench_env(
    env_id: str, options: dict[str, Any], args: argparse.Namespace, peer: str | None = None
) -> dict[str, float]:
    """Median single and batched steps per second of ``env_id``: the hook for new envs.

    With ``peer`` (an interpreter with scope-rl), RECGym runs between our single-env runs, so
    both see the same machine load; its median is returned as ``"recgym"``.
    """
    single, peer_runs = [], []
    steps = min(args.steps, SINGLE_STEPS.get(env_id, args.steps))
    for _ in range(args.repeats):
        single.append(single_steps_per_second(env_id, options, steps))
        if peer:
            peer_runs.append(recgym_steps_per_second(peer, args.steps))
    batched = [
        batched_steps_per_second(env_id, options, args.num_envs, args.calls)
        for _ in range(args.repeats)
    ]
    result = {"single": statistics.median(single), "batched": statistics.median(batched)}
    if peer_runs:
        result["recgym"] = statistics.median(peer_runs)
    return result


def label(env_id: str, options: dict[str, Any]) -> str:
    """A row's name: the env id, then the ensemble options of the row, if any."""
    extra = " ".join(f"{k}={v}" for k, v in options.items() if k in ENSEMBLE_OPTIONS)
    return f"{env_id} {extra}".strip()


def ensemble_sim_dir(sim_dir: str | None, members: int, scratch: Path) -> str:
    """``sim_dir`` (None: the default simulator) when it has ensemble members, else a copy in
    ``scratch`` with ``members`` members fitted on the same examples."""
    from noetik.simulators.kuairand.ensemble import EnsembleConfig, add_members
    from noetik.simulators.kuairand.store import MEMBERS_FILE
    from noetik.simulators.kuairand.world import default_simulator_dir

    source = Path(sim_dir) if sim_dir else default_simulator_dir()
    if (source / MEMBERS_FILE).is_file():
        return str(source)
    copy = scratch / "sim"
    shutil.copytree(source, copy)
    add_members(copy, EnsembleConfig(members=members))
    return str(copy)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer-python", help="interpreter of a venv with scope-rl installed")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=50_000, help="single-env steps per run")
    parser.add_argument("--num-envs", type=int, default=4096, help="users per batched call")
    parser.add_argument("--calls", type=int, default=100, help="batched calls per run")
    parser.add_argument("--kuairand-sim-dir", help="fitted simulator run for KuaiRand-v0")
    parser.add_argument("--only", help="measure only this env id")
    parser.add_argument(
        "--members", type=int, default=5, help="ensemble members fitted when the sim has none"
    )
    parser.add_argument("--no-ensemble", action="store_true", help="skip the ensemble rows")
    args = parser.parse_args(argv)

    cases = [
        (env_id, options)
        for env_id, options in CASES
        if args.only in (None, env_id)
        and not (args.no_ensemble and set(options) & set(ENSEMBLE_OPTIONS))
    ]
    with tempfile.TemporaryDirectory() as scratch:
        ens_dir = None
        if any(set(options) & set(ENSEMBLE_OPTIONS) for _, options in cases):
            ens_dir = ensemble_sim_dir(args.kuairand_sim_dir, args.members, Path(scratch))
        results = {}
        sim_dir = ens_dir or args.kuairand_sim_dir
        for env_id, options in cases:  # RECGym runs beside RECEnv-v0, its counterpart
            given = {**options, "sim_dir": sim_dir} if "KuaiRand" in env_id and sim_dir else options
            peer = args.peer_python if env_id == "noetik/RECEnv-v0" else None
            results[label(env_id, options)] = bench_env(env_id, given, args, peer)
    print(f"median of {args.repeats} runs; batched = {args.num_envs} users per call")
    print(f"{'environment':52s} {'single steps/s':>16s} {'batched user-steps/s':>21s}")
    for name, r in results.items():
        print(f"{name:52s} {r['single']:16,.0f} {r['batched']:21,.0f}")
    plain = results.get("noetik/KuaiRand-v0")
    for name, r in results.items():
        if plain and name.startswith("noetik/KuaiRand-v0 "):
            ratio = r["batched"] / plain["batched"]
            print(f"{name}: batched {ratio:.2f}x, single {r['single'] / plain['single']:.2f}x")
    ours = results.get("noetik/RECEnv-v0", {})
    if "recgym" in ours:
        peer = ours["recgym"]
        print(f"{'recgym.RECEnv (scope-rl)':52s} {peer:16,.0f} {'':>16s}")
        print(
            f"RECEnv-v0 / RECGym: single {ours['single'] / peer:.2f}x, "
            f"batched {ours['batched'] / peer:.0f}x"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
