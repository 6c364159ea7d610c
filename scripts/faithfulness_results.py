"""Issue 6 result: faithfulness of attributions of a trained IQL agent (History Transformer).

    .venv/bin/python scripts/faithfulness_results.py --run results/agents/runs/iql-transformer

Without --run, trains IQL with the History Transformer on the built-in synthetic dataset for
--steps updates (``train_run``, training split) into OUT/run. Samples --decisions logged
decisions with at least one past interaction from the run's training data (states and
histories as the agent reads them, seed --seed) and, for each target in --targets (``logp``:
the IQL policy's log-probability of its recommendation, the argmax of that policy; ``q``: the
min of the twin critics' Q of it) and each attribution method, measures deletion/insertion
curves (normalised AUC), comprehensiveness and sufficiency over history positions and over
the 19 named state slices, each with a 95 % bootstrap interval, against a random ordering
(--n-random seeded permutations averaged). Also: IG's convergence delta, the rank agreement
of attention rollout and IG, and the time of attribute() for one decision. Prints Markdown
tables for docs/results.md and writes results.json and faithfulness_<target>.png into --out.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import torch

mpl.use("Agg")
import matplotlib.pyplot as plt

from noetik.agents.algorithms.iql import IQLConfig
from noetik.agents.core.base import Agent
from noetik.agents.core.runs import offline_transitions, read_run, train_run
from noetik.agents.core.task import DataSource, TaskConfig
from noetik.agents.networks.encoders import EncoderConfig, History
from noetik.explain.attention import attention_agreement, attention_rollout, attention_weights
from noetik.explain.attributions import attribute
from noetik.explain.faithfulness import (
    FaithfulnessConfig,
    FaithfulnessCurves,
    faithfulness_curves,
    summarize,
)
from noetik.utils.bootstrap import Estimate, bootstrap_means

HISTORY_METHODS = (
    "integrated_gradients",
    "saliency",
    "input_x_gradient",
    "layer_integrated_gradients",
    "attention_rollout",
    "random",
)
STATE_METHODS = ("integrated_gradients", "saliency", "input_x_gradient", "random")
LABELS = {
    "integrated_gradients": "integrated gradients",
    "saliency": "saliency",
    "input_x_gradient": "input x gradient",
    "layer_integrated_gradients": "layer IG (items)",
    "attention_rollout": "attention rollout",
    "random": "random",
}


def _run(args: argparse.Namespace) -> Path:
    if args.run is not None:
        return Path(args.run)
    run = args.out / "run"
    if not (run / "run.json").is_file():
        config = IQLConfig(seed=args.seed, encoder=EncoderConfig(kind="transformer"))
        train_run(config, TaskConfig(DataSource(args.data)), run, args.steps)
    return run


def _decisions(run: Path, agent: Agent, n: int, seed: int) -> tuple[torch.Tensor, History]:
    """``n`` logged decisions (with >= 1 past interaction) of the run's training data."""
    _, source = read_run(run)
    t = offline_transitions(source)
    k = agent.config.encoder.history_len
    rng = np.random.default_rng(seed)
    candidates = rng.choice(len(t), size=min(len(t), 4 * n), replace=False)
    has_past = t.history(candidates, k)[3].any(axis=1)
    rows = np.sort(candidates[has_past][:n])
    obs = torch.as_tensor(t.obs[rows].astype(np.float32))
    return obs, History.from_numpy(t.history(rows, k))


def _cell(out: dict[str, float], key: str) -> str:
    return f"{out[key]:.3f} [{out[key + '_lo']:.3f}, {out[key + '_hi']:.3f}]"


