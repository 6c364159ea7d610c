"""Training speed of our agents against d3rlpy (offline Q-learning) and Stable-Baselines3 (PPO).

Each peer runs in its own interpreter, never in the project's venv::

    python3.11 -m venv /tmp/peer-d3rlpy
    /tmp/peer-d3rlpy/bin/pip install torch==2.13.0 && /tmp/peer-d3rlpy/bin/pip install d3rlpy
    python3.11 -m venv /tmp/peer-sb3
    /tmp/peer-sb3/bin/pip install torch==2.13.0
    /tmp/peer-sb3/bin/pip install stable-baselines3 gymnasium

Then::

    .venv/bin/python benchmarks/bench_train.py --d3rlpy-python /tmp/peer-d3rlpy/bin/python \\
        --sb3-python /tmp/peer-sb3/bin/python --threads 1

``--threads N`` sets torch's threads on every side (ours and both peers). On a loaded machine
use 1: with 2 threads per process and other jobs running, the threads wait on each other and
small-matrix work slows down up to 10x (SB3 PPO went from 504 to 78 steps/s here), differently
for each side. Figures are medians; the last column, the median of the ratios of runs taken
back to back, is the one to trust on a noisy machine.

Offline (gradient updates per second): the same synthetic dataset on both sides (``--rows``
transitions of 128-d float32 states drawn from a fixed seed, 1,000 actions, random rewards,
episodes ending with probability 1/50; ours stores states as float16 like every prepared log,
and d3rlpy gets exactly those values as float32). Both sides use a [256, 256] MLP encoder, a
dense 1,000-action head, batch 256, Adam, target update every 8,000 steps (never reached, so
no copy is timed), one critic. A timed update includes sampling its batch: ours is the
trainer's inner loop ``meter.add(agent.update(source.sample()))`` (device replay, metrics
summed on the device, one sync at the end), d3rlpy's is
``algo.update(ds.sample_transition_batch(256))``. Each measurement builds a fresh agent, runs
``--warmup`` updates, then times ``--updates``; ours and the peer alternate, ``--repeats``
times, and the medians are reported. d3rlpy has no discrete IQL: our IQL's ratio is given
against d3rlpy's ``DiscreteCQL`` as the nearest reference, labelled so. A bare PyTorch loop
of the same networks (DQN-style: Huber TD loss on max of a target copy, torch indexing for
sampling) is the floor reference.

PPO (environment steps per second of training): :class:`ToyRecEnv` (Discrete(1000), 128-d
observations from a fixed bank, reward ``action % 7 == 0``, 200-step episodes) for both sides,
the same hyperparameters (n_steps 2048 per env, minibatch 64, 10 epochs, separate [64, 64]
ReLU policy and value networks (SB3 is given ``activation_fn=ReLU``, our MLP's activation),
lr 3e-4, clip 0.2, GAE 0.95, max grad norm 0.5); one env, and 8 envs (a Gymnasium
``SyncVectorEnv`` for ours, SB3's ``DummyVecEnv`` for SB3). After one warm-up rollout and
update, ``--ppo-rollouts`` rollouts + updates are timed.

Catalogue-size sweep (``--sweep``; only the sweep runs)::

    .venv/bin/python benchmarks/bench_train.py --sweep --threads 1 \\
        --d3rlpy-python /tmp/peer-d3rlpy/bin/python

For each of ``--sweep-sizes`` actions (1,000, 10,000, 100,000, 1,000,000 and 4,369,953, the
videos of KuaiRand-1K), gradient updates per second of our DQN, our IQL and d3rlpy's DQN,
alternating, ``--repeats`` times (3 by default here: ``--warmup`` 20, ``--updates`` 100). The
dataset is the one above at every size (``--rows`` transitions; the same states, rewards and
episode ends), only its actions are drawn from the larger range (their logged counts are our
proposal's). Same network ([256, 256] MLP encoder) and batch (256) on both sides; from
``AgentConfig.catalogue.min_actions`` (100,000) actions on, our agents use the catalogue
representation (content + hashed-id item tower; DQN's maximum over sampled candidates, IQL's
sampled softmax), d3rlpy keeps its dense Linear(256, A) head. Each timed run stops after
``--max-seconds`` (15 by default here) and its warm-up after half of it (at least 2 warm-up
updates), so a slow side is timed over fewer updates: the table says how many then.
d3rlpy runs in a fresh interpreter per size, started only when its memory estimate fits what
is available (:func:`d3rlpy_bytes`: 5 copies of the head (weights, target, gradient, Adam's
two moments) of 257 x A float32, about 7 (batch, A) float32 activations, 1 GB for the rest);
otherwise the row says "out of memory (needs about X GB)". Its address space is capped at
that budget, so an allocation past it fails in the peer ("out of memory: ...") rather than
waking the kernel's OOM killer; any other failure is reported as "failed: ...". Peaks are
``ru_maxrss``: d3rlpy's is that size's process; ours is our process's high-water mark so far
(sizes run in increasing order, so it is the largest size's peak or an earlier one).

``--profile ALGO`` prints where our update's time goes (``torch.profiler``) instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import nn

N_ACTIONS = 1000
OBS_DIM = 128
BATCH = 256
HIDDEN = (256, 256)
LR = 6.25e-5  # d3rlpy's default for DQN and DiscreteCQL
GAMMA = 0.99
TARGET_UPDATE = 8000  # d3rlpy's default: never reached in a timed run
PPO_HIDDEN = (64, 64)
PPO_N_STEPS = 2048
PPO_MINIBATCH = 64
PPO_EPOCHS = 10

#: Fields of our configs, set only where the config class has them (the rest is printed).
OURS_CONFIG: dict[str, dict[str, Any]] = {
    "common": {"seed": 0, "batch_size": BATCH, "lr": LR, "gamma": GAMMA},
    # d3rlpy's DQN is vanilla (target picks a*), its DiscreteCQL is double DQN; hard copies
    "dqn": {"double": False, "n_critics": 1, "tau": 1.0, "target_update_interval": TARGET_UPDATE},
    "cql": {"double": True, "n_critics": 1, "tau": 1.0, "target_update_interval": TARGET_UPDATE},
    "iql": {},  # its own defaults (twin Q, V, policy; Polyak target after every update)
    "ppo": {  # SB3's PPO defaults, with SB3's n_steps / batch / epochs from the issue
        "lr": 3e-4,
        "n_steps": PPO_N_STEPS,
        "batch_size": PPO_MINIBATCH,  # our PPO's batch_size is the minibatch size
        "update_epochs": PPO_EPOCHS,
        "clip_coef": 0.2,
        "clip_vloss": False,  # SB3: clip_range_vf=None
        "norm_adv": True,
        "gae_lambda": 0.95,
        "ent_coef": 0.0,
        "vf_coef": 0.5,
        "max_grad_norm": 0.5,
        "shared_encoder": False,  # SB3: separate policy and value networks
    },
}

# ---------------------------------------------------------------------------------------------
# Shared by both sides (the peer interpreters import this file: no noetik import at top level)


def make_dataset(n: int, seed: int = 0, n_actions: int = N_ACTIONS) -> dict[str, np.ndarray]:
    """The synthetic offline log: float16-exact states, actions in ``[0, n_actions)``, rewards,
    episode ends. Actions come from their own stream: states, rewards and episode ends are the
    same for every ``n_actions``."""
    rng = np.random.default_rng(seed)
    obs = rng.standard_normal((n, OBS_DIM), dtype=np.float32).astype(np.float16)
    reward = rng.random(n, dtype=np.float32)
    terminal = rng.random(n) < 0.02
    terminal[-1] = True
    action = np.random.default_rng([seed, 1]).integers(0, n_actions, n, dtype=np.int64)
    return {"obs": obs, "action": action, "reward": reward, "terminal": terminal}


def timed_rate(
    step: Callable[[], object],
    warmup: int,
    updates: int,
    max_seconds: float = 0.0,
    finish: Callable[[], object] = lambda: None,
) -> tuple[float, int]:
    """``step`` per second over ``updates`` timed calls after ``warmup`` untimed ones, and how
    many were timed. ``max_seconds`` (0: none) caps the timed loop, and half of it the warm-up
    (at least 2 warm-up calls: the first allocates the optimiser's state); ``finish`` (a sync)
    is timed too."""
    start = time.perf_counter()
    for i in range(warmup):
        step()
        if max_seconds and i >= 1 and time.perf_counter() - start > max_seconds / 2:
            break
    finish()
    n = 0
    start = time.perf_counter()
    while n < updates:
        step()
        n += 1
        if max_seconds and time.perf_counter() - start > max_seconds:
            break
    finish()
    return n / (time.perf_counter() - start), n


class ToyRecEnv(gym.Env[np.ndarray, int]):
    """Discrete(1000) actions, 128-d observations from a fixed bank, a trivial step."""

    def __init__(self, episode_len: int = 200, seed: int = 0) -> None:
        self.action_space = gym.spaces.Discrete(N_ACTIONS)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)
        self.episode_len = episode_len
        self._bank = np.random.default_rng(seed).standard_normal((64, OBS_DIM), dtype=np.float32)
        self._t = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._t = 0
        return self._bank[0], {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._t += 1
        reward = float(int(action) % 7 == 0)
        return self._bank[self._t % 64], reward, False, self._t >= self.episode_len, {}


# ---------------------------------------------------------------------------------------------
# Peers (each runs in its own interpreter; commands on stdin, one JSON line per answer)

_LOAD_SELF = """
import importlib.util, json, sys, time, warnings
warnings.filterwarnings("ignore")
spec = importlib.util.spec_from_file_location("bench_train", sys.argv[1])
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)
import numpy as np
import torch
if int(sys.argv[2]):
    torch.set_num_threads(int(sys.argv[2]))
