"""Issue 6 result: the engagement-versus-interpretability trade-off of IQL on synthetic KuaiRand.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/tradeoff_sweep.py --steps 1000 \
        --term attention_entropy --weights 0 0.01 0.1 1

Trains IQL with the History Transformer on the training split of the standard log of the
synthetic KuaiRand data in --data (default results/agents/data; written like
scripts/agent_results.py does when absent) once per weight of one interpretability term
(noetik.agents.regularisers.terms, same seed and budget for every weight), then measures each
agent:

* engagement: the mean return of one KuaiRand-v0 session for each of --users simulated users
  (simulator --sim, default results/agents/sim, fitted when absent), with a 95 % interval;
* sparsity: the mean entropy (nats) of the policy's query attention over the valid history
  positions, on --decisions logged decisions of the test split (uniform over n positions is
  log n);
* attribution concentration: the share of the |integrated-gradients| attribution of the
  policy's log-probability of its chosen item that falls on the top 3 history positions, and
  the Spearman agreement of attention rollout and that attribution (noetik.explain);
* faithfulness: deletion and insertion AUC of IG over the history positions, and of a random
  order (noetik.explain.faithfulness; lower deletion / higher insertion AUC = more faithful).

Prints the Markdown table and writes results_TERM.json, table_TERM.md and tradeoff_TERM.png
(return against entropy and against the top-3 share, Pareto front marked) into --out (default
results/tradeoff). Runs already trained in --out/runs are reused.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from noetik.agents.algorithms.iql import IQLConfig
from noetik.agents.core.base import Agent
from noetik.agents.core.batches import DeviceReplay
from noetik.agents.core.runs import train_run
from noetik.agents.core.task import DataSource, TaskConfig
from noetik.agents.networks.encoders import EncoderConfig, History
from noetik.agents.regularisers.terms import InterpretabilityConfig, mean_attention_entropy
from noetik.data.dataset import load_kuairand
from noetik.data.transitions import build_transitions
from noetik.evaluation.online.sessions import evaluate_online

TERMS = ("attention_entropy", "stability", "agreement", "l1_state")


def _synthetic_data(out: Path, users: int, seed: int) -> Path:
    from noetik.data.schema import Release
    from noetik.data.synthetic import SynthConfig, synthesize

    data = out / "data"
    if not (data / "noetik_synth.json").is_file():
        synthesize(data, SynthConfig.for_release(Release.PURE, users=users, videos=2000, seed=seed))
    return data


def _simulator(data: Path, sim: Path, seed: int) -> Path:
    from noetik.simulators.kuairand import ResponseModelConfig, fit_response_model

    if not (sim / "simulator.json").is_file():
        fit_response_model(load_kuairand(data), ResponseModelConfig(seed=seed)).save(sim)
    return sim


def _train(term: str, weight: float, args: Any, data: Path) -> tuple[Path, float | None]:
    run = args.out / "runs" / f"{term}-{weight:g}"
    if (run / "run.json").is_file():
        return run, None
    interp = InterpretabilityConfig(**{term: weight}, samples=args.samples)
    config = IQLConfig(
        seed=args.seed, encoder=EncoderConfig(kind="transformer"), interpretability=interp
    )
    start = time.perf_counter()
    train_run(config, TaskConfig(DataSource(str(data))), run, args.steps)
    seconds = time.perf_counter() - start
    print(f"trained {run.name} ({args.steps} steps) in {seconds:.0f} s", flush=True)
    return run, seconds


def _decisions(data: Path, n: int, k: int, seed: int) -> tuple[torch.Tensor, History]:
    """``n`` logged decisions of the test split (seeded sample): states and histories."""
    test = build_transitions(load_kuairand(data), split="test")
    rows = np.random.default_rng(seed).choice(len(test), size=min(n, len(test)), replace=False)
    batch = DeviceReplay(test, 1, history_len=k, device="cpu").batch(torch.as_tensor(rows))
    assert batch.history is not None
    return batch.obs, batch.history


def _top3_share(attr: np.ndarray, mask: np.ndarray) -> float:
    """Mean over decisions (with attribution) of the |attr| share of the top-3 positions."""
    a = np.where(mask, np.abs(attr), 0.0)
    total = a.sum(1)
    top = -np.sort(-a, axis=1)[:, :3].sum(1)
    ok = total > 0
    return float((top[ok] / total[ok]).mean())


def _faithfulness(agent: Agent, obs: torch.Tensor, history: History) -> dict[str, float | None]:
    """IG deletion/insertion AUC of the policy's log-probability over history positions and
    the random-order baseline's (noetik.explain.faithfulness; None where it is missing)."""
    keys = ("deletion_auc", "random_deletion_auc", "insertion_auc", "random_insertion_auc")
    try:
        from noetik.explain.faithfulness import FaithfulnessConfig, faithfulness

        out = faithfulness(
            agent,
            obs,
            history,
            "integrated_gradients",
            "logp",
            unit="history",
            config=FaithfulnessConfig(n_bootstrap=200),
        )
    except (ImportError, TypeError) as exc:  # not written yet, or another signature
        print(f"faithfulness skipped: {exc}")
        return dict.fromkeys(keys)
    return {k: float(out[k]) for k in keys}


