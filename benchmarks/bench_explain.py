"""Explanation speed: one recommendation explained (integrated gradients, 32 steps, plus text).

    .venv/bin/python benchmarks/bench_explain.py               # goal: under 100 ms on 2 cores

Trains (once; reused from ``--cache``) IQL with the History Transformer and IQL with the MLP
encoder (default sizes) on the built-in synthetic dataset (1,000 users, 2,000 videos) for
``--steps`` updates (``train_run``, training split). The decision contexts of ``--users``
sampled users are built once (:func:`run_contexts`: data, states, histories, names); what is
timed is the per-decision cost, one :func:`explain_recommendation` call per user (scoring all
candidates, IG of the log-probability with 32 steps over state and history, attention rollout
and agreement for the Transformer, the drivers and the sentences), median and p90 over the
users after ``--warmup`` untimed calls. It runs under each of ``--threads`` torch intra-op
thread counts (default 2 and 1). The breakdown times the parts on their own: scoring
(``scores`` and IQL's ``q_values``), :func:`attribute`, attention (weights, rollout,
agreement) and composing the text. The load average is printed, since other jobs may share
the machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from noetik.agents.algorithms.iql import IQLConfig
from noetik.agents.core.runs import train_run
from noetik.agents.core.task import TaskConfig
from noetik.agents.networks.encoders import EncoderConfig
from noetik.explain.attention import attention_agreement, attention_rollout, attention_weights
from noetik.explain.attributions import attribute
from noetik.explain.explain_context import run_contexts
from noetik.explain.explain_text import compose_text
from noetik.explain.explanation import explain_recommendation

AGENTS: list[tuple[str, EncoderConfig]] = [
    ("iql-transformer", EncoderConfig(kind="transformer")),
    ("iql-mlp", EncoderConfig(kind="mlp")),
]


def _run(name: str, encoder: EncoderConfig, args: Any) -> Path:
    """The run folder of ``name`` in ``args.cache`` (trained there first when missing)."""
    run = args.cache / name
    if not (run / "run.json").is_file():
        config = IQLConfig(seed=args.seed, device="cpu", encoder=dataclasses.replace(encoder))
        start = time.perf_counter()
        train_run(config, TaskConfig(), run, args.steps)
        print(f"trained {name} ({args.steps} steps) in {time.perf_counter() - start:.0f} s")
    return run


def _median_ms(fn: Callable[[Any], Any], items: list[Any], warmup: int) -> tuple[float, float]:
    """(median, p90) milliseconds of ``fn(item)`` over ``items`` after ``warmup`` calls."""
    for item in items[:warmup]:
        fn(item)
    times = []
    for item in items:
        start = time.perf_counter()
        fn(item)
        times.append(1000.0 * (time.perf_counter() - start))
    return statistics.median(times), float(np.percentile(times, 90))


def _parts(agent: Any, contexts: list[Any], warmup: int) -> dict[str, float]:
    """Median ms of each part of one explanation, timed on its own."""
    uses_history = agent.config.encoder.uses_history

    def inputs(c: Any) -> tuple[Any, Any]:
        return c.obs_tensor(), c.history_tensors() if uses_history else None

    def scoring(c: Any) -> None:
        obs, h = inputs(c)
        with torch.no_grad():
            agent.scores(obs, h)
            agent.q_values(obs, h)

    def attributing(c: Any) -> None:
        obs, h = inputs(c)
        attribute(agent, obs, h, target="logp", n_steps=32)

    def attending(c: Any) -> None:
        obs, h = inputs(c)
        w = attention_weights(agent, obs, h)
        if w is not None:
            roll = attention_rollout(w, c.mask[None])
            attention_agreement(roll, roll, c.mask[None])

    done = [explain_recommendation(agent, c) for c in contexts]
    parts = {"scoring": scoring, "attribute (IG 32)": attributing, "attention": attending}
    out = {name: _median_ms(fn, contexts, warmup)[0] for name, fn in parts.items()}
    out["text"] = _median_ms(compose_text, done, warmup)[0]
    return out


def main() -> None:
    """Time explanations for each agent and thread count; print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=50, help="decisions timed per agent")
    parser.add_argument("--steps", type=int, default=200, help="training updates (IQL)")
    parser.add_argument("--cache", type=Path, default=Path("results/bench_explain"))
    parser.add_argument("--threads", type=int, nargs="*", default=[2, 1])
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    rows, breakdown = [], []
    for name, encoder in AGENTS:
        run = _run(name, encoder, args)
        start = time.perf_counter()
        agent, contexts = run_contexts(run, None, args.users, seed=args.seed)
        setup = time.perf_counter() - start
        print(f"{name}: {len(contexts)} decision contexts built in {setup:.2f} s (once per run)")
        for threads in args.threads:
            torch.set_num_threads(threads)
            explain = functools.partial(explain_recommendation, agent)
            med, p90 = _median_ms(explain, contexts, args.warmup)
            rows.append(
                f"| {name} | {threads} | {med:.1f} | {p90:.1f} | {'yes' if med < 100 else 'no'} |"
            )
            parts = _parts(agent, contexts, args.warmup)
            shown = " | ".join(f"{v:.2f}" for v in parts.values())
            breakdown.append(f"| {name} | {threads} | {shown} |")
    print(f"\nload average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after\n")
    print("| agent | threads | median ms | p90 ms | under 100 ms |")
    print("|---|---:|---:|---:|---|")
    print("\n".join(rows))
    print("\n| agent | threads | scoring ms | attribute (IG 32) ms | attention ms | text ms |")
    print("|---|---:|---:|---:|---:|---:|")
    print("\n".join(breakdown))


if __name__ == "__main__":
    main()
