"""Fit the response model on the logs, debiased with the random-exposure log.

Debiasing: *joint training with an exposure indicator*. The standard log is exposure-biased
(the logging recommender showed videos it expected users to like, using information the state
does not hold), so ``P(click | state, video)`` learned from it overshoots what a user does with
a video an agent picks. The random log (uniform exposure, known propensities) is unbiased but
small. Both are trained jointly: one shared trunk, a standard head, and a random-exposure
correction head that only random rows train (``exposure = 1``), with random rows up-weighted
by ``random_weight``. Predictions use the random-exposure head. The uncorrected baseline is the
same network trained on the standard log alone. See ``docs/simulator.md`` for the comparison.

>>> sim = fit_response_model(load_kuairand(path), ResponseModelConfig(epochs=6))
>>> sim.save("runs/sim")
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import torch
from rich.progress import Progress
from torch.nn import functional as F

from noetik.data.dataset import KuaiRandDataset
from noetik.data.schema import FileKind
from noetik.data.transitions import ItemVocab
from noetik.errors import ConfigError
from noetik.simulators.kuairand.examples import (
    HEADS,
    Examples,
    ItemTable,
    build_examples,
    build_item_table,
    random_log_users,
    random_rows,
    split_random_users,
)
from noetik.simulators.kuairand.model import (
    FittedSimulator,
    ResponseModelConfig,
    ResponseNet,
    batched_logits,
)
from noetik.utils.seeding import rng

if TYPE_CHECKING:
    from noetik.simulators.kuairand.ensemble import EnsembleConfig


def default_device() -> torch.device:
    """CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@contextlib.contextmanager
def deterministic() -> Iterator[None]:
    """Deterministic torch kernels for the duration (warn only where none exists)."""
    previous = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous, warn_only=warn_only)


