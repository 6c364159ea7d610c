"""The person as the learner on KuaiRand: does a user's long view of a video with a given tag
follow their recent outcomes on that tag the way a Rescorla-Wagner learner predicts?

Every interaction of the log is split into one row per tag of its video; a user's rows of one
tag, in time order, form a sequence of outcomes ``y_1, y_2, ...`` (``long_view`` 0/1). Four
models predict ``P(y_n = 1)`` from what came before (all fitted on a seeded half of the
users, the *training* users, and scored on the other half):

* ``tag_base_rate`` (no learning): the tag's long-view rate among training users
  (shrunk to the overall rate with ``prior`` pseudo-interactions);
* ``user_rw``: a Rescorla-Wagner value of the user over *all* their videos, whatever the tag,
  ``V <- V + alpha (y - V)`` from the overall rate (recent outcomes in general);
* ``tag_mean``: the user's running long-view rate on the tag, from the tag's base rate with
  ``m`` pseudo-interactions (a stable preference, learned without forgetting);
* ``tag_rw``: a Rescorla-Wagner value per (user, tag), ``V_1`` = the tag's base rate,
  ``V_{n+1} = V_n + alpha (y_n - V_n)``: recent outcomes on the tag weigh most, the outcome k
  trials back with weight ``alpha (1 - alpha)^(k-1)``.

``alpha`` and ``m`` are chosen on a grid by the training users' likelihood. Scores on the test
users, each a mean over users with a 95 % bootstrap interval (resampling users): the
log-likelihood per row, its difference between models (paired per user), and the AUC of each
model's probabilities among the user's own rows (:func:`~noetik.evaluation.random_log.
ranking_metrics`; users with only long views or none have no AUC).

The **lag profile** asks the question without a model: per user, ``P(y_n = 1 | y_{n-k} = 1) -
P(y_n = 1 | y_{n-k} = 0)`` on the same tag, for k = 1..``max_lag``. A stable preference gives
the same contrast at every lag; a Rescorla-Wagner learner's contrast decays with k.

>>> from noetik.analysis.choices.kuairand_tags import TagLearningConfig, tag_learning
>>> from noetik.data.dataset import load_kuairand
>>> result = tag_learning(load_kuairand(None), TagLearningConfig(seed=0))
>>> result.delta["tag_rw - tag_base_rate"].format()
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import polars as pl

from noetik.analysis.choices.text import estimate_text
from noetik.data.choices import BoolArray, FloatArray, IntArray
from noetik.data.dataset import KuaiRandDataset
from noetik.data.schema import FileKind
from noetik.errors import ConfigError, DataError
from noetik.evaluation.random_log import ranking_metrics
from noetik.utils.bootstrap import Estimate, bootstrap_means, check_bootstrap
from noetik.utils.seeding import rng

__all__ = [
    "TAG_MODELS",
    "TagLearning",
    "TagLearningConfig",
    "TagRows",
    "rescorla_wagner_values",
    "tag_learning",
    "tag_learning_lines",
    "tag_learning_rows",
    "tag_rows",
]

#: The models compared, in order.
TAG_MODELS: tuple[str, ...] = ("tag_base_rate", "user_rw", "tag_mean", "tag_rw")

#: Models whose predictions depend on the order of a sequence (scored against shuffles).
ORDER_MODELS: tuple[str, ...] = ("tag_mean", "tag_rw")

#: Learning rates tried (Rescorla-Wagner models).
DEFAULT_ALPHAS: tuple[float, ...] = (
    0.01,
    0.02,
    0.03,
    0.05,
    0.07,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.7,
    0.9,
)
#: Pseudo-interactions tried (running mean).
DEFAULT_PSEUDO: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
#: Probabilities are kept in [EPS, 1 - EPS] for the log-likelihood.
EPS = 1e-4


@dataclass(frozen=True)
class TagLearningConfig:
    """What is read and how the models are fitted and scored."""

    log: Literal["log_standard", "log_random"] = "log_standard"
    """Which log to read."""
    signal: str = "long_view"
    """Binary outcome column of the log."""
    test_fraction: float = 0.5
    """Share of users held out for scoring (seeded)."""
    prior: float = 20.0
    """Pseudo-interactions shrinking each tag's base rate towards the overall rate."""
    alphas: tuple[float, ...] = DEFAULT_ALPHAS
    """Grid of learning rates of the Rescorla-Wagner models."""
    pseudo: tuple[float, ...] = DEFAULT_PSEUDO
    """Grid of pseudo-interactions of the running mean."""
    max_lag: int = 5
    """Lags of the model-free lag profile."""
    permutations: int = 5
    """Shuffles of each sequence for the no-order null (scores averaged over them)."""
    max_users: int | None = None
    """Use at most this many users (a seeded sample); None: all."""
    n_boot: int = 1_000
    """Bootstrap resamples of test users."""
    level: float = 0.95
    """Confidence level of the intervals."""
    seed: int = 0
    """Seed of the user split, the sample and the bootstrap."""

    def __post_init__(self) -> None:
        if self.log not in ("log_standard", "log_random"):
            raise ConfigError(f"log must be log_standard or log_random, got {self.log!r}")
        if not 0.0 < self.test_fraction < 1.0:
            raise ConfigError(f"test_fraction must lie in (0, 1), got {self.test_fraction}")
        if not self.alphas or not all(0.0 < a <= 1.0 for a in self.alphas):
            raise ConfigError(f"alphas must lie in (0, 1], got {self.alphas}")
        if not self.pseudo or not all(m > 0 for m in self.pseudo) or self.prior < 0:
            raise ConfigError("pseudo counts must be > 0 and prior >= 0")
        if self.permutations < 1:
            raise ConfigError(f"permutations must be >= 1, got {self.permutations}")
        if self.max_lag < 1 or (self.max_users is not None and self.max_users < 4):
            raise ConfigError("max_lag must be >= 1 and max_users >= 4")
        check_bootstrap(self.n_boot, self.level, min_boot=2)


