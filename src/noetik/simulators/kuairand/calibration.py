"""Does the ensemble's spread predict its error? Sigma against the TRUE error on synthetic data.

On a synthetic dataset the true response model is known (:class:`SyntheticWorld`), so for any
(state, user, video, hour, tab) the error of the simulator is measurable. The pairs are the
held-out users' random-exposure contexts (their real states, hours and tabs; users whose
random rows the simulator never saw), each with

* ``logged``: the video the random log showed there, and
* ``uniform``: ``uniform_per_context`` videos drawn uniformly from the whole catalogue (many
  of which the logs show rarely or never: far from the data).

Per pair: the members' mean prediction of one head (``is_click`` or ``long_view``, random
exposure), its spread ``sigma`` (population std over the K members), the TRUE probability and
the absolute error ``|mean - true|``. :func:`calibrate` summarises them:

* the Spearman and Pearson correlation of sigma with the error, with percentile intervals over
  resamples of the USERS (:func:`noetik.utils.bootstrap.replicates`; a user's pairs share her
  state, so pairs are not independent);
* binned calibration: sigma quantile bins (deciles) -> mean sigma, mean |error| and RMSE (an
  unbiased Gaussian predictor with std sigma has RMSE = sigma and mean |error| = 0.8 sigma);
* the same split by distance from the logs: the video's number of training exposures (rows of
  the video the simulator was fitted on, standard log plus the trained random rows), in the
  bins of ``exposure_edges``, and by pair kind (logged or uniform).

>>> report = calibrate(ds, sim, CalibrationConfig(seed=0))   # ds synthetic, sim with members
>>> print(format_report(report))

See ``docs/simulator.md`` ("Calibration of sigma") and ``scripts/sim_uncertainty.py``.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from noetik.data.dataset import KuaiRandDataset
from noetik.data.synthetic import SyntheticWorld, load_config
from noetik.errors import ConfigError
from noetik.simulators.kuairand.examples import (
    HEADS,
    Examples,
    build_examples,
    random_rows,
)
from noetik.simulators.kuairand.model import FittedSimulator
from noetik.utils.bootstrap import Estimate, check_bootstrap, percentile_interval, replicates
from noetik.utils.seeding import rng

Head = Literal["is_click", "long_view"]

#: Pair kinds, in the order of :attr:`CalibrationPairs.kind` codes.
KINDS: tuple[str, ...] = ("logged", "uniform", "train logged", "train uniform")

#: Pairs predicted per batch (bounds the (K, B, 9) member outputs in memory).
BATCH = 8_192

#: Resamples per block of the bootstrap (each block holds a few (block, N) float64 arrays).
BOOT_BLOCK = 16


@dataclass(frozen=True)
class CalibrationConfig:
    """What :func:`calibrate` measures and how (same config and inputs, same report)."""

    head: Head = "is_click"
    """The predicted head whose sigma and error are studied (the truth is known for both)."""
    uniform_per_context: int = 1
    """Catalogue videos drawn uniformly (with replacement) per held-out context (>= 0)."""
    exposure_edges: tuple[int, ...] = (1, 3, 11, 101)
    """Lower edges of the distance bins after the first: with the default, a video with 0,
    1-2, 3-10, 11-100 or > 100 training exposures (strictly increasing, first >= 1)."""
    sigma_bins: int = 10
    """Quantile bins of sigma (10: deciles; >= 2)."""
    n_boot: int = 1_000
    """Bootstrap resamples of the users for the correlation intervals (>= 10)."""
    level: float = 0.95
    """Confidence level of the intervals, in (0, 1)."""
    seed: int = 0
    """Seed of the uniform videos, the sample of training users and the bootstrap."""
    train_users: int = 0
    """Also study this many TRAINING users (a seeded sample of the random-log users whose rows
    the simulator was fitted on; in-sample, each member saw about 63 % of their rows), as the
    kinds ``train logged`` and ``train uniform`` of :attr:`CalibrationReport.by_kind` (every
    other statistic is of the held-out users' pairs only). 0: none."""

    def __post_init__(self) -> None:
        if self.head not in ("is_click", "long_view"):
            raise ConfigError(f"calibration: head must be is_click or long_view, got {self.head!r}")
        ints = {
            "uniform_per_context": (self.uniform_per_context, 0),
            "sigma_bins": (self.sigma_bins, 2),
            "n_boot": (self.n_boot, 10),
            "seed": (self.seed, 0),
            "train_users": (self.train_users, 0),
        }
        for name, (value, low) in ints.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"calibration: {name} must be an integer >= {low}, got {value!r}")
        edges = tuple(self.exposure_edges)
        ok = all(isinstance(e, int) and not isinstance(e, bool) for e in edges)
        if not edges or not ok or edges[0] < 1 or any(b <= a for a, b in itertools.pairwise(edges)):
            raise ConfigError(
                "calibration: exposure_edges must be strictly increasing integers >= 1, "
                f"got {self.exposure_edges!r}"
            )
        object.__setattr__(self, "exposure_edges", edges)
        if not 0.0 < self.level < 1.0:
            raise ConfigError(f"calibration: level must be in (0, 1), got {self.level!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        out = dataclasses.asdict(self)
        out["exposure_edges"] = list(self.exposure_edges)
        return out


@dataclass(frozen=True, eq=False)
class CalibrationPairs:
    """N (state, video) pairs with the ensemble's answer and the truth."""

    user_id: np.ndarray
    """(N,) int64 user of the pair's context."""
    item: np.ndarray
    """(N,) int64 vocabulary index of the video."""
    kind: np.ndarray
    """(N,) int8 index into :data:`KINDS` (0 logged, 1 uniform; 2, 3 the same for training
    users)."""
    exposures: np.ndarray
    """(N,) int64 training exposures of the video (rows the simulator was fitted on)."""
    mean: np.ndarray
    """(N,) float64 the members' mean prediction."""
    sigma: np.ndarray
    """(N,) float64 population std of the members' predictions."""
    truth: np.ndarray
    """(N,) float64 the TRUE probability."""

    def __len__(self) -> int:
        return len(self.item)

    def subset(self, mask: np.ndarray) -> CalibrationPairs:
        """The pairs where ``mask`` (N,) bool is true."""
        return CalibrationPairs(**{k: v[mask] for k, v in vars(self).items()})

    @classmethod
    def concat(cls, parts: list[CalibrationPairs]) -> CalibrationPairs:
        """The pairs of ``parts``, one after the other."""
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**{k: np.concatenate([getattr(p, k) for p in parts]) for k in names})

    @property
    def error(self) -> np.ndarray:
        """(N,) float64 ``|mean - truth|``."""
        out: np.ndarray = np.abs(self.mean - self.truth)
        return out


