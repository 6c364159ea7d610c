"""Score a fitted simulator on a random-exposure log it has not seen, against two baselines.

Per binary signal: ROC AUC of the predicted probability, mean predicted rate and observed rate.
For the watch ratio: RMSE, Pearson correlation, mean predicted and observed ratio. Baselines:

* ``popularity``: each video's smoothed mean feedback over the training rows,
  ``(sum_v + m * global_mean) / (n_v + m)`` with ``m`` = :data:`POPULARITY_PRIOR`;
* ``uncorrected``: the same network trained on the standard log only.

States of the validation rows use the user's standard-log rows plus the validation rows before
them (see :func:`noetik.simulators.kuairand.examples.build_examples`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import Progress

from noetik.data.dataset import load_kuairand
from noetik.simulators.kuairand.examples import (
    BINARY_HEADS,
    HEADS,
    Examples,
    build_examples,
    read_log,
)
from noetik.simulators.kuairand.model import FittedSimulator, ResponseNet, batched_logits

#: Pseudo-count of the popularity baseline's shrinkage towards the global mean.
POPULARITY_PRIOR = 20.0


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC of ``scores`` (N,) for binary ``labels`` (N,); ties count half; NaN if one class."""
    labels = np.asarray(labels) > 0.5
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(np.asarray(scores), return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    avg_rank = ends - (counts - 1) / 2.0  # 1-based average rank of each distinct score
    rank_sum = float(avg_rank[inverse][labels].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def binary_metrics(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """``auc``, ``mean_pred`` and ``mean_true`` of probabilities ``pred`` for 0/1 ``true``."""
    return {
        "auc": auc(pred, true),
        "mean_pred": float(np.mean(pred)),
        "mean_true": float(np.mean(true)),
    }


def ratio_metrics(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """``rmse``, ``corr`` (Pearson), ``mean_pred`` and ``mean_true`` of a continuous target."""
    pred64, true64 = np.asarray(pred, np.float64), np.asarray(true, np.float64)
    ok = pred64.std() > 0 and true64.std() > 0
    return {
        "rmse": float(np.sqrt(np.mean((pred64 - true64) ** 2))),
        "corr": float(np.corrcoef(pred64, true64)[0, 1]) if ok else float("nan"),
        "mean_pred": float(pred64.mean()),
        "mean_true": float(true64.mean()),
    }


def popularity_predictions(sim: FittedSimulator, item: np.ndarray) -> np.ndarray:
    """(B, 9) float64 popularity-baseline predictions for items ``item`` (B,) int64."""
    table = sim.popularity
    prior = table[:, 1:].sum(axis=0) / max(table[:, 0].sum(), 1.0)
    rows = table[item]
    pred: np.ndarray = (rows[:, 1:] + POPULARITY_PRIOR * prior) / (rows[:, :1] + POPULARITY_PRIOR)
    return pred


def network_predictions(net: ResponseNet, examples: Examples, exposure: float) -> np.ndarray:
    """(N, 9) float32 sigmoid outputs of ``net`` on ``examples`` with a fixed exposure flag."""
    logits = batched_logits(net, examples.obs, examples.item, exposure)
    return np.asarray(1.0 / (1.0 + np.exp(-logits)), dtype=np.float32)


def _metrics(pred: np.ndarray, true: np.ndarray, head: str) -> dict[str, float]:
    return binary_metrics(pred, true) if head in BINARY_HEADS else ratio_metrics(pred, true)


def score_examples(sim: FittedSimulator, examples: Examples) -> dict[str, Any]:
    """``{signal: {metrics..., "baselines": {"popularity": {...}, "uncorrected": {...}}}}``."""
    ours = network_predictions(sim.model, examples, 1.0)
    baselines = {"popularity": popularity_predictions(sim, examples.item)}
    if sim.uncorrected is not None:
        baselines["uncorrected"] = network_predictions(sim.uncorrected, examples, 0.0)
    result: dict[str, Any] = {}
    for j, head in enumerate(HEADS):
        true = examples.targets[:, j]
        entry: dict[str, Any] = _metrics(ours[:, j], true, head)
        entry["baselines"] = {
            name: _metrics(pred[:, j], true, head) for name, pred in baselines.items()
        }
        result[head] = entry
    return result


def validation_examples(
    sim: FittedSimulator, random_log_path: Path | str, progress: Progress | None = None
) -> Examples:
    """Examples of the rows of ``random_log_path`` (official log CSV schema), their states
    built from the run's data dir standard log plus these rows."""
    ds = load_kuairand(sim.meta["data_dir"], cache_dir=sim.meta.get("cache_dir"))
    log = read_log(ds, Path(random_log_path))
    return build_examples(ds, sim.vocab, log, only_extra=True, progress=progress)


def validate(
    sim: FittedSimulator, random_log_path: Path | str, progress: Progress | None = None
) -> dict[str, Any]:
    """Metrics of ``sim`` and its baselines on a random-exposure log (see :func:`score_examples`).

    Use a log of users the simulator was not trained on (``sim.meta["heldout_random_users"]``).
    """
    return score_examples(sim, validation_examples(sim, random_log_path, progress))


def seen_users(sim: FittedSimulator, examples: Examples) -> list[int]:
    """Users of ``examples`` whose random-exposure rows were trained on (should be empty)."""
    trained = np.asarray(sim.meta.get("train_random_users", []), dtype=np.int64)
    return [int(u) for u in np.intersect1d(np.unique(examples.user_id), trained)]