@dataclass(frozen=True, eq=False)
class TagRows:
    """One row per (interaction, tag of its video), sorted by user, tag and time (N rows)."""

    user: IntArray
    """(N,) int64 user index 0..U-1."""
    tag: IntArray
    """(N,) int64 tag id."""
    event: IntArray
    """(N,) int64 index of the interaction in the log (sorted by user and time)."""
    y: FloatArray
    """(N,) float64 outcome 0/1."""
    position: IntArray
    """(N,) int64 position of the row in its (user, tag) sequence (0 = first)."""
    event_user: IntArray
    """(E,) int64 user index of each interaction."""
    event_y: FloatArray
    """(E,) float64 outcome of each interaction."""
    event_position: IntArray
    """(E,) int64 position of each interaction among the user's (0 = first)."""
    user_ids: IntArray
    """(U,) int64 KuaiRand user id of each user index."""


def tag_rows(ds: KuaiRandDataset, config: TagLearningConfig) -> TagRows:
    """The per-tag rows of ``config.log`` (videos without tags are left out)."""
    kind = FileKind.LOG_STANDARD if config.log == "log_standard" else FileKind.LOG_RANDOM
    log = ds.interactions(kind)
    if config.signal not in log.collect_schema().names():
        raise ConfigError(f"the log has no column '{config.signal}'")
    if not ds.has(FileKind.VIDEO_BASIC):
        raise DataError(ds.root, "the tag question needs the basic video features (tags)")
    frame = log.select("user_id", "video_id", pl.col(config.signal).cast(pl.Float64).alias("y"))
    events = frame.collect()
    if config.max_users is not None:
        users = events["user_id"].unique().sort().to_numpy()
        if len(users) > config.max_users:
            keep = rng(config.seed, "tag-users").choice(users, config.max_users, replace=False)
            events = events.filter(pl.col("user_id").is_in(keep.tolist()))
    events = events.with_row_index("event").with_columns(
        pl.col("user_id").rank("dense").cast(pl.Int64).sub(1).alias("user"),
        pl.int_range(pl.len()).over("user_id").cast(pl.Int64).alias("event_position"),
    )
    tags = (
        ds.videos()
        .select("video_id", "tags")
        .explode("tags")
        .drop_nulls()
        .unique()
        .rename({"tags": "tag"})
        .collect()
    )
    rows = (
        events.join(tags, on="video_id", how="inner")
        .sort(["user", "tag", "event"])
        .with_columns(pl.int_range(pl.len()).over(["user", "tag"]).cast(pl.Int64).alias("pos"))
    )
    if rows.height == 0:
        raise DataError(ds.root, f"no {config.log} interaction has a tagged video")
    user_ids = events.select("user", "user_id").unique().sort("user")["user_id"].to_numpy()
    return TagRows(
        user=rows["user"].to_numpy().astype(np.int64),
        tag=rows["tag"].to_numpy().astype(np.int64),
        event=rows["event"].to_numpy().astype(np.int64),
        y=rows["y"].to_numpy().astype(np.float64),
        position=rows["pos"].to_numpy().astype(np.int64),
        event_user=events["user"].to_numpy().astype(np.int64),
        event_y=events["y"].to_numpy().astype(np.float64),
        event_position=events["event_position"].to_numpy().astype(np.int64),
        user_ids=user_ids.astype(np.int64),
    )