@dataclass(frozen=True)
class BinRow:
    """Sigma and error of the pairs of one bin."""

    label: str
    """What the bin holds (``"0.012-0.018"``, ``"0"``, ``"uniform"``...)."""
    n: int
    """Pairs in the bin."""
    mean_sigma: float
    """Mean sigma (NaN for an empty bin)."""
    mean_abs_error: float
    """Mean |error|."""
    rmse: float
    """Root mean squared error."""
    spearman: float
    """Spearman correlation of sigma with |error| within the bin (NaN: < 3 pairs or constant)."""


@dataclass(frozen=True)
class CalibrationReport:
    """Everything :func:`calibrate` measured."""

    config: CalibrationConfig
    """The configuration."""
    n_pairs: int
    """Pairs studied."""
    n_users: int
    """Held-out users (the bootstrap's units)."""
    spearman: Estimate
    """Spearman correlation of sigma with |error| over all pairs, interval over users."""
    pearson: Estimate
    """Pearson correlation of sigma with |error|, interval over users."""
    baseline_spearman: Estimate
    """Spearman correlation of the Bernoulli scale ``sqrt(mean (1 - mean))`` of the members'
    mean with |error| (same resamples): what a sigma that knows more than the predicted level
    must beat."""
    deciles: tuple[BinRow, ...]
    """Sigma quantile bins of all pairs."""
    by_exposure: tuple[BinRow, ...]
    """Distance bins (training exposures of the video), every bin, empty ones included."""
    by_kind: tuple[BinRow, ...]
    """Logged and uniform pairs (of held-out users, then of training users if any)."""
    exposure_deciles: tuple[tuple[BinRow, ...], ...]
    """Sigma quantile bins within each distance bin (empty tuple for a bin with < 2 pairs)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "config": self.config.to_dict(),
            "n_pairs": self.n_pairs,
            "n_users": self.n_users,
            "spearman": self.spearman.as_dict(),
            "pearson": self.pearson.as_dict(),
            "baseline_spearman": self.baseline_spearman.as_dict(),
            "deciles": [dataclasses.asdict(r) for r in self.deciles],
            "by_exposure": [dataclasses.asdict(r) for r in self.by_exposure],
            "by_kind": [dataclasses.asdict(r) for r in self.by_kind],
            "exposure_deciles": [[dataclasses.asdict(r) for r in b] for b in self.exposure_deciles],
        }


# ------------------------------------------------------------------------------------------
# Correlations and bins (plain arrays)
# ------------------------------------------------------------------------------------------


def weighted_pearson(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(b,) Pearson correlation of ``x`` and ``y`` with row weights ``weights`` (b, N) float64;
    ``x``, ``y`` (N,) or (b, N) float64. NaN where a weighted variance is 0 (or no weight)."""
    total = weights.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = (weights * x).sum(axis=-1) / total
        my = (weights * y).sum(axis=-1) / total
        dx = x - mx[:, None]
        dy = y - my[:, None]
        cov = (weights * dx * dy).sum(axis=-1)
        vx = (weights * dx * dx).sum(axis=-1)
        vy = (weights * dy * dy).sum(axis=-1)
        out: np.ndarray = cov / np.sqrt(vx * vy)
    return np.where((vx > 0) & (vy > 0), out, np.nan)