"""

D3RLPY_PEER = (
    _LOAD_SELF
    + """
import gc, resource
import d3rlpy
from d3rlpy.models.encoders import VectorEncoderFactory
rows, warmup, updates, n_actions = (int(a) for a in sys.argv[3:7])
max_seconds, budget = float(sys.argv[7]), float(sys.argv[8])
if budget > 0:  # allocations past the budget raise here instead of waking the OOM killer
    vm = next(int(x.split()[1]) * 1024 for x in open("/proc/self/status") if x[:7] == "VmSize:")
    resource.setrlimit(resource.RLIMIT_AS, (int(vm + budget), resource.RLIM_INFINITY))
data = bench.make_dataset(rows, n_actions=n_actions)
ds = d3rlpy.dataset.MDPDataset(
    observations=data["obs"].astype(np.float32), actions=data["action"],
    rewards=data["reward"], terminals=data["terminal"].astype(np.float32),
    action_space=d3rlpy.ActionSpace.DISCRETE, action_size=n_actions)
common = dict(batch_size=bench.BATCH, learning_rate=bench.LR, gamma=bench.GAMMA,
              target_update_interval=bench.TARGET_UPDATE, n_critics=1,
              encoder_factory=VectorEncoderFactory(hidden_units=list(bench.HIDDEN)))