def rescorla_wagner_values(
    y: FloatArray, position: IntArray, init: FloatArray, alphas: FloatArray
) -> FloatArray:
    """(N, A) float64 value before each row under each of the (A,) learning rates: rows are
    sequences laid end to end (``position`` (N,) int64 counts 0, 1, ... within each), ``y``
    (N,) float64 their outcomes, ``init`` (N,) float64 the value before a sequence's first row
    (read at its position-0 rows)."""
    values = np.repeat(init[:, None], len(alphas), axis=1)
    order = np.argsort(position, kind="stable")
    counts = np.bincount(position)
    starts = np.concatenate([[0], np.cumsum(counts)])
    for p in range(1, len(counts)):
        rows = order[starts[p] : starts[p + 1]]
        prev = rows - 1
        values[rows] = values[prev] + alphas[None, :] * (y[prev, None] - values[prev])
    return values


@dataclass(frozen=True, eq=False)
class TagLearning:
    """The four models' scores on the test users, and the lag profile."""

    config: TagLearningConfig
    """How it was computed."""
    n_users: int
    """Test users scored (the bootstrap's units)."""
    n_rows: int
    """Test rows (interaction x tag) scored."""
    n_sequences: int
    """Test (user, tag) sequences."""
    mean_length: float
    """Mean length of a test (user, tag) sequence."""
    base_rate: float
    """Overall rate of the signal among training rows."""
    alpha_tag: float
    """Learning rate of ``tag_rw`` chosen on the training users."""
    alpha_user: float
    """Learning rate of ``user_rw`` chosen on the training users."""
    pseudo: float
    """Pseudo-interactions of ``tag_mean`` chosen on the training users."""
    log_lik: dict[str, Estimate]
    """``{model: log-likelihood per row}`` on test users (higher is better)."""
    auc: dict[str, Estimate]
    """``{model: mean per-user AUC}`` on test users."""
    delta: dict[str, Estimate]
    """``{"a - b": difference of log-likelihood per row}`` for the comparisons of interest."""
    delta_auc: dict[str, Estimate]
    """The same differences of per-user AUC."""
    order: dict[str, Estimate]
    """``{model: log-likelihood per row in the real order minus with each sequence
    shuffled}`` for ``tag_rw`` and ``tag_mean``: what the order of outcomes adds (0 when
    users do not learn from the sequence)."""
    order_auc: dict[str, Estimate]
    """The same for per-user AUC."""
    lag_profile: tuple[Estimate, ...]
    """(max_lag,) ``P(y_n = 1 | y_{n-k} = 1) - P(y_n = 1 | y_{n-k} = 0)`` on the same tag."""
    lag_null: tuple[Estimate, ...]
    """(max_lag,) the same with each sequence shuffled: what finite sequences give without
    any order (negative: the within-sequence bias of Miller & Sanjurjo, 2018)."""
    lag_excess: tuple[Estimate, ...]
    """(max_lag,) ``lag_profile - lag_null`` per user: the effect of the order itself."""
    rw_kernel: tuple[float, ...]
    """(max_lag,) ``alpha (1 - alpha)^(k-1)`` of the fitted ``alpha_tag``: the shape the lag
    profile has (up to scale) when users learn as the model does."""

    def as_dict(self) -> dict[str, object]:
        """JSON form: estimates as ``{"mean", "low", "high"}``."""
        return {
            "config": asdict(self.config),
            "n_users": self.n_users,
            "n_rows": self.n_rows,
            "n_sequences": self.n_sequences,
            "mean_length": self.mean_length,
            "base_rate": self.base_rate,
            "alpha_tag": self.alpha_tag,
            "alpha_user": self.alpha_user,
            "pseudo": self.pseudo,
            "log_lik": {k: v.as_dict() for k, v in self.log_lik.items()},
            "auc": {k: v.as_dict() for k, v in self.auc.items()},
            "delta": {k: v.as_dict() for k, v in self.delta.items()},
            "delta_auc": {k: v.as_dict() for k, v in self.delta_auc.items()},
            "order": {k: v.as_dict() for k, v in self.order.items()},
            "order_auc": {k: v.as_dict() for k, v in self.order_auc.items()},
            "lag_profile": [e.as_dict() for e in self.lag_profile],
            "lag_null": [e.as_dict() for e in self.lag_null],
            "lag_excess": [e.as_dict() for e in self.lag_excess],
            "rw_kernel": list(self.rw_kernel),
        }