def _table(results: dict[str, dict[str, float]], unit: str) -> str:
    first = next(iter(results.values()))
    lines = [
        f"**{unit}** (n = {int(first['n'])} decisions; f_full - f_empty = {_cell(first, 'span')})",
        "",
        "| method | deletion AUC (lower better) | insertion AUC (higher better) | "
        "comprehensiveness | sufficiency |",
        "|---|---|---|---|---|",
    ]
    for method, out in results.items():
        cells = [
            _cell(out, k)
            for k in ("deletion_auc", "insertion_auc", "comprehensiveness", "sufficiency")
        ]
        lines.append(f"| {LABELS[method]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _mean_curve(c: FaithfulnessCurves, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean deletion/insertion curves on ``grid`` (fraction of units), as (curve - f_empty) /
    mean(f_full - f_empty), the normalisation of the AUCs."""
    keep = c.n_units > 0
    d, i, n = c.deletion[keep], c.insertion[keep], c.n_units[keep]
    empty = d[np.arange(len(n)), n]
    span = (d[:, 0] - empty).mean()
    out = []
    for curve in (d, i):
        rows = [
            np.interp(grid, np.arange(m + 1) / m, row[: m + 1]) - e
            for row, m, e in zip(curve, n, empty, strict=True)
        ]
        out.append(np.mean(rows, axis=0) / span)
    return out[0], out[1]


def _figure(curves: dict[str, dict[str, FaithfulnessCurves]], path: Path, target: str) -> None:
    grid = np.linspace(0.0, 1.0, 41)
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5), sharex=True)
    for row, (unit, by_method) in enumerate(curves.items()):
        for method, c in by_method.items():
            dele, ins = _mean_curve(c, grid)
            style = {"linestyle": "--", "color": "black"} if method == "random" else {}
            axes[row, 0].plot(grid, dele, label=LABELS[method], **style)
            axes[row, 1].plot(grid, ins, label=LABELS[method], **style)
        axes[row, 0].set_title(f"{target}: deletion over {unit} (lower is better)")
        axes[row, 1].set_title(f"{target}: insertion over {unit} (higher is better)")
        axes[row, 0].set_ylabel("normalised target")
        axes[row, 0].legend(fontsize=8)
    for ax in axes[1]:
        ax.set_xlabel("fraction of units removed (deletion) / present (insertion)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _timing(
    agent: Agent, obs: torch.Tensor, h: History, repeats: int, target: str
) -> dict[str, float]:
    """Median / p90 ms of attribute() for one decision (IG, 32 steps)."""
    times = []
    for i in range(repeats + 5):
        j = i % len(obs)
        one = History(
            h.items[j : j + 1], h.signals[j : j + 1], h.gap_s[j : j + 1], h.mask[j : j + 1]
        )
        start = time.perf_counter()
        attribute(agent, obs[j : j + 1], one, n_steps=32, target=target)  # type: ignore[arg-type]
        if i >= 5:
            times.append(1000 * (time.perf_counter() - start))
    return {"median_ms": statistics.median(times), "p90_ms": float(np.quantile(times, 0.9))}


def _agreement(
    agent: Agent, obs: torch.Tensor, h: History, cfg: FaithfulnessConfig, target: str
) -> dict[str, float]:
    ig = attribute(agent, obs, h, n_steps=cfg.n_steps, target=target)  # type: ignore[arg-type]
    weights = attention_weights(agent, obs, h)
    assert weights is not None and ig.history is not None and ig.delta is not None
    mask = h.mask.numpy()
    rho = attention_agreement(attention_rollout(weights, mask), ig.history, mask)
    rho = rho[~np.isnan(rho)]
    nan = float("nan")
    est = (
        bootstrap_means({"rho": rho}, n_boot=cfg.n_bootstrap, seed=cfg.seed)["rho"]
        if len(rho)
        else Estimate(nan, nan, nan)
    )
    span = np.abs(ig.target - ig.baseline_target)
    return {
        "agreement": float(rho.mean()),
        "agreement_lo": est.low,
        "agreement_hi": est.high,
        "n_agreement": float(len(rho)),
        "mean_abs_delta": float(np.abs(ig.delta).mean()),
        "median_rel_delta": float(np.median(np.abs(ig.delta) / np.maximum(span, 1e-8))),
        "mean_abs_target_change": float(span.mean()),
    }


def main() -> None:
    """Measure, print the tables, save the figure and results.json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, default=None, help="trained run folder to reuse")
    parser.add_argument("--data", default=None, help="data folder (default: built-in synthetic)")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--decisions", type=int, default=500)
    parser.add_argument("--targets", nargs="+", default=["logp", "q"], help="logp and/or q")
    parser.add_argument("--n-random", type=int, default=5)
    parser.add_argument("--n-bootstrap", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    parser.add_argument("--out", type=Path, default=Path("results/explain/faithfulness"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    run = _run(args)
    agent = Agent.load(run, device="cpu")
    agent.eval()
    obs, h = _decisions(run, agent, args.decisions, args.seed)
    cfg = FaithfulnessConfig(n_random=args.n_random, n_bootstrap=args.n_bootstrap, seed=args.seed)
    results: dict[str, Any] = {"run": str(run), "decisions": len(obs), "config": vars(cfg)}
    for target in args.targets:
        results[target] = _measure(agent, obs, h, cfg, target=target, out=args.out)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    print(f"\nrun {run}, {len(obs)} logged decisions\n")
    for target in args.targets:
        print(f"### target: {target}\n")
        print(_table(results[target]["history"], "history positions") + "\n")
        print(_table(results[target]["state"], "state slices") + "\n")
        extra = {k: results[target][k] for k in ("ig", "timing_one_decision")}
        print(json.dumps(extra, indent=2) + "\n")
    print(f"figures: {args.out}/faithfulness_<target>.png")


def _measure(
    agent: Agent, obs: torch.Tensor, h: History, cfg: FaithfulnessConfig, *, target: str, out: Path
) -> dict[str, Any]:
    """Every method's faithfulness for ``target``, IG's delta and agreement, the timing."""
    results: dict[str, Any] = {}
    curves: dict[str, dict[str, FaithfulnessCurves]] = {}
    for unit, methods in (("history", HISTORY_METHODS), ("state", STATE_METHODS)):
        start = time.perf_counter()
        curves[unit] = {
            m: faithfulness_curves(
                agent,
                obs,
                h,
                m,
                target,
                unit=unit,  # type: ignore[arg-type]
                config=cfg,
            )
            for m in methods
        }
        reference = curves[unit]["random"]
        results[unit] = {m: summarize(c, cfg, reference) for m, c in curves[unit].items()}
        print(f"{target} / {unit}: {time.perf_counter() - start:.1f} s", flush=True)
    results["ig"] = _agreement(agent, obs, h, cfg, target)
    results["timing_one_decision"] = _timing(agent, obs, h, 50, target)
    _figure(curves, out / f"faithfulness_{target}.png", target)
    return results


if __name__ == "__main__":
    main()