configs = {"dqn": d3rlpy.algos.DQNConfig(**common),
           "cql": d3rlpy.algos.DiscreteCQLConfig(alpha=1.0, **common)}
print(json.dumps({"ready": d3rlpy.__version__, "threads": torch.get_num_threads()}), flush=True)
for line in sys.stdin:
    answer = {}
    try:
        d3rlpy.seed(0)
        algo = configs[line.strip()].create(device="cpu")
        algo.build_with_dataset(ds)
        answer["per_s"], answer["n"] = bench.timed_rate(
            lambda: algo.update(ds.sample_transition_batch(bench.BATCH)),
            warmup, updates, max_seconds)
    except (MemoryError, RuntimeError) as e:
        text = (str(e).strip().splitlines() or [""])[-1]
        oom = isinstance(e, MemoryError) or "allocate" in text
        answer["error"] = ("out of memory: " if oom else "failed: ") + type(e).__name__
        answer["error"] += f": {text[:160]}"
    algo = None
    gc.collect()
    answer["maxrss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(json.dumps(answer), flush=True)
"""
)

SB3_PEER = (
    _LOAD_SELF
    + """
import stable_baselines3
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv
rollouts = int(sys.argv[3])
print(json.dumps({"ready": stable_baselines3.__version__, "threads": torch.get_num_threads()}),
      flush=True)
for line in sys.stdin:
    n_envs = int(line)
    env = DummyVecEnv([bench.ToyRecEnv for _ in range(n_envs)])
    model = PPO("MlpPolicy", env, n_steps=bench.PPO_N_STEPS, batch_size=bench.PPO_MINIBATCH,
                n_epochs=bench.PPO_EPOCHS, learning_rate=3e-4, gamma=bench.GAMMA,
                gae_lambda=0.95, clip_range=0.2, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.5,
                policy_kwargs=dict(net_arch=list(bench.PPO_HIDDEN), activation_fn=torch.nn.ReLU),
                device="cpu", seed=0)
    per_rollout = bench.PPO_N_STEPS * n_envs
    model.learn(per_rollout)
    start = time.perf_counter()
    model.learn(rollouts * per_rollout, reset_num_timesteps=False)
    print(json.dumps({"per_s": rollouts * per_rollout / (time.perf_counter() - start)}),
          flush=True)
"""
)


class Peer:
    """A long-lived peer interpreter: one command line in, one float (per second) out."""

    def __init__(self, python: str, script: str, threads: int, *args: float) -> None:
        argv = [python, "-c", script, str(Path(__file__).resolve()), str(threads)]
        argv += [str(a) for a in args]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.info = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:  # skip the peer's own log lines
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"peer {self.proc.args[0]} exited with {self.proc.wait()}")
            if line.startswith("{"):
                result: dict[str, Any] = json.loads(line)
                return result

    def ask(self, command: str) -> dict[str, Any]:
        """The peer's whole answer to ``command`` (``per_s``, or ``error``; extra fields)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._read()

    def measure(self, command: str) -> float:
        answer = self.ask(command)
        if "error" in answer:
            raise RuntimeError(f"peer {command}: {answer['error']}")
        return float(answer["per_s"])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait()


# ---------------------------------------------------------------------------------------------
# Ours


def build_transitions(data: dict[str, np.ndarray], n_actions: int = N_ACTIONS) -> Any:
    """A :class:`~noetik.data.transitions.Transitions` of :func:`make_dataset`'s arrays."""
    from noetik.data.rewards import RewardConfig
    from noetik.data.transitions import ItemVocab, Transitions, episode_links

    n = len(data["action"])
    episode_id = np.concatenate([[0], np.cumsum(data["terminal"][:-1])]).astype(np.int64)
    done, next_index = episode_links(episode_id)
    return Transitions(
        obs=data["obs"],
        action=data["action"],
        reward=data["reward"],
        done=done,
        next_index=next_index,
        episode_id=episode_id,
        step=np.zeros(n, dtype=np.int32),
        user_id=episode_id.astype(np.int32),
        time_ms=np.arange(n, dtype=np.int64) * 1000,
        signals=np.zeros((n, 12), dtype=np.float32),
        vocab=ItemVocab.from_ids(np.arange(n_actions)),
        reward_config=RewardConfig(),
    )


def our_config(algo: str, device: str, precision: str = "float32") -> tuple[Any, list[str]]:
    """Our config for ``algo`` with :data:`OURS_CONFIG` applied; also the keys it lacks.

    ``precision="bf16"`` is our opt-in bf16 autocast (not the peers' arithmetic: labelled)."""
    from noetik.agents import ALGOS, EncoderConfig

    cls = ALGOS[algo]
    hidden = PPO_HIDDEN if algo == "ppo" else HIDDEN
    wanted = OURS_CONFIG["common"] | OURS_CONFIG.get(algo, {})
    if algo == "cql":
        wanted["alpha"] = 1.0  # d3rlpy's default
    wanted |= {"device": device, "encoder": EncoderConfig(kind="mlp", hidden=hidden)}
    if precision != "float32":
        wanted["precision"] = precision
    names = {f.name for f in dataclasses.fields(cls)}
    config = cls(**{k: v for k, v in wanted.items() if k in names})
    return config, sorted(set(wanted) - names)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def ours_updates_per_s(
    algo: str, t: Any, args: argparse.Namespace, precision: str = "float32", matmul: str = ""
) -> float:
    """The trainer's inner loop on a fresh agent: warm-up, then ``args.updates`` timed.
    ``matmul``: route our CPU products through this backend for the run (default: ours)."""
    from noetik.agents.fast.linear import get_cpu_matmul, set_cpu_matmul

    before = get_cpu_matmul()
    set_cpu_matmul(matmul or before)
    try:
        return ours_timed(algo, t, args, precision)[0]
    finally:
        set_cpu_matmul(before)


def ours_timed(
    algo: str, t: Any, args: argparse.Namespace, precision: str = "float32"
) -> tuple[float, int]:
    """Updates per second of our ``algo`` and how many were timed (``args.max_seconds``)."""
    from noetik.agents import ProblemSpec
    from noetik.agents.core.trainer import _Meter, seed_everything

    config, _ = our_config(algo, args.device, precision)
    agent = config.create(ProblemSpec.from_transitions(t))
    source = agent.make_source(t)
    seed_everything(config.seed, not args.no_deterministic)
    agent.train()
    meter = _Meter()

    def finish() -> None:
        meter.means()  # the trainer's one sync per log row
        _sync(agent.device)

    return timed_rate(
        lambda: meter.add(agent.update(source.sample())),
        args.warmup,
        args.updates,
        args.max_seconds,
        finish,
    )


def bare_updates_per_s(t: Any, args: argparse.Namespace) -> float:
    """Floor reference: a plain PyTorch DQN loop of the same networks and batch."""
    device = torch.device(args.device)
    torch.manual_seed(0)
    sizes = [OBS_DIM, *HIDDEN]

    def mlp() -> nn.Sequential:
        layers: list[nn.Module] = []
        for a, b in itertools.pairwise(sizes):
            layers += [nn.Linear(a, b), nn.ReLU()]
        return nn.Sequential(*layers, nn.Linear(sizes[-1], N_ACTIONS)).to(device)

    q, target = mlp(), mlp()
    target.load_state_dict(q.state_dict())
    opt = torch.optim.Adam(q.parameters(), lr=LR)
    obs = torch.as_tensor(t.obs, device=device).float()
    action = torch.as_tensor(t.action, device=device)
    reward = torch.as_tensor(t.reward, device=device)
    done = torch.as_tensor(t.done, device=device).float()
    nxt = torch.as_tensor(t.next_index, device=device)
    gen = torch.Generator().manual_seed(0)

    def step() -> None:
        rows = torch.randint(0, len(action), (BATCH,), generator=gen).to(device)
        with torch.no_grad():
            y = reward[rows] + GAMMA * (1 - done[rows]) * target(obs[nxt[rows]]).max(1).values
        pred = q(obs[rows]).gather(1, action[rows, None]).squeeze(1)
        loss = nn.functional.smooth_l1_loss(pred, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(args.updates):
        step()
    _sync(device)
    return args.updates / (time.perf_counter() - start)


def ours_ppo_steps_per_s(
    n_envs: int, args: argparse.Namespace, precision: str = "float32"
) -> float:
    """Environment steps per second of our PPO: one warm-up rollout, then timed rollouts."""
    from noetik.agents import ProblemSpec
    from noetik.agents.core.trainer import _Meter, seed_everything

    env = gym.vector.SyncVectorEnv([ToyRecEnv for _ in range(n_envs)])
    config, _ = our_config("ppo", args.device, precision)
    agent = config.create(ProblemSpec.from_env(env))
    source = agent.make_source(env)
    seed_everything(config.seed, not args.no_deterministic)
    agent.train()
    meter = _Meter()
    meter.add(agent.update(source.sample()))
    meter.means()
    start = time.perf_counter()
    for _ in range(args.ppo_rollouts):
        meter.add(agent.update(source.sample()))
    meter.means()
    _sync(agent.device)
    elapsed = time.perf_counter() - start
    env.close()
    return args.ppo_rollouts * PPO_N_STEPS * n_envs / elapsed


def profile(algo: str, t: Any, args: argparse.Namespace) -> None:
    """Print the top operators of ``args.updates`` of our updates (torch.profiler, CPU)."""
    from noetik.agents import ProblemSpec

    config, _ = our_config(algo, args.device)
    agent = config.create(ProblemSpec.from_transitions(t))
    source = agent.make_source(t)
    agent.train()
    for _ in range(args.warmup):
        agent.update(source.sample())
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(args.updates):
            with torch.profiler.record_function("sample"):
                batch = source.sample()
            with torch.profiler.record_function("update"):
                agent.update(batch)
    table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.profile_rows)
    print(table)


# ---------------------------------------------------------------------------------------------


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _print_row(name: str, ours: list[float], peer: list[float], peer_name: str) -> None:
    """One table row: medians [min-max], the ratio of medians and the median paired ratio."""
    o = _median(ours)
    spread = f"[{min(ours):,.0f}-{max(ours):,.0f}]" if ours else ""
    if not peer:
        print(f"| {name} | {o:,.1f} {spread} | {peer_name} | - | - | - |")
        return
    p = _median(peer)
    paired = _median([a / b for a, b in zip(ours, peer, strict=False)])
    peer_text = f"{p:,.1f} [{min(peer):,.0f}-{max(peer):,.0f}]"
    print(
        f"| {name} | {o:,.1f} {spread} | {peer_name} | {peer_text} | {o / p:.2f}x | {paired:.2f}x |"
    )


def _header(unit: str) -> None:
    print(f"| ours | {unit} | peer | {unit} | ratio of medians | median paired ratio |")
    print("|---|---:|---|---:|---:|---:|")


def _load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


# Extra rows of ours: suffix -> (label, keyword arguments of ours_updates_per_s).
VARIANTS: dict[str, tuple[str, dict[str, str]]] = {
    "mkl": ("products on MKL (NOETIK_CPU_MATMUL=torch)", {"matmul": "torch"}),
    "bf16": ("precision=bf16 (opt-in autocast; peer float32)", {"precision": "bf16"}),
}
PEER_NAMES = {"dqn": "DQN", "cql": "DiscreteCQL", "iql": "DiscreteCQL (nearest; no discrete IQL)"}


def _offline_jobs(
    algos: list[str], variants: list[str], t: Any, args: argparse.Namespace, peer: Peer | None
) -> list[tuple[str, Callable[[], float]]]:
    """(name, timed run) pairs in the order of one repeat: ours, its variants, the peer."""
    jobs: list[tuple[str, Callable[[], float]]] = []
    for algo in dict.fromkeys(["dqn", "cql", *algos]):
        if algo in algos:
            jobs.append((algo, lambda a=algo: ours_updates_per_s(a, t, args)))
            for v in variants:
                kw = VARIANTS[v][1]
                jobs.append(
                    (f"{algo} {v}", lambda a=algo, k=kw: ours_updates_per_s(a, t, args, **k))
                )
        if peer is not None and algo in ("dqn", "cql"):
            jobs.append((f"d3rlpy {algo}", lambda a=algo: peer.measure(a)))
    jobs.append(("bare", lambda: bare_updates_per_s(t, args)))
    return jobs


def run_offline(args: argparse.Namespace) -> None:
    """Offline updates per second, ours and d3rlpy's interleaved."""
    from noetik.agents import ALGOS

    t = build_transitions(make_dataset(args.rows))
    algos = [a for a in args.algos if a in ALGOS]
    if missing := [a for a in args.algos if a not in ALGOS]:
        print(f"not registered (skipped): {missing}")
    for algo in algos:
        config, lacks = our_config(algo, args.device)
        print(f"ours {algo}: {json.dumps(config.to_dict())}; fields it lacks: {lacks}")
    peer = None
    if args.d3rlpy_python:
        peer = Peer(
            args.d3rlpy_python,
            D3RLPY_PEER,
            args.threads,
            *(args.rows, args.warmup, args.updates, N_ACTIONS, args.max_seconds, 0),
        )
        print(f"d3rlpy {peer.info['ready']}, torch threads {peer.info['threads']}")
    print(f"ours: torch threads {torch.get_num_threads()}, device {args.device}; {_load()}")
    variants = [v for v in VARIANTS if getattr(args, v)]
    jobs = _offline_jobs(algos, variants, t, args, peer)
    results: dict[str, list[float]] = {name: [] for name, _ in jobs}
    for r in range(args.repeats):
        for name, job in jobs:
            results[name].append(job())
        line = "  ".join(f"{k} {v[-1]:.1f}" for k, v in results.items() if v)
        print(f"repeat {r + 1}: {line}; {_load()}", flush=True)
    if peer is not None:
        peer.close()
    print(f"\nupdates/s, median of {args.repeats} [min-max]; {args.updates} timed updates each")
    _header("updates/s")
    for suffix in ["", *variants]:
        for algo in algos:
            ref = "cql" if algo == "iql" else algo
            name = f"{algo} {suffix}".strip()
            label = f"{algo.upper()}, {VARIANTS[suffix][0]}" if suffix else algo.upper()
            _print_row(
                label,
                results[name],
                results.get(f"d3rlpy {ref}", []),
                f"d3rlpy {PEER_NAMES.get(algo, ref)}",
            )
    _print_row(
        "bare PyTorch DQN loop (floor)",
        results["bare"],
        results.get("d3rlpy dqn", []),
        "d3rlpy DQN",
    )


def run_ppo(args: argparse.Namespace) -> None:
    """PPO environment steps per second, ours and SB3's interleaved."""
    from noetik.agents import ALGOS

    if "ppo" not in ALGOS:
        print("ppo not registered (skipped)")
        return
    config, lacks = our_config("ppo", args.device)
    print(f"ours ppo: {json.dumps(config.to_dict())}; fields it lacks: {lacks}")
    peer = None
    if args.sb3_python:
        peer = Peer(args.sb3_python, SB3_PEER, args.threads, args.ppo_rollouts)
        print(f"stable-baselines3 {peer.info['ready']}, torch threads {peer.info['threads']}")
    ours: dict[int, list[float]] = {n: [] for n in args.ppo_envs}
    ours_bf16: dict[int, list[float]] = {n: [] for n in args.ppo_envs}
    theirs: dict[int, list[float]] = {n: [] for n in args.ppo_envs}
    for r in range(args.repeats):
        for n in args.ppo_envs:
            ours[n].append(ours_ppo_steps_per_s(n, args))
            if args.bf16:
                ours_bf16[n].append(ours_ppo_steps_per_s(n, args, "bf16"))
            if peer is not None:
                theirs[n].append(peer.measure(str(n)))
        line = "  ".join(
            f"{n} envs: ours {ours[n][-1]:.0f} sb3 "
            f"{theirs[n][-1] if theirs[n] else float('nan'):.0f}"
            for n in args.ppo_envs
        )
        print(f"repeat {r + 1}: {line}; {_load()}", flush=True)
    if peer is not None:
        peer.close()
    print(
        f"\nPPO env steps/s, median of {args.repeats} [min-max]; "
        f"{args.ppo_rollouts} rollouts of 2048 x n_envs steps timed"
    )
    _header("steps/s")
    for n in args.ppo_envs:
        _print_row(f"PPO, {n} env(s)", ours[n], theirs[n], "SB3 PPO")
    for n in args.ppo_envs if args.bf16 else []:
        _print_row(
            f"PPO, {n} env(s), precision=bf16 (opt-in; peer float32)",
            ours_bf16[n],
            theirs[n],
            "SB3 PPO",
        )


# ---------------------------------------------------------------------------------------------
# Catalogue-size sweep

SWEEP_SIZES = (1_000, 10_000, 100_000, 1_000_000, 4_369_953)  # the last: KuaiRand-1K's videos
#: d3rlpy's dense head Linear(256, A), per copy: weights, target, gradient, Adam's two moments.
D3RLPY_HEAD_COPIES = 5
#: (batch, A) float32-sized arrays of a d3rlpy DQN update alive at once: Q values, their
#: gradient, the target's Q values, and ``pick_value_by_action``'s one-hot (int64 = 2 of them),
#: its float copy and the masked product.
D3RLPY_ACTIVATIONS = 7
D3RLPY_BASE = 1.0 * 1024**3  # interpreter, torch, d3rlpy, the dataset


def d3rlpy_bytes(n_actions: int) -> float:
    """About how much memory d3rlpy's DQN needs with ``n_actions`` actions (dense head)."""
    head = (HIDDEN[-1] + 1) * n_actions * 4
    return D3RLPY_HEAD_COPIES * head + D3RLPY_ACTIVATIONS * BATCH * n_actions * 4 + D3RLPY_BASE


def _one_line(e: BaseException) -> str:
    text = (str(e).strip().splitlines() or [""])[-1]
    return f"{type(e).__name__}: {text[:160]}"


def _maxrss_gb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def _num(x: float) -> str:
    """A rate with about 3 significant digits (d3rlpy does 0.03 updates/s at 1M actions)."""
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}" if x >= 1 else f"{x:.3f}"