#: Comparisons reported, ``(a, b)`` for ``a - b``.
COMPARISONS: tuple[tuple[str, str], ...] = (
    ("tag_rw", "tag_base_rate"),
    ("tag_rw", "user_rw"),
    ("tag_rw", "tag_mean"),
    ("tag_mean", "tag_base_rate"),
)


def tag_learning(ds: KuaiRandDataset, config: TagLearningConfig | None = None) -> TagLearning:
    """Fit the four models on training users and score them on test users, against the same
    scores with each (user, tag) sequence's outcomes shuffled."""
    config = config or TagLearningConfig()
    return tag_learning_rows(tag_rows(ds, config), config)


def tag_learning_rows(rows: TagRows, config: TagLearningConfig) -> TagLearning:
    """:func:`tag_learning` on rows already built (e.g. simulated learners)."""
    n_users = len(rows.user_ids)
    if n_users < 4:
        raise ConfigError(f"the tag question needs at least 4 users, got {n_users}")
    order = rng(config.seed, "tag-split").permutation(n_users)
    n_test = min(max(1, round(config.test_fraction * n_users)), n_users - 1)
    test_user = np.zeros(n_users, dtype=bool)
    test_user[order[:n_test]] = True
    train = ~test_user[rows.user]
    base = float(rows.y[train].mean())
    tag_rate = _tag_rates(rows, train, base, config.prior)
    alphas = np.asarray(config.alphas, dtype=np.float64)
    pseudo = np.asarray(config.pseudo, dtype=np.float64)
    tag_rw = rescorla_wagner_values(rows.y, rows.position, tag_rate, alphas)
    event_rw = rescorla_wagner_values(
        rows.event_y, rows.event_position, np.full(len(rows.event_y), base), alphas
    )
    user_rw = event_rw[rows.event]
    tag_mean = _running_means(rows.y, rows.position, tag_rate, pseudo)
    a_tag = _best(tag_rw, rows.y, train)
    a_user = _best(user_rw, rows.y, train)
    m_best = _best(tag_mean, rows.y, train)
    predictions = {
        "tag_base_rate": tag_rate,
        "user_rw": user_rw[:, a_user],
        "tag_mean": tag_mean[:, m_best],
        "tag_rw": tag_rw[:, a_tag],
    }
    test = ~train
    users = np.unique(rows.user[test])
    observed = _user_scores(rows.user, rows.y, predictions, test, users)
    observed["lag"] = _lag_contrasts(rows, rows.y, test, users, config.max_lag)
    shuffled: list[dict[str, FloatArray]] = []
    for p in range(config.permutations):
        y = rows.y[_within_sequences(rows.position, rng(config.seed, "tag-shuffle", p))]
        shown = {
            "tag_rw": rescorla_wagner_values(y, rows.position, tag_rate, alphas[[a_tag]])[:, 0],
            "tag_mean": _running_means(y, rows.position, tag_rate, pseudo[[m_best]])[:, 0],
        }
        scores = _user_scores(rows.user, y, shown, test, users)
        scores["lag"] = _lag_contrasts(rows, y, test, users, config.max_lag)
        shuffled.append(scores)
    return _summary(
        config,
        rows,
        test,
        observed,
        shuffled,
        base=base,
        alpha_tag=float(alphas[a_tag]),
        alpha_user=float(alphas[a_user]),
        pseudo=float(pseudo[m_best]),
    )