def _measure(run: Path, args: Any, sim: Path, obs: torch.Tensor, h: History) -> dict[str, Any]:
    from noetik.explain.attention import attention_agreement, attention_rollout, attention_weights
    from noetik.explain.attributions import attribute

    agent = Agent.load(run, device="cpu").eval()
    start = time.perf_counter()
    online = evaluate_online(
        agent, "noetik/KuaiRand-v0", args.users, {"sim_dir": str(sim)}, args.seed
    )
    entropy = mean_attention_entropy(agent.encoder, obs, h)  # type: ignore[arg-type]
    ig = attribute(agent, obs, h, method="integrated_gradients", target="logp", n_steps=32)
    assert ig.history is not None and ig.history_mask is not None
    weights = attention_weights(agent, obs, h)
    assert weights is not None
    rollout = attention_rollout(weights, ig.history_mask)
    rho = attention_agreement(rollout, ig.history, ig.history_mask)
    return {
        "return": online["return"],
        "is_click_rate": online.get("is_click_rate"),
        "attention_entropy": entropy,
        "ig_top3_share": _top3_share(ig.history, ig.history_mask),
        "agreement_spearman": float(np.nanmean(rho)),
        "ig_delta_abs_mean": float(np.abs(ig.delta).mean()) if ig.delta is not None else None,
        **_faithfulness(agent, obs, h),
        "eval_s": time.perf_counter() - start,
    }


def pareto_front(ret: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """(N,) bool: points not dominated when maximising ``ret`` (N,) and minimising ``cost``
    (N,) (dominated: another point is at least as good in both and better in one)."""
    better_eq = (ret[None, :] >= ret[:, None]) & (cost[None, :] <= cost[:, None])
    strictly = (ret[None, :] > ret[:, None]) | (cost[None, :] < cost[:, None])
    return ~(better_eq & strictly).any(axis=1)


def _plot(rows: list[dict[str, Any]], term: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ret = np.array([r["return"]["mean"] for r in rows])
    err = np.array(
        [
            [r["return"]["mean"] - r["return"]["low"], r["return"]["high"] - r["return"]["mean"]]
            for r in rows
        ]
    ).T
    panels = [
        ("attention_entropy", "attention entropy (nats, lower = sparser)", 1.0),
        ("ig_top3_share", "IG mass on top-3 history positions (higher = sparser)", -1.0),
    ]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, (key, label, sign) in zip(axes, panels, strict=True):
        x = np.array([r[key] for r in rows], dtype=np.float64)
        front = pareto_front(ret, sign * x)
        ax.errorbar(x, ret, yerr=err, fmt="o", color="tab:blue", capsize=3, label="IQL runs")
        order = np.argsort(x[front])
        ax.plot(
            x[front][order], ret[front][order], "-", color="tab:red", lw=1.5, label="Pareto front"
        )
        ax.scatter(x[front], ret[front], s=120, facecolors="none", edgecolors="tab:red")
        for xi, yi, r in zip(x, ret, rows, strict=True):
            ax.annotate(f"λ={r['weight']:g}", (xi, yi), textcoords="offset points", xytext=(5, 5))
        ax.set_xlabel(label)
        ax.set_ylabel("return per session (KuaiRand-v0, 95% CI)")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
    fig.suptitle(f"Engagement vs interpretability: IQL-Transformer, weight of {term}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _table(rows: list[dict[str, Any]], term: str) -> str:
    def ci(v: dict[str, float]) -> str:
        return f"{v['mean']:.3f} [{v['low']:.3f}, {v['high']:.3f}]"

    def num(v: float | None) -> str:
        return "–" if v is None else f"{v:.3f}"

    ret = np.array([r["return"]["mean"] for r in rows])
    front = pareto_front(ret, np.array([r["attention_entropy"] for r in rows]))
    lines = [
        f"| {term} weight | return | attention entropy | IG top-3 share | "
        "attention-IG Spearman | IG deletion AUC (random) | IG insertion AUC (random) "
        "| Pareto |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r, f in zip(rows, front, strict=True):
        dele = f"{num(r['deletion_auc'])} ({num(r['random_deletion_auc'])})"
        ins = f"{num(r['insertion_auc'])} ({num(r['random_insertion_auc'])})"
        lines.append(
            f"| {r['weight']:g} | {ci(r['return'])} | {num(r['attention_entropy'])} | "
            f"{num(r['ig_top3_share'])} | {num(r['agreement_spearman'])} | {dele} | "
            f"{ins} | {'yes' if f else ''} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Train one IQL per weight, measure, print the table, save the plot."""
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
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    data = args.data
    if not (data / "noetik_synth.json").is_file() and not any(data.glob("*.csv")):
        data = _synthetic_data(args.out, args.synth_users, args.seed)
    sim = _simulator(data, args.sim, args.seed)
    obs, history = _decisions(data, args.decisions, EncoderConfig().history_len, args.seed)
    rows = []
    for weight in args.weights:
        run, train_s = _train(args.term, weight, args, data)
        row = {
            "term": args.term,
            "weight": weight,
            "steps": args.steps,
            "run": str(run),
            "train_s": train_s,
            **_measure(run, args, sim, obs, history),
        }
        print(json.dumps({k: v for k, v in row.items() if k != "run"}), flush=True)
        rows.append(row)
    table = _table(rows, args.term)
    (args.out / f"results_{args.term}.json").write_text(json.dumps(rows, indent=2))
    (args.out / f"table_{args.term}.md").write_text(table + "\n")
    _plot(rows, args.term, args.out / f"tradeoff_{args.term}.png")
    print(
        f"\nIQL-Transformer, {args.steps} steps, seed {args.seed}; {args.users:,} simulated "
        f"users (one KuaiRand-v0 session each); {args.decisions} test decisions\n"
    )
    print(table)
    print(f"\nplot: {args.out / f'tradeoff_{args.term}.png'}")


if __name__ == "__main__":
    main()