def _rate_text(values: list[float], timed: list[int], updates: int) -> str:
    if not values:
        return "-"
    text = f"{_num(_median(values))} [{_num(min(values))}-{_num(max(values))}]"
    if min(timed) < updates:  # capped by --max-seconds: say how many updates were timed
        counts = f"{min(timed)}-{max(timed)}" if min(timed) != max(timed) else f"{timed[0]}"
        text += f" ({counts} timed)"
    return text


def _start_sweep_peer(size: int, args: argparse.Namespace) -> tuple[Peer | None, str]:
    """d3rlpy's peer for ``size`` actions, or why it does not run (memory estimated first)."""
    from noetik.utils.memory import SAFETY, available_bytes, format_bytes

    if not args.d3rlpy_python:
        return None, "not run (no --d3rlpy-python)"
    need, budget = d3rlpy_bytes(size), available_bytes() * SAFETY
    if need > budget:
        return None, (
            f"out of memory (needs about {format_bytes(need)}, {format_bytes(budget)} "
            "available): not run"
        )
    argv = (args.rows, args.warmup, args.updates, size, args.max_seconds, budget)
    try:
        return Peer(args.d3rlpy_python, D3RLPY_PEER, args.threads, *argv), ""
    except RuntimeError as e:
        return None, f"failed: {e}"