def weighted_ranks(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(b, N) float64 mid-ranks of ``values`` (N,) in each of b weighted samples ``weights``
    (b, N): the ranks a sample that repeats row i ``weights[:, i]`` times gives its copies
    (ties share the mean of their positions), so a weighted Pearson of these ranks is the
    Spearman correlation of the repeated sample."""
    n = len(values)
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    new = np.concatenate([[True], ordered[1:] != ordered[:-1]])
    starts = np.flatnonzero(new)
    ends = np.append(starts[1:], n)
    group = np.cumsum(new) - 1
    cum = np.zeros((weights.shape[0], n + 1))
    np.cumsum(weights[:, order], axis=1, out=cum[:, 1:])
    below = cum[:, starts]
    mid = below + (cum[:, ends] - below + 1.0) / 2.0
    ranks = np.empty_like(cum[:, 1:])
    ranks[:, order] = mid[:, group]
    return ranks


def weighted_spearman(x: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(b,) Spearman correlation of ``x`` and ``y`` (N,) float64 in each weighted sample
    ``weights`` (b, N) (see :func:`weighted_ranks`)."""
    return weighted_pearson(weighted_ranks(x, weights), weighted_ranks(y, weights), weights)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman correlation of ``x`` and ``y`` (N,) (mid-ranks for ties; NaN if constant)."""
    ones = np.ones((1, len(x)))
    return float(weighted_spearman(np.asarray(x, np.float64), np.asarray(y, np.float64), ones)[0])


def correlations(
    sigma: np.ndarray,
    error: np.ndarray,
    cluster: np.ndarray,
    *,
    n_boot: int,
    level: float,
    seed: int | tuple[int, ...],
) -> dict[str, Estimate]:
    """``{"spearman", "pearson"}``: correlations of ``sigma`` with ``error`` (N,) float64 over
    all rows, with percentile intervals over ``n_boot`` resamples of the clusters (``cluster``
    (N,) int labels, e.g. users; one set of resamples for both)."""
    check_bootstrap(n_boot, level)
    x, y = np.asarray(sigma, np.float64), np.asarray(error, np.float64)
    _, unit = np.unique(np.asarray(cluster), return_inverse=True)
    unit = unit.ravel()
    n_units = int(unit.max()) + 1 if len(unit) else 0
    ones = np.ones((1, len(x)))
    points = (weighted_spearman(x, y, ones)[0], weighted_pearson(x, y, ones)[0])

    def statistic(counts: np.ndarray) -> np.ndarray:
        w = counts[:, unit]
        return np.stack([weighted_spearman(x, y, w), weighted_pearson(x, y, w)], axis=1)

    reps = replicates(statistic, n_units, n_boot=n_boot, seed=seed, block=BOOT_BLOCK)
    return {
        name: Estimate(float(points[j]), *percentile_interval(reps[:, j], level))
        for j, name in enumerate(("spearman", "pearson"))
    }


def bin_row(label: str, sigma: np.ndarray, error: np.ndarray) -> BinRow:
    """The :class:`BinRow` of the pairs ``sigma``, ``error`` (n,) float64 (error signed or not)."""
    if not len(sigma):
        nan = float("nan")
        return BinRow(label, 0, nan, nan, nan, nan)
    rho = spearman(sigma, np.abs(error)) if len(sigma) >= 3 else float("nan")
    return BinRow(
        label=label,
        n=len(sigma),
        mean_sigma=float(np.mean(sigma)),
        mean_abs_error=float(np.mean(np.abs(error))),
        rmse=float(np.sqrt(np.mean(np.square(error)))),
        spearman=rho,
    )


def sigma_quantile_bins(sigma: np.ndarray, error: np.ndarray, n_bins: int) -> tuple[BinRow, ...]:
    """Rows of ``n_bins`` equal-count bins of ``sigma`` (N,) float64 in increasing order (equal
    sigmas may straddle two bins; each bin is labelled by its sigma range), with the errors
    ``error`` (N,) float64 of the same pairs."""
    if n_bins < 1:
        raise ConfigError(f"calibration: need at least one sigma bin, got {n_bins}")
    order = np.argsort(sigma, kind="stable")
    rows = []
    for part in np.array_split(order, n_bins):
        if not len(part):
            continue
        s = sigma[part]
        rows.append(bin_row(f"{s.min():.3g}-{s.max():.3g}", s, error[part]))
    return tuple(rows)


def exposure_labels(edges: tuple[int, ...]) -> tuple[str, ...]:
    """Labels of the distance bins of ``edges``: ``("0", "1-2", "3-10", "11-100", ">100")``."""
    lows = (0, *edges)
    highs = (*(e - 1 for e in edges), None)
    return tuple(
        f">{lo - 1}" if hi is None else (str(lo) if lo == hi else f"{lo}-{hi}")
        for lo, hi in zip(lows, highs, strict=True)
    )


def exposure_bin(exposures: np.ndarray, edges: tuple[int, ...]) -> np.ndarray:
    """(N,) int64 distance bin of each pair (0: fewer than ``edges[0]`` exposures)."""
    out: np.ndarray = np.searchsorted(np.asarray(edges), exposures, side="right").astype(np.int64)
    return out


# ------------------------------------------------------------------------------------------
# Pairs
# ------------------------------------------------------------------------------------------


def random_contexts(ds: KuaiRandDataset, sim: FittedSimulator, users: np.ndarray) -> Examples:
    """The random-exposure rows of ``users`` (K,) int64, with their states (their standard-log
    rows plus their random rows before each, as at validation)."""
    return build_examples(ds, sim.vocab, random_rows(ds, users), only_extra=True)


def heldout_contexts(ds: KuaiRandDataset, sim: FittedSimulator) -> Examples:
    """The :func:`random_contexts` of the simulator's held-out users."""
    users = np.asarray(sim.meta.get("heldout_random_users", []), dtype=np.int64)
    if not len(users):
        raise ConfigError(
            "calibration: the simulator holds out no random-log users (fit it with "
            "random_users < 1)"
        )
    return random_contexts(ds, sim, users)


def training_contexts(ds: KuaiRandDataset, sim: FittedSimulator, k: int, seed: int) -> Examples:
    """The :func:`random_contexts` of ``k`` training users drawn without replacement (seeded)."""
    users = np.asarray(sim.meta.get("train_random_users", []), dtype=np.int64)
    if not len(users):
        raise ConfigError("calibration: train_users > 0 but the simulator names no training users")
    chosen = rng(seed, "calibration-train-users").choice(users, min(k, len(users)), replace=False)
    return random_contexts(ds, sim, np.sort(chosen))


def member_answer(
    sim: FittedSimulator, obs: np.ndarray, item: np.ndarray, head: str
) -> tuple[np.ndarray, np.ndarray]:
    """(mean, sigma), each (N,) float64: the members' mean and population std of ``head``
    (random exposure) for states ``obs`` (N, 128) and vocabulary items ``item`` (N,)."""
    j = HEADS.index(head)
    device = sim.device
    means, sigmas = [], []
    for start in range(0, len(item), BATCH):
        o = torch.as_tensor(np.asarray(obs[start : start + BATCH], np.float32), device=device)
        i = torch.as_tensor(np.asarray(item[start : start + BATCH], np.int64), device=device)
        p = sim.predict_members_torch(o, i)[:, :, j].double()
        means.append(p.mean(dim=0).cpu().numpy())
        sigmas.append(p.std(dim=0, correction=0).cpu().numpy())
    if not means:
        return np.zeros(0), np.zeros(0)
    return np.concatenate(means), np.concatenate(sigmas)


def truth_function(world: SyntheticWorld, head: str) -> Callable[..., np.ndarray]:
    """The world's TRUE probability of ``head`` as ``f(user, video_id, hour, tab)``."""
    return world.click_probability if head == "is_click" else world.long_view_probability


def calibration_pairs(
    world: SyntheticWorld,
    sim: FittedSimulator,
    contexts: Examples,
    config: CalibrationConfig,
    *,
    training: bool = False,
) -> CalibrationPairs:
    """The logged and uniform pairs of ``contexts`` with the ensemble's answer and the truth
    (``training``: contexts of training users, kinds 2 and 3, their own uniform videos)."""
    if not sim.members:
        raise ConfigError("calibration: the simulator has no ensemble members (sim ensemble)")
    if len(contexts) == 0:
        raise ConfigError("calibration: the users studied have no random-exposure rows")
    n, m = len(contexts), config.uniform_per_context
    n_items = len(sim.vocab)
    if int(sim.vocab.video_ids.max()) >= world.n_videos:
        raise ConfigError(
            "calibration: the simulator's videos are not the synthetic world's "
            f"({world.n_videos} videos; was it fitted on this dataset?)"
        )
    stream = ("calibration-uniform", "train") if training else ("calibration-uniform",)
    uniform = rng(config.seed, *stream).integers(0, n_items, size=(m, n))
    rows = np.tile(np.arange(n), 1 + m)
    item = np.concatenate([contexts.item, uniform.ravel()]).astype(np.int64)
    kind = (np.repeat(np.arange(1 + m) > 0, n) + (2 if training else 0)).astype(np.int8)
    mean, sigma = member_answer(sim, contexts.obs[rows], item, config.head)
    user = contexts.user_id[rows]
    truth = truth_function(world, config.head)(
        user, sim.vocab.decode(item), contexts.hour[rows], contexts.tab[rows]
    )
    return CalibrationPairs(
        user_id=user.astype(np.int64),
        item=item,
        kind=kind,
        exposures=sim.popularity[item, 0].round().astype(np.int64),
        mean=mean,
        sigma=sigma,
        truth=np.asarray(truth, np.float64),
    )


# ------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------


def summarise(every: CalibrationPairs, config: CalibrationConfig) -> CalibrationReport:
    """The :class:`CalibrationReport` of ``every`` pair (held-out users' and training users')."""
    pairs = every.subset(every.kind < 2)
    if len(pairs) < 3:
        raise ConfigError(f"calibration: need at least 3 pairs, got {len(pairs)}")
    signed = pairs.mean - pairs.truth

    def with_error(x: np.ndarray) -> dict[str, Estimate]:
        seed = (config.seed, 1)  # the same user resamples for every x
        return correlations(
            x, pairs.error, pairs.user_id, n_boot=config.n_boot, level=config.level, seed=seed
        )

    corr = with_error(pairs.sigma)
    base = with_error(np.sqrt(pairs.mean * (1.0 - pairs.mean)))
    bins = exposure_bin(pairs.exposures, config.exposure_edges)
    by_exposure, nested = [], []
    for b, label in enumerate(exposure_labels(config.exposure_edges)):
        mask = bins == b
        by_exposure.append(bin_row(label, pairs.sigma[mask], signed[mask]))
        enough = int(mask.sum()) >= 2
        k = min(config.sigma_bins, int(mask.sum()))
        nested.append(sigma_quantile_bins(pairs.sigma[mask], signed[mask], k) if enough else ())
    every_signed = every.mean - every.truth
    by_kind = tuple(
        bin_row(name, every.sigma[every.kind == k], every_signed[every.kind == k])
        for k, name in enumerate(KINDS)
        if np.any(every.kind == k)
    )
    return CalibrationReport(
        config=config,
        n_pairs=len(pairs),
        n_users=len(np.unique(pairs.user_id)),
        spearman=corr["spearman"],
        pearson=corr["pearson"],
        baseline_spearman=base["spearman"],
        deciles=sigma_quantile_bins(pairs.sigma, signed, config.sigma_bins),
        by_exposure=tuple(by_exposure),
        by_kind=by_kind,
        exposure_deciles=tuple(nested),
    )


def synthetic_world(ds: KuaiRandDataset) -> SyntheticWorld:
    """The latent world of a synthetic dataset (its ``noetik_synth.json``); a ConfigError for
    other data (the truth is unknown there)."""
    try:
        config = load_config(ds.root)
    except FileNotFoundError:
        raise ConfigError(
            f"calibration: {ds.root} is not a synthetic dataset (no noetik_synth.json)"
        ) from None
    return SyntheticWorld.from_config(config)


def calibrate(
    ds: KuaiRandDataset, sim: FittedSimulator, config: CalibrationConfig | None = None
) -> CalibrationReport:
    """Study the ensemble's sigma against its TRUE error on the synthetic dataset ``ds`` the
    simulator ``sim`` (with members) was fitted on (see the module docstring)."""
    config = config or CalibrationConfig()
    if not sim.members:
        raise ConfigError("calibration: the simulator has no ensemble members (sim ensemble)")
    world = synthetic_world(ds)
    pairs = calibration_pairs(world, sim, heldout_contexts(ds, sim), config)
    if config.train_users:
        train = training_contexts(ds, sim, config.train_users, config.seed)
        pairs = CalibrationPairs.concat(
            [pairs, calibration_pairs(world, sim, train, config, training=True)]
        )
    return summarise(pairs, config)


def _rows_table(rows: tuple[BinRow, ...], first: str) -> list[str]:
    lines = [
        f"| {first} | pairs | mean sigma | mean abs error | RMSE | RMSE / sigma | Spearman |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = r.rmse / r.mean_sigma if r.n and r.mean_sigma > 0 else float("nan")
        lines.append(
            f"| {r.label} | {r.n:,} | {r.mean_sigma:.4f} | {r.mean_abs_error:.4f} | "
            f"{r.rmse:.4f} | {ratio:.2f} | {r.spearman:.2f} |"
        )
    return lines


def format_report(report: CalibrationReport) -> str:
    """Markdown: the correlations, then the kind, distance and sigma-decile tables."""
    c = report.config
    lines = [
        f"{report.n_pairs:,} pairs of {report.n_users:,} held-out users, head {c.head}; "
        f"intervals: {c.level:.0%} percentile bootstrap over users ({c.n_boot} resamples).",
        "",
        f"- Spearman(sigma, |error|): {report.spearman.format()}",
        f"- Pearson(sigma, |error|): {report.pearson.format()}",
        f"- baseline Spearman(sqrt(mean (1 - mean)), |error|): {report.baseline_spearman.format()}",
        "",
        *_rows_table(report.by_kind, "pairs"),
        "",
        *_rows_table(report.by_exposure, "training exposures of the video"),
        "",
        *_rows_table(report.deciles, "sigma bin"),
    ]
    return "\n".join(lines)