def obs_stats(obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-dimension mean and std (128,) float32 of states (N, 128); std floored at 1e-3."""
    mean = np.zeros(obs.shape[1], dtype=np.float64)
    sq = np.zeros(obs.shape[1], dtype=np.float64)
    for lo in range(0, len(obs), 200_000):
        block = obs[lo : lo + 200_000].astype(np.float64)
        mean += block.sum(axis=0)
        sq += (block**2).sum(axis=0)
    n = max(len(obs), 1)
    mean /= n
    std = np.sqrt(np.maximum(sq / n - mean**2, 0.0))
    return mean.astype(np.float32), np.maximum(std, 1e-3).astype(np.float32)


def popularity_table(examples: Examples, n_items: int) -> np.ndarray:
    """(A, 1 + 9) float64: exposures of each item, then the sum of each target."""
    out = np.zeros((n_items, 1 + len(HEADS)), dtype=np.float64)
    np.add.at(out[:, 0], examples.item, 1.0)
    for j in range(len(HEADS)):
        out[:, 1 + j] = np.bincount(examples.item, examples.targets[:, j], minlength=n_items)
    return out


def _tensors(examples: Examples, device: torch.device) -> dict[str, torch.Tensor]:
    """Everything but the states (gathered per batch in numpy: float16 indexing is slow in
    torch on CPU, and float32 copies of all states would double their memory)."""
    return {
        "item": torch.from_numpy(examples.item).to(device),
        "exposure": torch.from_numpy(examples.exposure).to(device),
        "targets": torch.from_numpy(examples.targets).to(device),
    }


def _gather_obs(obs: np.ndarray, rows: np.ndarray, device: torch.device) -> torch.Tensor:
    """(B, 128) float32 tensor on ``device`` of states ``obs[rows]``."""
    return torch.from_numpy(obs[rows].astype(np.float32)).to(device, non_blocking=True)


def train_network(
    examples: Examples,
    items: ItemTable,
    config: ResponseModelConfig,
    stats: tuple[np.ndarray, np.ndarray],
    label: str,
    *,
    progress: Progress | None = None,
    device: torch.device | None = None,
    on_epoch: Callable[[int, ResponseNet], None] | None = None,
    rows: np.ndarray | None = None,
) -> tuple[ResponseNet, list[float]]:
    """Train one :class:`ResponseNet` on ``examples``; returns it (eval mode, on ``device``)
    and the mean weighted loss of each epoch. Random rows weigh ``config.random_weight``.
    ``on_epoch(epoch, net)`` is called after each epoch (net in train mode; do not modify).
    ``rows`` (M,) int: the example rows an epoch passes over, repeats allowed (a bootstrap
    resample); None: every row once."""
    device = device or default_device()
    n = len(examples) if rows is None else len(rows)
    steps = math.ceil(n / config.batch_size)
    total = max(config.epochs * steps, 1)
    task = progress.add_task(f"fitting {label} model", total=total) if progress else None
    with deterministic():
        torch.manual_seed(config.seed)
        net = ResponseNet(items.features, config, *stats).to(device)
        opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(s / total, 1.0)))
        )
        data = _tensors(examples, device)
        weight = torch.where(data["exposure"] > 0, config.random_weight, 1.0)
        shuffle = rng(config.seed, "shuffle", label)
        losses: list[float] = []
        for _ in range(config.epochs):
            order_np = shuffle.permutation(n)
            if rows is not None:
                order_np = rows[order_np]
            order = torch.from_numpy(order_np).to(device)
            running, seen = 0.0, 0.0
            for start in range(0, n, config.batch_size):
                idx = order[start : start + config.batch_size]
                obs = _gather_obs(examples.obs, order_np[start : start + config.batch_size], device)
                logits = net(obs, data["item"][idx], data["exposure"][idx])
                per_row = F.binary_cross_entropy_with_logits(
                    logits, data["targets"][idx], reduction="none"
                ).sum(dim=1)
                w = weight[idx]
                loss = (per_row * w).sum() / w.sum()
                opt.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                opt.step()
                sched.step()
                running += float(loss.detach()) * float(w.sum())
                seen += float(w.sum())
                if progress is not None and task is not None:
                    progress.advance(task)
            losses.append(running / max(seen, 1e-12))
            if on_epoch is not None:
                on_epoch(len(losses), net)
    return net.eval(), losses


def _solve_shift(logits: np.ndarray, target: float) -> float:
    """The offset ``b`` with ``mean(sigmoid(logits + b)) == target`` (bisection, |b| <= 20)."""
    target = min(max(target, 1e-6), 1.0 - 1e-6)
    lo, hi = -20.0, 20.0
    z = logits.astype(np.float64)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if np.mean(1.0 / (1.0 + np.exp(-(z + mid)))) < target:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def calibrate_random_head(net: ResponseNet, examples: Examples) -> list[float]:
    """Shift each random-exposure head's bias so that its mean prediction on the random rows
    of ``examples`` equals the observed mean (calibration in the large); returns the shifts."""
    rows = examples.subset(examples.exposure > 0)
    if not len(rows):
        return []
    logits = batched_logits(net, rows.obs, rows.item, 1.0)
    targets = rows.targets.mean(axis=0)
    shifts = [_solve_shift(logits[:, j], float(targets[j])) for j in range(len(HEADS))]
    with torch.no_grad():
        bias = net.random_head.bias
        bias.add_(torch.tensor(shifts, dtype=bias.dtype, device=bias.device))
    return shifts


#: From this many videos on, ``items="auto"`` fits the simulator on the random pool only.
POOL_ONLY_ABOVE = 100_000


def training_videos(ds: KuaiRandDataset, config: ResponseModelConfig) -> np.ndarray | None:
    """The videos whose rows the simulator trains on under ``config.items``: None for every
    video, else the random pool's sorted ids (the simulator still knows every video)."""
    has_random = ds.has(FileKind.LOG_RANDOM)
    if config.items == "random_pool" and not has_random:
        raise ConfigError("items='random_pool' needs the random-exposure log")
    if config.items == "all" or not has_random:
        return None
    pool = ds.scan(FileKind.LOG_RANDOM).select(pl.col("video_id").cast(pl.Int64).unique())
    if config.items == "auto":
        n_videos = ItemVocab.from_dataset(ds).video_ids.shape[0]
        if n_videos <= POOL_ONLY_ABOVE:
            return None
    return np.sort(pool.collect()["video_id"].to_numpy())


def training_examples(
    ds: KuaiRandDataset,
    vocab: ItemVocab,
    train_users: np.ndarray,
    pool: np.ndarray | None,
    progress: Progress | None = None,
) -> Examples:
    """The simulator's training examples: every standard-log row (of the videos ``pool``, None:
    all) and the random-log rows of ``train_users`` (K,) int64."""
    extra = random_rows(ds, train_users) if len(train_users) else None
    return build_examples(ds, vocab, extra, only_videos=pool, progress=progress)


def fit_response_model(
    ds: KuaiRandDataset,
    config: ResponseModelConfig | None = None,
    progress: Progress | None = None,
    device: torch.device | None = None,
    ensemble: EnsembleConfig | None = None,
) -> FittedSimulator:
    """Fit the debiased simulator (and the uncorrected baseline) on ``ds``.

    Trains on every standard-log row plus the random-log rows of ``config.random_users``; the
    other random-log users are recorded in ``meta["heldout_random_users"]`` for validation.
    With ``ensemble``, also its members on the same examples
    (:func:`~noetik.simulators.kuairand.ensemble.fit_members`).
    """
    config = config or ResponseModelConfig()
    vocab = ItemVocab.from_dataset(ds)
    pool = training_videos(ds, config)
    train_users, heldout = split_random_users(random_log_users(ds), config.random_users)
    examples = training_examples(ds, vocab, train_users, pool, progress)
    items = build_item_table(ds, vocab)
    stats = obs_stats(examples.obs)
    model, losses = train_network(
        examples, items, config, stats, "debiased", progress=progress, device=device
    )
    shifts = calibrate_random_head(model, examples)
    uncorrected: ResponseNet | None = None
    unc_losses: list[float] = []
    if config.fit_uncorrected:
        standard = examples.subset(examples.exposure == 0)
        uncorrected, unc_losses = train_network(
            standard, items, config, stats, "uncorrected", progress=progress, device=device
        )
    meta: dict[str, Any] = {
        "data_dir": str(ds.root.resolve()),
        "cache_dir": str(ds.cache.directory.resolve()),
        "release": ds.release.value,
        "train_random_users": [int(u) for u in train_users],
        "heldout_random_users": [int(u) for u in heldout],
        "items": "all" if pool is None else "random_pool",
        "n_standard_rows": int(np.count_nonzero(examples.exposure == 0)),
        "n_random_rows": int(np.count_nonzero(examples.exposure > 0)),
        "losses": {"debiased": losses, "uncorrected": unc_losses},
        "calibration_shifts": dict(zip(HEADS, shifts, strict=False)),
    }
    members: tuple[ResponseNet, ...] = ()
    if ensemble is not None:
        from noetik.simulators.kuairand.ensemble import fit_members  # it builds on this module

        members, meta["ensemble"] = fit_members(
            examples, items, config, stats, ensemble, progress=progress, device=device
        )
    return FittedSimulator(
        config=config,
        vocab=vocab,
        items=items,
        model=model,
        uncorrected=uncorrected,
        popularity=popularity_table(examples, len(vocab)),
        meta=meta,
        members=members,
    )
