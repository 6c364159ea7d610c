"""Is the response-model ensemble's sigma calibrated? Sigma against the TRUE error, synthetic data.

    OMP_NUM_THREADS=1 .venv/bin/python scripts/sim_uncertainty.py --users 2000 --videos 3000

Synthesises a KuaiRand-Pure-shaped dataset (``--users`` x ``--videos``, a random-exposure pool
of ``--pool`` videos, so the standard log leaves many catalogue videos rarely or never shown;
seed ``--data-seed``), fits the simulator with ``--members`` ensemble members (``--hidden``,
``--epochs``, ``--item-dim``), and runs :func:`noetik.simulators.kuairand.calibration.calibrate`
on the held-out users' random-exposure contexts (the logged video and ``--uniform`` catalogue
videos each; also ``--train-users`` of the users whose random rows were trained on, for
comparison). Prints the command, the Markdown tables (for docs/simulator.md) and the runtime;
writes the calibration figure (``--figure``) and, with ``--out``, the report as JSON.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from noetik.data.dataset import load_kuairand
from noetik.data.synthetic import SynthConfig, synthesize
from noetik.simulators.kuairand import ResponseModelConfig, fit_response_model
from noetik.simulators.kuairand.calibration import (
    BinRow,
    CalibrationConfig,
    CalibrationReport,
    calibrate,
    format_report,
)
from noetik.simulators.kuairand.ensemble import EnsembleConfig
from noetik.utils.io import atomic_path, write_json


def _panel(ax: plt.Axes, rows: tuple[BinRow, ...], title: str) -> None:
    sigma = [r.mean_sigma for r in rows]
    ax.plot(sigma, [r.mean_abs_error for r in rows], "o-", label="mean |error|")
    ax.plot(sigma, [r.rmse for r in rows], "s--", label="RMSE", alpha=0.7)
    top = max([*sigma, 1e-6])
    ax.plot([0, top], [0, top], "k:", label="y = x")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("mean sigma (bin)")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)


def plot(report: CalibrationReport, path: Path) -> None:
    """Mean |error| and RMSE against mean sigma per sigma decile: all pairs, then per bin of
    training exposures of the video."""
    panels = [(report.deciles, f"all pairs (n={report.n_pairs:,})")]
    for row, rows in zip(report.by_exposure, report.exposure_deciles, strict=True):
        if rows:
            panels.append((rows, f"{row.label} training exposures (n={row.n:,})"))
    cols = 3
    n_rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(n_rows, cols, figsize=(3.6 * cols, 3.2 * n_rows), squeeze=False)
    flat = list(axes.ravel())
    for ax, (rows, title) in zip(flat, panels, strict=False):
        _panel(ax, rows, title)
    for ax in flat[len(panels) :]:
        ax.set_visible(False)
    for row in axes:
        row[0].set_ylabel(f"error of the members' mean ({report.config.head})")
    flat[0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--videos", type=int, default=3_000)
    parser.add_argument("--pool", type=int, default=1_000, help="random-exposure pool size")
    parser.add_argument("--data-seed", type=int, default=1)
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--item-dim", type=int, default=0)
    parser.add_argument("--uniform", type=int, default=1, help="catalogue videos per context")
    parser.add_argument("--train-users", type=int, default=600, help="training users studied")
    parser.add_argument("--n-boot", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--figure", type=Path, default=Path("docs/figures/sim_uncertainty.png"))
    parser.add_argument("--out", type=Path, help="write the report as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "data"
        synth = SynthConfig.for_release(
            "pure", users=args.users, videos=args.videos, seed=args.data_seed, pool_size=args.pool
        )
        synthesize(root, synth)
        ds = load_kuairand(root, cache_dir=Path(tmp) / "cache")
        model = ResponseModelConfig(
            hidden=args.hidden,
            epochs=args.epochs,
            item_dim=args.item_dim,
            fit_uncorrected=False,
            seed=args.seed,
        )
        sim = fit_response_model(
            ds,
            model,
            device=torch.device("cpu"),
            ensemble=EnsembleConfig(members=args.members, seed=args.seed),
        )
        fitted = time.perf_counter() - start
        config = CalibrationConfig(
            uniform_per_context=args.uniform,
            n_boot=args.n_boot,
            seed=args.seed,
            train_users=args.train_users,
        )
        report = calibrate(ds, sim, config)
    print("$ OMP_NUM_THREADS=1 python " + " ".join(shlex.quote(a) for a in sys.argv))
    print()
    print(format_report(report))
    print()
    plot(report, args.figure)
    if args.out:
        payload = {"argv": sys.argv, "report": report.to_dict()}
        write_json(args.out, json.loads(json.dumps(payload, default=str)))
    total = time.perf_counter() - start
    print(f"fit {fitted:.0f} s, total {total:.0f} s (one CPU thread); figure {args.figure}")


if __name__ == "__main__":
    main()
