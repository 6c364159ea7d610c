"""An ensemble of response models: K networks whose disagreement measures the model's doubt.

Each member is a :class:`ResponseNet` of the base model's architecture, trained by the same
loop (:func:`~noetik.simulators.kuairand.fit.train_network`) on the SAME examples as the base
model, but on its own bootstrap resample of the rows (``rng(seed, "member", k)``) and from its
own initialisation (seed ``derive_seed(seed, "member", k)``); its random-exposure head is then
calibrated like the base model's (:func:`calibrate_random_head`). Where the logs say little
(rare users, rare videos, states the logs never reach) the members disagree; the environment
turns that disagreement into an uncertainty of the reward, and optionally into a penalty
(MOPO, Yu et al. 2020; see ``docs/simulator.md``).

>>> sim = fit_response_model(ds, ResponseModelConfig(), ensemble=EnsembleConfig(members=5))
>>> add_members("runs/sim", EnsembleConfig(members=5))   # noetik sim ensemble runs/sim
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import Progress

from noetik.data.dataset import KuaiRandDataset, load_kuairand
from noetik.errors import ConfigError
from noetik.simulators.kuairand.examples import Examples, ItemTable
from noetik.simulators.kuairand.fit import (
    calibrate_random_head,
    obs_stats,
    train_network,
    training_examples,
    training_videos,
)
from noetik.simulators.kuairand.model import FittedSimulator, ResponseModelConfig, ResponseNet
from noetik.simulators.kuairand.store import CONFIG_FILE, load_simulator, save_members
from noetik.utils.bootstrap import resample_indices
from noetik.utils.io import write_json
from noetik.utils.seeding import derive_seed, rng


@dataclass(frozen=True)
class EnsembleConfig:
    """How the ensemble members are trained (their architecture and schedule are the base
    model's :class:`ResponseModelConfig`)."""

    members: int = 5
    """Number of members K (>= 2: one member has no spread)."""
    bootstrap: bool = True
    """Train each member on a bootstrap resample of the rows (N draws with replacement);
    False: every member sees every row once and only the initialisation and shuffling differ."""
    seed: int = 0
    """Seed of the resamples, initialisations and shuffles (same seed, same members)."""

    def __post_init__(self) -> None:
        if isinstance(self.members, bool) or not isinstance(self.members, int):
            raise ConfigError(f"ensemble: members must be an integer >= 2, got {self.members!r}")
        if self.members < 2:
            raise ConfigError(f"ensemble: members must be an integer >= 2, got {self.members!r}")
        if not isinstance(self.bootstrap, bool):
            raise ConfigError(f"ensemble: bootstrap must be true or false, got {self.bootstrap!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"ensemble: seed must be an integer >= 0, got {self.seed!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``from_dict`` inverts it)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EnsembleConfig:
        """Rebuild from ``to_dict``; unknown keys are a ConfigError."""
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"invalid ensemble config: {exc}") from None


def member_rows(ensemble: EnsembleConfig, k: int, n: int) -> np.ndarray | None:
    """(n,) int64 bootstrap resample of ``n`` example rows of member ``k`` (None: all rows)."""
    if not ensemble.bootstrap:
        return None
    rows: np.ndarray = resample_indices(rng(ensemble.seed, "member", k), 1, n)[0]
    return rows.astype(np.int64)


def fit_members(
    examples: Examples,
    items: ItemTable,
    config: ResponseModelConfig,
    stats: tuple[np.ndarray, np.ndarray],
    ensemble: EnsembleConfig,
    *,
    progress: Progress | None = None,
    device: torch.device | None = None,
) -> tuple[tuple[ResponseNet, ...], dict[str, Any]]:
    """Train the K members on ``examples`` (the base model's, with its state ``stats``);
    returns them (eval mode) and ``meta["ensemble"]``: the config, each member's epoch losses
    and calibration shifts."""
    nets: list[ResponseNet] = []
    losses: list[list[float]] = []
    shifts: list[list[float]] = []
    for k in range(ensemble.members):
        seed = derive_seed(ensemble.seed, "member", k)
        net, loss = train_network(
            examples,
            items,
            dataclasses.replace(config, seed=seed),
            stats,
            f"member {k}",
            progress=progress,
            device=device,
            rows=member_rows(ensemble, k, len(examples)),
        )
        shifts.append(calibrate_random_head(net, examples))
        nets.append(net)
        losses.append(loss)
    meta = {"config": ensemble.to_dict(), "losses": losses, "calibration_shifts": shifts}
    return tuple(nets), meta


def rebuild_examples(sim: FittedSimulator, progress: Progress | None = None) -> Examples:
    """The training examples of ``sim``, rebuilt from the dataset its ``meta`` names
    (``data_dir``, ``cache_dir``, ``train_random_users``, ``items``); a ConfigError when the
    dataset no longer gives the recorded row counts."""
    meta = sim.meta
    if not meta.get("data_dir"):
        raise ConfigError(f"{CONFIG_FILE}: meta names no data_dir to rebuild the examples from")
    ds: KuaiRandDataset = load_kuairand(meta["data_dir"], cache_dir=meta.get("cache_dir") or None)
    items = meta.get("items", "all")
    pool = training_videos(ds, dataclasses.replace(sim.config, items=items))
    users = np.asarray(meta.get("train_random_users", []), dtype=np.int64)
    examples = training_examples(ds, sim.vocab, users, pool, progress)
    counts = (
        int(np.count_nonzero(examples.exposure == 0)),
        int(np.count_nonzero(examples.exposure > 0)),
    )
    recorded = (meta.get("n_standard_rows"), meta.get("n_random_rows"))
    if counts != recorded:
        raise ConfigError(
            f"{meta['data_dir']}: gives {counts[0]:,} standard and {counts[1]:,} random rows, "
            f"the simulator was fitted on {recorded[0]} and {recorded[1]} (dataset changed?)"
        )
    return examples


def add_members(
    run_dir: Path | str,
    ensemble: EnsembleConfig,
    *,
    progress: Progress | None = None,
    device: torch.device | None = None,
) -> FittedSimulator:
    """Fit ``ensemble`` for the simulator saved in ``run_dir`` and write (or replace) its
    ``members.safetensors`` and ``meta["ensemble"]``; the base model's files are not touched
    (it is not refitted). Returns the simulator with its new members."""
    run_dir = Path(run_dir)
    sim = load_simulator(run_dir, device, members=False)  # a damaged members file is replaced
    examples = rebuild_examples(sim, progress)
    stats = obs_stats(examples.obs)
    members, meta = fit_members(
        examples, sim.items, sim.config, stats, ensemble, progress=progress, device=device
    )
    save_members(run_dir, members)
    payload: dict[str, Any] = json.loads((run_dir / CONFIG_FILE).read_text())
    payload.setdefault("meta", {})["ensemble"] = meta
    write_json(run_dir / CONFIG_FILE, payload)
    sim.members = members
    sim.share_item_features()
    sim.meta["ensemble"] = meta
    return sim