def _within_sequences(position: IntArray, draw: np.random.Generator) -> IntArray:
    """(N,) int64 permutation of rows that shuffles each sequence (rows laid end to end,
    ``position`` counting 0, 1, ... within each) within itself."""
    sequence = np.cumsum(position == 0)
    out: IntArray = np.lexsort((draw.random(len(position)), sequence)).astype(np.int64)
    return out


def _tag_rates(rows: TagRows, train: BoolArray, base: float, prior: float) -> FloatArray:
    """(N,) float64 base rate of each row's tag among training rows, shrunk to ``base``."""
    tags, index = np.unique(rows.tag, return_inverse=True)
    hits = np.bincount(index[train], rows.y[train], len(tags))
    counts = np.bincount(index[train], minlength=len(tags)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(counts + prior > 0, (hits + prior * base) / (counts + prior), base)
    out: FloatArray = rate[index]
    return out


def _running_means(
    y: FloatArray, position: IntArray, init: FloatArray, pseudo: FloatArray
) -> FloatArray:
    """(N, M) float64 running mean of ``y`` before each row of its sequence (rows laid end to
    end, ``position`` counting within each), starting at ``init`` with each of the (M,)
    pseudo-counts."""
    cum = np.cumsum(y)
    start = np.flatnonzero(position == 0)
    seq = np.cumsum(position == 0) - 1
    before = cum - y - (cum[start] - y[start])[seq]  # sum of the sequence's earlier outcomes
    n = position.astype(np.float64)
    out: FloatArray = (pseudo[None, :] * init[:, None] + before[:, None]) / (
        pseudo[None, :] + n[:, None]
    )
    return out


def _log_lik(p: FloatArray, y: FloatArray) -> FloatArray:
    """Bernoulli log-likelihood of outcomes ``y`` under probabilities ``p`` (same shapes)."""
    q = np.clip(p, EPS, 1.0 - EPS)
    out: FloatArray = y * np.log(q) + (1.0 - y) * np.log1p(-q)
    return out


def _best(values: FloatArray, y: FloatArray, train: BoolArray) -> int:
    """Column of (N, A) ``values`` with the highest training log-likelihood."""
    return int(np.argmax(_log_lik(values[train], y[train, None]).sum(axis=0)))


def _user_scores(
    user: IntArray,
    y: FloatArray,
    predictions: dict[str, FloatArray],
    test: BoolArray,
    users: IntArray,
) -> dict[str, FloatArray]:
    """Per test user (U,): ``"rows"``, and for each model ``"ll:<model>"`` (summed
    log-likelihood) and ``"auc:<model>"`` (AUC among the user's rows, NaN if one class)."""
    index = np.searchsorted(users, user[test])
    u = len(users)
    out: dict[str, FloatArray] = {"rows": np.bincount(index, minlength=u).astype(np.float64)}
    for m, p in predictions.items():
        out[f"ll:{m}"] = np.bincount(index, _log_lik(p[test], y[test]), u).astype(np.float64)
        ids, metrics = ranking_metrics(user[test], p[test], y[test], ks=())
        if not np.array_equal(ids, users):
            raise AssertionError("ranking_metrics returned other users")
        out[f"auc:{m}"] = metrics["auc"]
    return out


def _summary(
    config: TagLearningConfig,
    rows: TagRows,
    test: BoolArray,
    observed: dict[str, FloatArray],
    shuffled: list[dict[str, FloatArray]],
    *,
    base: float,
    alpha_tag: float,
    alpha_user: float,
    pseudo: float,
) -> TagLearning:
    """Means over test users with intervals (one bootstrap for the ratios, one for means)."""
    counts = observed["rows"]
    values: dict[str, FloatArray] = {f"ll:{m}": observed[f"ll:{m}"] for m in TAG_MODELS}
    plain: dict[str, FloatArray] = {f"auc:{m}": observed[f"auc:{m}"] for m in TAG_MODELS}
    for a, b in COMPARISONS:
        values[f"{a} - {b}"] = observed[f"ll:{a}"] - observed[f"ll:{b}"]
        plain[f"{a} - {b}"] = observed[f"auc:{a}"] - observed[f"auc:{b}"]
    for m in ORDER_MODELS:
        values[f"order:{m}"] = observed[f"ll:{m}"] - _mean(shuffled, f"ll:{m}")
        plain[f"order:{m}"] = observed[f"auc:{m}"] - _mean(shuffled, f"auc:{m}")
    shuffled_lag = _mean(shuffled, "lag")
    for k in range(1, config.max_lag + 1):
        plain[f"lag{k}"] = observed["lag"][:, k - 1]
        plain[f"null{k}"] = shuffled_lag[:, k - 1]
        plain[f"excess{k}"] = observed["lag"][:, k - 1] - shuffled_lag[:, k - 1]
    den = {name: counts for name in values}
    ratio = bootstrap_means(values, den, n_boot=config.n_boot, level=config.level, seed=config.seed)
    means = bootstrap_means(plain, n_boot=config.n_boot, level=config.level, seed=config.seed)
    lags = range(1, config.max_lag + 1)
    test_rows = rows.position[test]
    n_seq = int((test_rows == 0).sum())
    return TagLearning(
        config=config,
        n_users=len(counts),
        n_rows=int(test.sum()),
        n_sequences=n_seq,
        mean_length=float(test.sum() / max(n_seq, 1)),
        base_rate=base,
        alpha_tag=alpha_tag,
        alpha_user=alpha_user,
        pseudo=pseudo,
        log_lik={m: ratio[f"ll:{m}"] for m in TAG_MODELS},
        auc={m: means[f"auc:{m}"] for m in TAG_MODELS},
        delta={f"{a} - {b}": ratio[f"{a} - {b}"] for a, b in COMPARISONS},
        delta_auc={f"{a} - {b}": means[f"{a} - {b}"] for a, b in COMPARISONS},
        order={m: ratio[f"order:{m}"] for m in ORDER_MODELS},
        order_auc={m: means[f"order:{m}"] for m in ORDER_MODELS},
        lag_profile=tuple(means[f"lag{k}"] for k in lags),
        lag_null=tuple(means[f"null{k}"] for k in lags),
        lag_excess=tuple(means[f"excess{k}"] for k in lags),
        rw_kernel=tuple(alpha_tag * (1.0 - alpha_tag) ** (k - 1) for k in lags),
    )


def _mean(runs: list[dict[str, FloatArray]], key: str) -> FloatArray:
    """NaN-aware mean of ``runs[i][key]`` over the runs."""
    stacked = np.stack([r[key] for r in runs])
    with np.errstate(invalid="ignore"):
        defined = np.isfinite(stacked)
        total = np.where(defined, stacked, 0.0).sum(axis=0)
        count = defined.sum(axis=0)
        out: FloatArray = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return out


def _lag_contrasts(
    rows: TagRows, y: FloatArray, test: BoolArray, users: IntArray, max_lag: int
) -> FloatArray:
    """(U, max_lag) float64 per test user: P(y_n = 1 | y_{n-k} = 1) - P(y_n = 1 | y_{n-k} = 0)
    over the user's same-tag pairs k apart (NaN where either side has no pair)."""
    out: FloatArray = np.full((len(users), max_lag), np.nan)
    slot = np.searchsorted(users, rows.user)
    u = len(users)
    for k in range(1, max_lag + 1):
        later = np.flatnonzero(test & (rows.position >= k))
        y_now, prev, who = y[later], y[later - k], slot[later]
        n1, n0 = np.bincount(who, prev, u), np.bincount(who, 1.0 - prev, u)
        h1, h0 = np.bincount(who, y_now * prev, u), np.bincount(who, y_now * (1.0 - prev), u)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, k - 1] = np.where((n1 > 0) & (n0 > 0), h1 / n1 - h0 / n0, np.nan)
    return out