def _sweep_size(size: int, args: argparse.Namespace) -> dict[str, Any]:
    """One catalogue size: ours DQN, ours IQL and d3rlpy's DQN alternating, ``--repeats``."""
    from noetik.errors import NoetikError
    from noetik.utils.memory import available_bytes, format_bytes

    t = build_transitions(make_dataset(args.rows, n_actions=size), size)
    config, _ = our_config("dqn", args.device)
    path = "catalogue" if config.catalogue.applies(size) else "dense"
    rates: dict[str, list[float]] = {"dqn": [], "iql": [], "d3rlpy": []}
    timed: dict[str, list[int]] = {"dqn": [], "iql": [], "d3rlpy": []}
    notes: dict[str, str] = {}
    peer_gb = float("nan")
    need, avail = d3rlpy_bytes(size), available_bytes()
    peer, note = _start_sweep_peer(size, args)
    if note:
        notes["d3rlpy"] = note
    print(
        f"\n{size:,} actions (ours: {path} path); d3rlpy needs about {format_bytes(need)}, "
        f"{format_bytes(avail)} available; {_load()}",
        flush=True,
    )
    for r in range(args.repeats):
        for algo in ("dqn", "iql"):
            if algo in notes:
                continue
            try:
                rate, n = ours_timed(algo, t, args)
            except (MemoryError, RuntimeError, NoetikError) as e:
                notes[algo] = f"failed: {_one_line(e)}"
            else:
                rates[algo].append(rate)
                timed[algo].append(n)
        if peer is not None and "d3rlpy" not in notes:
            try:
                answer = peer.ask("dqn")
            except RuntimeError as e:  # the peer died
                notes["d3rlpy"] = f"failed: {e}"
            else:
                peer_gb = answer["maxrss_gb"]
                if "error" in answer:
                    notes["d3rlpy"] = answer["error"]
                else:
                    rates["d3rlpy"].append(answer["per_s"])
                    timed["d3rlpy"].append(answer["n"])
        line = "  ".join(f"{k} {_num(v[-1])}" for k, v in rates.items() if len(v) > r)
        print(f"repeat {r + 1}: {line}; {_load()}", flush=True)
    if peer is not None:
        peer.close()
    del t
    return {
        "size": size,
        "rates": rates,
        "timed": timed,
        "notes": notes,
        "ours_gb": _maxrss_gb(),
        "peer_gb": peer_gb,
        "need": need,
    }