def tag_learning_lines(result: Mapping[str, Any]) -> list[str]:
    """Plain-word findings of :meth:`TagLearning.as_dict` (95 % intervals over test users)."""
    r = result
    lines = [
        f"{r['n_users']:,} test users, {r['n_rows']:,} (interaction, tag) rows in "
        f"{r['n_sequences']:,} user-tag sequences (mean length {r['mean_length']:.2f}); "
        f"long-view rate {r['base_rate']:.3f} among training users.",
        f"Fitted on training users: tag_rw alpha {r['alpha_tag']:g}, user_rw alpha "
        f"{r['alpha_user']:g}, tag_mean pseudo-count {r['pseudo']:g}.",
    ]
    for m in TAG_MODELS:
        lines.append(
            f"{m}: log-likelihood per row {estimate_text(r['log_lik'][m])}, per-user AUC "
            f"{estimate_text(r['auc'][m])}."
        )
    for name, d in r["delta"].items():
        lines.append(
            f"{name}: log-likelihood per row {estimate_text(d)} ({_verdict(d)}), per-user "
            f"AUC {estimate_text(r['delta_auc'][name])}."
        )
    for m, d in r["order"].items():
        lines.append(
            f"{m} in the real order minus with each sequence shuffled: log-likelihood per row "
            f"{estimate_text(d)} ({_verdict(d)}), per-user AUC "
            f"{estimate_text(r['order_auc'][m])}."
        )
    lags = ", ".join(f"k={k + 1} {estimate_text(e)}" for k, e in enumerate(r["lag_excess"]))
    lines.append(
        "Lag profile beyond shuffled sequences, P(long view | long view k back on the tag) - "
        f"P(long view | none k back): {lags} (a Rescorla-Wagner learner's is positive and "
        "decays as alpha (1 - alpha)^(k-1))."
    )
    return lines


def _verdict(entry: Mapping[str, float]) -> str:
    """``better`` / ``worse`` when the interval excludes 0, else ``no clear difference``."""
    if entry["low"] > 0:
        return "better"
    if entry["high"] < 0:
        return "worse"
    return "no clear difference"