def run_sweep(args: argparse.Namespace) -> None:
    """Updates per second against the catalogue size: ours DQN and IQL, d3rlpy's DQN."""
    from noetik.utils.memory import format_bytes

    for algo in ("dqn", "iql"):
        config, lacks = our_config(algo, args.device)
        print(f"ours {algo}: {json.dumps(config.to_dict())}; fields it lacks: {lacks}")
    print(
        f"ours: torch threads {torch.get_num_threads()}, device {args.device}; {args.rows:,} rows, "
        f"{args.warmup} warm-up + {args.updates} timed updates (each capped at "
        f"{args.max_seconds or 'no'} s), {args.repeats} repeats"
    )
    rows = [_sweep_size(size, args) for size in args.sweep_sizes]
    print(
        f"\nupdates/s, median of {args.repeats} [min-max]; peaks are ru_maxrss (ours: the "
        "process's high-water mark so far, sizes in increasing order; d3rlpy: a fresh process "
        "per size)"
    )
    print(
        "| actions | ours DQN | ours IQL | d3rlpy DQN | ours DQN / d3rlpy DQN (paired) "
        "| peak ours | peak d3rlpy (estimate) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        rates, timed, notes = row["rates"], row["timed"], row["notes"]
        cells = [
            notes.get(k) or _rate_text(rates[k], timed[k], args.updates)
            for k in ("dqn", "iql", "d3rlpy")
        ]
        ours, peer = rates["dqn"], rates["d3rlpy"]
        ratio = "-"
        if ours and peer:
            paired = _median([a / b for a, b in zip(ours, peer, strict=False)])
            ratio = f"{_median(ours) / _median(peer):.2f}x ({paired:.2f}x)"
        peer_gb = "-" if row["peer_gb"] != row["peer_gb"] else f"{row['peer_gb']:.1f} GB"
        print(
            f"| {row['size']:,} | {' | '.join(cells)} | {ratio} | {row['ours_gb']:.1f} GB "
            f"| {peer_gb} ({format_bytes(row['need'])}) |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--d3rlpy-python", help="interpreter with d3rlpy (offline peer)")
    parser.add_argument("--sb3-python", help="interpreter with stable-baselines3 (PPO peer)")
    parser.add_argument("--rows", type=int, default=100_000, help="transitions in the dataset")
    parser.add_argument("--warmup", type=int, help="untimed updates first (30; sweep 20)")
    parser.add_argument("--updates", type=int, help="timed updates per run (300; sweep 100)")
    parser.add_argument("--repeats", type=int, help="runs of each side (5; sweep 3)")
    parser.add_argument(
        "--max-seconds",
        type=float,
        help="cap of each timed run, and half of it of its warm-up (0: none; sweep 15)",
    )
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="only the catalogue-size sweep: ours DQN and IQL against d3rlpy DQN",
    )
    parser.add_argument(
        "--sweep-sizes",
        type=lambda text: [int(x) for x in text.split(",")],
        default=list(SWEEP_SIZES),
        help="comma-separated action counts of the sweep",
    )
    parser.add_argument("--algos", nargs="+", default=["dqn", "cql", "iql"])
    parser.add_argument("--ppo-envs", type=int, nargs="*", default=[1, 8])
    parser.add_argument("--ppo-rollouts", type=int, default=3, help="timed PPO rollouts")
    parser.add_argument("--skip-offline", action="store_true")
    parser.add_argument("--skip-ppo", action="store_true")
    parser.add_argument("--device", default="cpu", help="our device (the peers run on CPU)")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch threads of every side (0: torch's default); 1 on a loaded "
        "machine, where 2 threads stall on each other",
    )
    parser.add_argument(
        "--no-deterministic",
        action="store_true",
        help="ours without torch.use_deterministic_algorithms (the trainer's default is on)",
    )
    parser.add_argument(
        "--bf16",
        action="store_true",
        help="also time ours with the opt-in precision=bf16 (autocast; "
        "extra labelled rows; float32 stays the headline)",
    )
    parser.add_argument(
        "--mkl",
        action="store_true",
        help="also time ours with every product on MKL, PyTorch's default "
        "(NOETIK_CPU_MATMUL=torch; extra labelled rows)",
    )
    parser.add_argument("--profile", metavar="ALGO", help="profile our ALGO instead")
    parser.add_argument("--profile-rows", type=int, default=25)
    args = parser.parse_args()
    defaults = (20, 100, 3, 15.0) if args.sweep else (30, 300, 5, 0.0)
    for name, value in zip(("warmup", "updates", "repeats", "max_seconds"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.threads:
        torch.set_num_threads(args.threads)
    import noetik.agents  # noqa: F401  (registers the algorithms)

    for name in ("dqn", "cql", "iql", "ppo"):
        if importlib.util.find_spec(f"noetik.agents.{name}") is not None:
            importlib.import_module(f"noetik.agents.{name}")
    if args.profile:
        profile(args.profile, build_transitions(make_dataset(args.rows)), args)
        return
    if args.sweep:
        run_sweep(args)
        return
    if not args.skip_offline:
        run_offline(args)
    if not args.skip_ppo and args.ppo_envs:
        run_ppo(args)


if __name__ == "__main__":
    sys.exit(main())
