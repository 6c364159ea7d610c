"""The ``ope`` lens: off-policy evaluation of an agent on the held-out (test) split of a log.

>>> lens = evaluate_logged(Agent.load(run), run, LoggedOPEConfig(cache_dir="runs/.ope"))
>>> lens["wis"]                                   # {"mean": ..., "low": ..., "high": ...}

Pipeline (:func:`evaluate_logged`):

1. **Episodes.** The test split's :class:`~noetik.data.transitions.Transitions` are padded to
   ``(N, H)`` by ``episode_id``; a step's position is its rank inside the test part of its
   episode (an episode cut by the train/test boundary starts at its first test row).
   Episodes longer than ``horizon`` are **truncated** to their first ``horizon`` steps (the
   rest is dropped for every estimator and for the logged value alike, so the estimand is the
   discounted return of the first ``horizon`` steps). ``max_episodes`` evaluates a seeded
   random subset of episodes.
2. **Behaviour μ.** A calibrated behaviour cloning model fitted on the *training* split
   (:mod:`noetik.evaluation.ope.propensity`, the latest ``calib_fraction`` of its episodes
   calibrate it); cached in ``cache_dir`` under a hash of the training data and its config,
   so every run of one dataset reuses it.
3. **Target π.** Importance sampling needs ``π(a|s) > 0`` on the logged actions; a greedy
   (argmax) policy over thousands of items puts weight 0 on almost every logged step, so the
   lens evaluates a **stochastic version** of the agent, named by ``policy``:
   ``"softmax"`` — ``softmax(scores / temperature)`` (for BC/IQL/PPO the scores are policy
   logits, so ``temperature = 1`` is the agent's own policy; for Q-learners the scores are
   Q-values in reward units and a small temperature is needed to be anything but uniform);
   ``"epsilon_greedy"`` — ``(1 − ε)`` on the argmax plus ``ε / A`` on every item.
   Transformer agents get each row's History from the test transitions (the test split's
   own earlier rows, as :meth:`Transitions.history` defines it).
4. **Q̂^π** by fitted Q evaluation (:mod:`noetik.evaluation.ope.fqe`) on the same test episodes,
   for the direct method and doubly robust; ``v̂(s) = Σ_a π(a|s) Q̂(s, a)``. The default is
   the linear (ridge 1, time one-hot) model: an MLP with one output per item trains only the
   outputs of logged items, the rest keep arbitrary values that ``v̂`` averages in; on the
   built-in data the MLP's direct-method value of the behaviour policy itself was 0.67–0.80
   against its logged value 1.146, the linear model's 1.16.
5. **Estimates** (:mod:`noetik.evaluation.ope.estimators`), each ``{"mean", "low", "high"}`` with a
   percentile bootstrap interval over episodes (same resamples for every estimator, all
   estimators resampled at once by :func:`~noetik.evaluation.ope.estimators.bootstrap_intervals`):
   ``dm``, ``is``, ``wis``, ``pdis``, ``wpdis``, ``dr``; ``logged_value`` (the behaviour
   policy's own mean discounted return, the on-policy reference); ``ess`` and
   ``ess_fraction`` (ESS / N), the effective sample size of the (clipped) trajectory
   weights, which every importance-weighted estimator shares (a diagnostic of the full
   sample: ``low = high = mean``).
6. **MIPS** (:mod:`noetik.evaluation.ope.mips`, ``config.mips``, when the data has the video
   table and μ is the fitted behaviour model): ``mips`` and ``snmips``, per-decision
   importance sampling with the ratio of the masses π and μ give the logged video's
   **category**, its first tag (``tags[0]`` of ``video_features_basic``, read by
   :func:`item_categories`; videos without tags share one category), with intervals
   from the same resamples, and ``mips_ess`` (the ESS of its final cumulative weights). The
   masses come from the same (B, A) probabilities as π(a|s) and μ(a|s) (small action spaces)
   or, at catalogue scale, from the same chunked passes over every item
   (:func:`~noetik.evaluation.ope.mips.category_log_partition`: the log-partition over all
   items and over the logged item's category at once), so MIPS adds no pass over the
   catalogue; ``epsilon_greedy`` gives the category ``ε |e| / A`` plus ``1 − ε`` if it holds
   the argmax. The pass works in blocks of 2**19 scores: over a 4,369,953-item catalogue
   (KuaiRand-1K's size) its peak memory was 19 MB above the agent's 533 MB item matrix for 64
   states, the same for any number of states; the categories add 8 bytes per item.

**At catalogue scale** (an agent that scores its items chunk by chunk,
:meth:`~noetik.agents.core.base.Agent.factorised_scores`: 100,000 items and more) the same
numbers are computed without ever holding a (states × A) matrix:

* ``log π(a|s) = f(s)_a / T − log Z_T(s)`` with the chunked log-partition
  (:func:`~noetik.agents.core.serving.softmax_log_partition`), or for ``epsilon_greedy`` the
  chunked argmax (:func:`~noetik.agents.core.serving.best_actions`): one pass over every item
  per state. π is kept only on the P distinct actions logged in the evaluated episodes,
  (N, H, P) (:class:`~noetik.evaluation.ope.fqe.ActionProbs`);
* the linear FQE model gives every action never logged the same pooled weights, so its
  bootstrap targets and ``v̂(s) = Σ_a π(a|s) Q̂(s, a)`` need π on those P actions only, and
  are exact (:mod:`noetik.evaluation.ope.fqe`; the MLP and tabular models are refused);
* μ is the catalogue-scale BC model (sampled softmax), calibrated and floored the same way
  (:mod:`noetik.evaluation.ope.propensity`): one more pass per state;
* each pass costs about 20 s per 1,000 states at 4.37M items on 2 cores, so the lens
  evaluates a seeded subset of about ``catalogue_max_steps`` steps: ``max_episodes`` is
  lowered to ``catalogue_max_steps`` over the mean truncated episode length
  (:func:`evaluated_episodes`; the leaderboard says so in the entry's notes).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
import polars as pl
import torch
from torch import Tensor

from noetik.agents.core import serving
from noetik.agents.core.base import Agent
from noetik.agents.core.runs import RUN_FILE, read_run, task_dataset, task_transitions
from noetik.agents.core.task import DataSource, TaskConfig
from noetik.agents.networks.encoders import History
from noetik.data.dataset import KuaiRandDataset
from noetik.data.item_content import ItemContent
from noetik.data.schema import FileKind
from noetik.data.transitions import Transitions
from noetik.errors import ConfigError
from noetik.evaluation.ope.estimators import (
    LoggedEpisodes,
    OPEEstimate,
    bootstrap_intervals,
    direct_method,
    dr_estimate,
    effective_sample_size,
    is_estimate,
    pdis_estimate,
    step_ratios,
    wis_estimate,
    wpdis_estimate,
)
from noetik.evaluation.ope.fqe import ActionProbs, FQEConfig, FQEModel, fit_fqe
from noetik.evaluation.ope.mips import (
    category_log_partition,
    check_categories,
    logged_category_prob,
    mips_estimate,
    snmips_estimate,
)
from noetik.evaluation.ope.propensity import (
    Propensity,
    PropensityConfig,
    PropensityModel,
    calibration_split,
    fit_propensity,
)
from noetik.utils.arrays import IdIndex
from noetik.utils.memory import require

__all__ = [
    "LoggedOPEConfig",
    "LoggedSplits",
    "Scorer",
    "behaviour_model",
    "evaluate_logged",
    "evaluated_episodes",
    "is_catalogue",
    "item_categories",
    "load_splits",
    "pad_episodes",
    "policy_probs",
    "propensity_for",
]

Lens = dict[str, dict[str, float]]


@dataclass(frozen=True)
class LoggedOPEConfig:
    """How the ``ope`` lens evaluates an agent on logged test episodes."""

    gamma: float = 0.99
    """Discount of the evaluated return."""
    horizon: int = 20
    """H: episodes are truncated to their first H steps."""
    policy: Literal["softmax", "epsilon_greedy"] = "softmax"
    """The stochastic target policy built from the agent's scores (see the module doc)."""
    temperature: float = 1.0
    """``softmax``: ``π = softmax(scores / temperature)``."""
    epsilon: float = 0.1
    """``epsilon_greedy``: probability mass spread uniformly over all items."""
    clip: float | None = None
    """Upper clip of every per-step ratio ``π/μ`` (None: unclipped, unbiased IS)."""
    n_boot: int = 500
    """Bootstrap resamples of the episodes for the intervals."""
    alpha: float = 0.05
    """Intervals cover ``1 − alpha``."""
    seed: int = 0
    """Seed of the bootstrap and of the ``max_episodes`` subsample."""
    max_episodes: int | None = None
    """Evaluate at most this many test episodes (a seeded random subset); None: all."""
    propensity: PropensityConfig = field(default_factory=PropensityConfig)
    """The behaviour model fitted on the training split."""
    fqe: FQEConfig = field(
        default_factory=lambda: FQEConfig(kind="linear", ridge=1.0, time_feature=True)
    )
    """Fitted Q evaluation of the target policy (direct method, doubly robust). Default:
    per-action ridge regression on ``[standardised state, one-hot(t)]`` (see the module doc
    for why not the MLP)."""
    cache_dir: str | None = None
    """Folder caching fitted propensity models between runs (None: no cache)."""
    chunk_rows: int = 4_096
    """Rows per agent forward pass."""
    max_dense_probs: int = 1 << 28
    """History agents: FQE gets π as a dense (N, H, A) array; at most this many filled
    entries (valid steps × A) are allowed, else lower ``max_episodes``."""
    mips: bool = True
    """Also report MIPS / SNMIPS over the videos' first tag (module doc, step 6); needs the
    dataset's video table and the fitted behaviour model."""
    catalogue_max_steps: int = 1_000
    """At catalogue scale, evaluate about this many steps at most: ``max_episodes`` is lowered
    to this over the mean truncated test episode length (each step costs a chunked pass over
    every item for π and one for μ; see the module doc)."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.gamma <= 1.0 or self.horizon < 1 or self.n_boot < 1:
            raise ConfigError("ope gamma must be in [0, 1], horizon and n_boot >= 1")
        if self.policy not in ("softmax", "epsilon_greedy"):
            raise ConfigError(
                f"ope policy must be 'softmax' or 'epsilon_greedy', got {self.policy!r}"
            )
        if not self.temperature > 0.0 or not 0.0 < self.epsilon <= 1.0:
            raise ConfigError("ope temperature must be > 0 and epsilon in (0, 1]")
        if self.clip is not None and not self.clip > 0.0:
            raise ConfigError(f"ope clip must be > 0 or None, got {self.clip}")
        if self.max_episodes is not None and self.max_episodes < 1:
            raise ConfigError(f"ope max_episodes must be >= 1, got {self.max_episodes}")
        if not 0.0 < self.alpha < 1.0 or min(self.chunk_rows, self.catalogue_max_steps) < 1:
            raise ConfigError(
                "ope alpha must be in (0, 1), chunk_rows and catalogue_max_steps >= 1"
            )


class Scorer(Protocol):
    """What the lens needs of an agent: ``scores(obs (B, D), history) -> (B, A)``."""

    def scores(self, obs: Tensor, history: History | None = None) -> Tensor:
        """(B, A) float32 action scores."""


@dataclass(frozen=True, eq=False)
class LoggedSplits:
    """The training split (for μ) and the test split (evaluated) of one log, one vocabulary."""

    train: Transitions
    """Rows the behaviour model learns from."""
    test: Transitions
    """Rows whose episodes are evaluated."""
    key: str | None = None
    """Identity of the data for the propensity cache (None: a hash of the training arrays)."""
    dataset: KuaiRandDataset | None = None
    """The dataset of both splits: at catalogue scale the behaviour model describes items by
    their content read from it (None: by hashed ids alone)."""
    categories: np.ndarray | None = None
    """(A,) int64 category of each action for MIPS, in ``[0, C)``; None: the videos' first
    tags from ``dataset`` (:func:`item_categories`), or no MIPS without a dataset."""


def load_splits(run_or_data: Path | str | TaskConfig | None) -> LoggedSplits:
    """Train and test transitions of a run folder's task, a :class:`TaskConfig`, a KuaiRand
    folder, or the built-in dataset (None), under the task's reward, episodes and split
    (a folder or None: the default task on it)."""
    task = run_or_data
    if isinstance(task, str | Path) and (Path(task) / RUN_FILE).is_file():
        task = read_run(Path(task))[1]
    if not isinstance(task, TaskConfig):
        task = TaskConfig(DataSource(None if task is None else str(task)))
    if task.online:
        raise ConfigError("the ope lens needs a run trained on logged data, not an env")
    ds = task_dataset(task)
    train, test = task_transitions(task, "train", ds), task_transitions(task, "test", ds)
    return LoggedSplits(train, test, dataset=ds)


def _data_key(train: Transitions, key: str | None) -> str:
    if key is not None:
        return key
    h = hashlib.blake2b(digest_size=8)
    for arr in (train.obs, train.action, train.reward, train.episode_id, train.time_ms):
        h.update(np.ascontiguousarray(arr).tobytes())
    h.update(np.ascontiguousarray(train.vocab.video_ids).tobytes())
    return h.hexdigest()


def propensity_for(splits: LoggedSplits, config: LoggedOPEConfig) -> PropensityModel:
    """The behaviour model of ``splits.train`` (:func:`behaviour_model`)."""
    return behaviour_model(splits.train, config, key=splits.key, dataset=splits.dataset)


def behaviour_model(
    train: Transitions,
    config: LoggedOPEConfig,
    *,
    key: str | None = None,
    dataset: KuaiRandDataset | None = None,
) -> PropensityModel:
    """The behaviour model of the training split ``train``: loaded from ``config.cache_dir``
    when a model of the same data (``key``, else a hash of the training arrays) and propensity
    config is there, else fitted (and cached). At catalogue scale with the ``dataset`` its
    items are described by their content."""
    content = dataset is not None and config.propensity.catalogue.applies(train.n_actions)
    folder = None
    if config.cache_dir is not None:
        name = f"propensity-{_data_key(train, key)}-{config.propensity.key()}"
        folder = Path(config.cache_dir) / (name + ("-content" if content else ""))
        if (folder / "propensity.json").is_file():
            return PropensityModel.load(folder, device=config.propensity.device)
    items = None
    if content and dataset is not None:
        items = ItemContent.from_dataset(dataset, train.vocab.video_ids)
    arrays = (train.obs, train.action, train.reward, train.signals, train.time_ms)
    require(
        sum(a.nbytes for a in arrays) + 40 * len(train),
        f"the behaviour model's fit and calibration copies of {len(train):,} training rows",
        "a smaller log (--train-rows) or a behaviour model already in the ope cache",
    )
    fit, calib = calibration_split(train, config.propensity.calib_fraction)
    model = fit_propensity(fit, calib, config.propensity, items)
    if folder is not None:
        model.save(folder)
    return model


def pad_episodes(
    t: Transitions, horizon: int, max_episodes: int | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``(rows (N, H) int64, mask (N, H) bool)``: the row of step ``h`` of episode ``n``
    (-1 on padding), H = min(horizon, longest episode). Episodes are contiguous runs of
    ``episode_id``; steps past ``horizon`` are dropped; ``max_episodes`` keeps a seeded random
    subset of episodes (in log order)."""
    if len(t) == 0:
        raise ConfigError("the test split has no rows to evaluate")
    first = np.ones(len(t), dtype=bool)
    first[1:] = t.episode_id[1:] != t.episode_id[:-1]
    starts = np.flatnonzero(first)
    episode = np.cumsum(first) - 1
    position = np.arange(len(t)) - starts[episode]
    keep = position < horizon
    h = int(min(horizon, position.max() + 1))
    rows = np.full((len(starts), h), -1, dtype=np.int64)
    rows[episode[keep], position[keep]] = np.flatnonzero(keep)
    if max_episodes is not None and len(starts) > max_episodes:
        pick = np.random.default_rng(seed).choice(len(starts), max_episodes, replace=False)
        rows = rows[np.sort(pick)]
    return rows, rows >= 0


def is_catalogue(scorer: object) -> bool:
    """Whether ``scorer`` is an agent that scores its items chunk by chunk (catalogue scale):
    the lens then never builds (states × A) matrices (module doc)."""
    return isinstance(scorer, Agent) and bool(scorer.catalogue_scorers())


def evaluated_episodes(
    scorer: object, test: Transitions, config: LoggedOPEConfig
) -> tuple[int | None, int]:
    """``(max_episodes, test episodes)``: the episode subsample the lens evaluates for
    ``scorer`` (None: all) and how many episodes the test split has. At catalogue scale
    ``config.max_episodes`` is lowered to ``catalogue_max_steps`` over the mean truncated
    episode length (at least 1)."""
    first = np.ones(len(test), dtype=bool)
    first[1:] = test.episode_id[1:] != test.episode_id[:-1]
    lengths = np.diff(np.append(np.flatnonzero(first), len(test)))
    cap = config.max_episodes
    if is_catalogue(scorer) and len(lengths):
        per_episode = float(np.minimum(lengths, config.horizon).mean())
        budget = max(1, int(config.catalogue_max_steps / per_episode))
        cap = budget if cap is None else min(cap, budget)
    return cap, len(lengths)


def policy_probs(scores: Tensor, config: LoggedOPEConfig) -> Tensor:
    """(B, A) float64 target probabilities from agent scores (B, A) (see ``config.policy``)."""
    s = scores.double()
    if config.policy == "softmax":
        return torch.softmax(s / config.temperature, dim=-1)
    n = s.shape[-1]
    greedy = torch.nn.functional.one_hot(s.argmax(dim=-1), n).double()
    return (1.0 - config.epsilon) * greedy + config.epsilon / n


def _history_len(scorer: object) -> int:
    encoder = getattr(scorer, "encoder", None)
    return int(getattr(encoder, "history_len", 0)) if getattr(encoder, "uses_history", False) else 0


class _Policy:
    """π(·|s) of the rows of ``t`` for ``scorer``, chunked; History built when needed."""

    def __init__(
        self,
        scorer: Scorer,
        t: Transitions,
        config: LoggedOPEConfig,
        categories: np.ndarray | None = None,
    ) -> None:
        self.scorer, self.t, self.config = scorer, t, config
        self.categories = categories
        self.k = _history_len(scorer)
        self.device = torch.device(getattr(scorer, "device", "cpu"))
        spec = getattr(scorer, "spec", None)
        own = getattr(spec, "video_ids", None)
        if own is not None and not np.array_equal(np.asarray(own), t.vocab.video_ids):
            raise ConfigError("the agent's action vocabulary is not the dataset's vocabulary")

    @torch.no_grad()
    def rows(self, rows: np.ndarray) -> Iterator[tuple[slice, np.ndarray]]:
        """``(part, probs (B, A) float64)`` for consecutive chunks ``rows[part]``."""
        for lo in range(0, len(rows), self.config.chunk_rows):
            part = slice(lo, lo + self.config.chunk_rows)
            yield part, self.probs(self.t.obs[rows[part]], rows[part])

    def inputs(self, obs: np.ndarray, rows: np.ndarray | None) -> tuple[Tensor, History | None]:
        """States ``obs`` (B, D) as a float32 tensor, and the History of ``rows`` (B,) when
        the scorer reads one."""
        x = torch.as_tensor(np.asarray(obs), dtype=torch.float32, device=self.device)
        history = None
        if self.k and rows is not None:
            history = History.from_numpy(self.t.history(rows, self.k), self.device)
        return x, history

    @torch.no_grad()
    def probs(self, obs: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        """(B, A) float64 π for states ``obs`` (B, D) (``rows``: their rows, for History)."""
        x, history = self.inputs(obs, rows)
        p = policy_probs(self.scorer.scores(x, history), self.config)
        if p.shape[1] != self.t.n_actions:
            raise ConfigError(
                f"the agent scores {p.shape[1]} actions, the data has {self.t.n_actions}"
            )
        return p.cpu().numpy()

    def chunked(self, obs: np.ndarray) -> np.ndarray:
        """π for states alone (agents without History), chunked: (M, A) float64."""
        step = self.config.chunk_rows
        parts = [self.probs(obs[lo : lo + step], None) for lo in range(0, len(obs), step)]
        return np.concatenate(parts) if parts else np.zeros((0, self.t.n_actions))

    def item_probs(self, rows: np.ndarray, items: Tensor) -> np.ndarray:
        """(B, P) float64 π(items | s) of the states of ``rows`` (B,), ``items`` (P,) int64,
        at catalogue scale (never (B, A)); see :meth:`item_and_category_probs`."""
        return self.item_and_category_probs(rows, items)[0]

    @torch.no_grad()
    def item_and_category_probs(
        self, rows: np.ndarray, items: Tensor
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """``(probs (B, P), embed (B,) or None)`` float64: π(items | s) of the states of
        ``rows`` (B,), ``items`` (P,) int64, at catalogue scale (never (B, A)), and with
        categories π(e(a)|s) of each row's logged action ``a``, from the same pass:
        ``softmax``, ``exp(f_a / T − log Z_T)`` with the chunked log-partition (and the
        category's, ``exp(log Z_T,e − log Z_T)``); ``epsilon_greedy``, ``ε / A`` plus
        ``1 − ε`` on the chunked argmax."""
        agent = self.scorer
        assert isinstance(agent, Agent)
        if agent.spec.n_actions != self.t.n_actions:
            raise ConfigError(
                f"the agent scores {agent.spec.n_actions} actions, the data has {self.t.n_actions}"
            )
        x, history = self.inputs(self.t.obs[rows], rows)
        cats = None if self.categories is None else _Categories(self.categories, x.device)
        logged = self.t.action[rows]
        embed: Tensor | None = None
        if self.config.policy == "softmax":
            temp = self.config.temperature
            if cats is None:
                lse = serving.softmax_log_partition(agent, x, history, temp).double()
            else:
                lse, lse_e = cats.log_partition(agent, x, history, temp, logged)
                embed = torch.exp(lse_e - lse)
            scores = agent.item_scores(x, history, items).double() / temp
            p = torch.exp(scores - lse[:, None])
        else:
            eps, n = self.config.epsilon, self.t.n_actions
            best = serving.best_actions(agent, x, history)
            p = (1.0 - eps) * (items[None, :] == best[:, None]).double() + eps / n
            if cats is not None:
                own = cats.of(logged)
                embed = eps * cats.sizes[own] / n + (1.0 - eps) * (cats.table[best] == own)
        return p.cpu().numpy(), None if embed is None else embed.cpu().numpy()


class _Categories:
    """The category of every action, its size, on one device (MIPS at catalogue scale)."""

    def __init__(self, categories: np.ndarray, device: torch.device) -> None:
        self.table = torch.as_tensor(categories, dtype=torch.int64, device=device)
        """(A,) int64 category of each action."""
        self.sizes = torch.bincount(self.table).double()
        """(C,) float64 number of actions per category."""

    def of(self, actions: np.ndarray) -> Tensor:
        """(B,) int64 categories of ``actions`` (B,) int64."""
        return self.table[torch.as_tensor(actions, device=self.table.device)]

    def log_partition(
        self,
        agent: Agent,
        x: Tensor,
        history: History | None,
        temperature: float,
        actions: np.ndarray,
    ) -> tuple[Tensor, Tensor]:
        """``(log Z_T, log Z_T,e)`` (B,) float64 of the agent at ``x``, ``e`` the category of
        each row's ``actions`` (:func:`~noetik.evaluation.ope.mips.category_log_partition`)."""
        return category_log_partition(
            agent, x, history, temperature, categories=self.table, row_category=self.of(actions)
        )


def _grids(
    t: Transitions, rows: np.ndarray, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(obs (N, H, D) float32, actions (N, H) int64, rewards (N, H) float64)`` of the padded
    episodes ``rows`` (N, H), 0 on padding."""
    safe = np.maximum(rows, 0)
    obs = np.where(mask[..., None], t.obs[safe].astype(np.float32), np.float32(0.0))
    actions = np.where(mask, t.action[safe], 0)
    rewards = np.where(mask, t.reward[safe].astype(np.float64), 0.0)
    return obs, actions, rewards


def _fit_q(
    policy: _Policy, rows: np.ndarray, mask: np.ndarray, config: LoggedOPEConfig
) -> FQEModel:
    """FQE of π on the padded episodes; π as a callable, or dense for History agents."""
    t, n_actions = policy.t, policy.t.n_actions
    obs, actions, rewards = _grids(t, rows, mask)
    source: np.ndarray | Callable[[np.ndarray], np.ndarray] = policy.chunked
    if policy.k:
        valid = rows[mask]
        if len(valid) * n_actions > config.max_dense_probs:
            raise ConfigError(
                f"{len(valid)} steps x {n_actions} items exceed max_dense_probs: "
                "lower ope max_episodes"
            )
        dense = np.zeros((*rows.shape, n_actions))  # untouched (padding) pages stay unallocated
        where = np.nonzero(mask)
        for part, probs in policy.rows(valid):
            dense[where[0][part], where[1][part]] = probs
        source = dense
    return fit_fqe(
        obs, actions, rewards, mask, source, config.gamma, config.fqe, n_actions=n_actions
    )


#: Per valid step (M,) float64: π of the logged action, q̂, v̂ and π of its category (or None).
_StepValues = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]


def _dense_steps(
    policy: _Policy, rows: np.ndarray, mask: np.ndarray, config: LoggedOPEConfig
) -> _StepValues:
    """π(a_t|s_t), q̂, v̂ and π(e(a_t)|s_t) of the valid steps from (B, A) probabilities,
    chunked."""
    t = policy.t
    model = _fit_q(policy, rows, mask, config)
    valid = rows[mask]
    position = np.nonzero(mask)[1]
    pi, q_hat, v_hat, embed = (np.zeros(len(valid)) for _ in range(4))
    for part, probs in policy.rows(valid):
        r = valid[part]
        q = model.q(t.obs[r].astype(np.float32), position[part]).astype(np.float64)
        pi[part] = probs[np.arange(len(r)), t.action[r]]
        q_hat[part] = q[np.arange(len(r)), t.action[r]]
        v_hat[part] = np.einsum("ba,ba->b", probs, q)
        if policy.categories is not None:
            embed[part] = logged_category_prob(probs, policy.categories, t.action[r])
    return pi, q_hat, v_hat, None if policy.categories is None else embed


def _catalogue_steps(
    policy: _Policy, rows: np.ndarray, mask: np.ndarray, config: LoggedOPEConfig
) -> _StepValues:
    """π(a_t|s_t), q̂ and v̂ of the valid steps at catalogue scale: π on the P actions logged
    in these episodes only, (N, H, P) (one chunked pass over every item per state), and the
    linear FQE, whose expectations over π need no more (module doc)."""
    if config.fqe.kind != "linear":
        raise ConfigError(
            f"at catalogue scale the ope lens needs the linear FQE model, not {config.fqe.kind!r}"
        )
    t = policy.t
    valid, where = rows[mask], np.nonzero(mask)
    items = np.unique(t.action[valid])
    require(
        2 * 8.0 * mask.size * len(items),
        f"ope target probabilities of {len(valid):,} steps x {len(items):,} logged items",
        "a lower ope catalogue_max_steps",
    )
    probs = np.zeros((*mask.shape, len(items)))
    embed = np.zeros(len(valid))
    wanted = torch.as_tensor(items, device=policy.device)
    for lo in range(0, len(valid), config.chunk_rows):
        part = slice(lo, lo + config.chunk_rows)
        chunk, chunk_embed = policy.item_and_category_probs(valid[part], wanted)
        probs[where[0][part], where[1][part]] = chunk
        if chunk_embed is not None:
            embed[part] = chunk_embed
    target = ActionProbs(items, probs)
    obs, actions, rewards = _grids(t, rows, mask)
    model = fit_fqe(
        obs, actions, rewards, mask, target, config.gamma, config.fqe, n_actions=t.n_actions
    )
    q_hat, v_hat = model.estimates(obs, actions, target, mask)
    pi = probs[where[0], where[1], np.searchsorted(items, t.action[valid])]
    return pi, q_hat[mask], v_hat[mask], None if policy.categories is None else embed


def item_categories(dataset: KuaiRandDataset, video_ids: np.ndarray) -> np.ndarray | None:
    """(A,) int64 category of each action ``video_ids`` (A,) int64 for MIPS: the video's first
    tag (``tags[0]`` in ``video_features_basic``, the ``tag`` code of
    :class:`~noetik.data.item_content.ItemContent`), numbered ``0 … C−1`` in tag order; videos
    without tags (or absent from the table) share one category (the first). None without the
    video table."""
    if not dataset.has(FileKind.VIDEO_BASIC):
        return None
    frame = (
        dataset.videos()
        .select(pl.col("video_id").cast(pl.Int64), pl.col("tags").list.first().cast(pl.Int64))
        .unique("video_id", keep="first")
        .collect()
    )
    ids = np.asarray(video_ids, dtype=np.int64)
    pos, found = IdIndex(ids).lookup(frame["video_id"].to_numpy())
    tags = np.full(len(ids), -1, dtype=np.int64)
    tags[pos[found]] = frame["tags"].fill_null(-1).to_numpy().astype(np.int64)[found]
    _, codes = np.unique(tags, return_inverse=True)  # -1 (no tag), if any, becomes category 0
    return codes.astype(np.int64).reshape(-1)


@torch.no_grad()
def _behaviour(
    mu: Propensity,
    t: Transitions,
    valid: np.ndarray,
    categories: np.ndarray | None,
    config: LoggedOPEConfig,
) -> tuple[np.ndarray, np.ndarray | None]:
    """``(μ(a_t|s_t), μ(e(a_t)|s_t) or None)`` (M,) float64 of the valid steps (rows ``valid``).

    With categories and the fitted behaviour model both come from one computation per chunk:
    its (B, A) probabilities, or at catalogue scale one chunked pass giving ``log Z_T`` and the
    category's ``log Z_T,e`` (``μ(e) = (1 − A·m) exp(log Z_T,e − log Z_T) + m |e|``)."""
    k = _history_len(mu)
    if categories is None or not isinstance(mu, PropensityModel):
        history = History.from_numpy(t.history(valid, k)) if k else None
        return mu.prob_of(t.obs[valid], t.action[valid], history), None
    prob, embed = np.zeros(len(valid)), np.zeros(len(valid))
    cats = _Categories(categories, mu.device)
    n, floor = mu.n_actions, mu.min_prob
    for lo in range(0, len(valid), config.chunk_rows):
        part = slice(lo, lo + config.chunk_rows)
        r = valid[part]
        x = torch.as_tensor(t.obs[r], dtype=torch.float32, device=mu.device)
        history = History.from_numpy(t.history(r, k), mu.device) if k else None
        actions = t.action[r]
        if mu.catalogue:
            lse, lse_e = cats.log_partition(mu.agent, x, history, mu.temperature, actions)
            a = torch.as_tensor(actions, device=mu.device)
            score = mu.agent.action_scores(x, history, a).double() / mu.temperature
            sizes = cats.sizes[cats.of(actions)]
            prob[part] = ((1.0 - n * floor) * torch.exp(score - lse) + floor).cpu().numpy()
            mass = (1.0 - n * floor) * torch.exp(lse_e - lse) + floor * sizes
            embed[part] = mass.cpu().numpy()
        else:
            probs = mu.probs(x, history)
            prob[part] = probs[np.arange(len(r)), actions]
            embed[part] = logged_category_prob(probs, categories, actions)
    return prob, np.maximum(embed, prob)  # a category holds its item (up to rounding)


def _episodes(
    scorer: Scorer, splits: LoggedSplits, mu: Propensity, config: LoggedOPEConfig
) -> LoggedEpisodes:
    """The padded test episodes with μ, π of the logged actions and FQE's q̂, v̂."""
    t = splits.test
    max_episodes, _ = evaluated_episodes(scorer, t, config)
    rows, mask = pad_episodes(t, config.horizon, max_episodes, config.seed)
    categories = None
    if config.mips and isinstance(mu, PropensityModel):
        categories = splits.categories
        if categories is None and splits.dataset is not None:
            categories = item_categories(splits.dataset, t.vocab.video_ids)
        if categories is not None:
            try:
                categories, _ = check_categories(categories, t.n_actions)
            except ValueError as exc:
                raise ConfigError(f"ope categories: {exc}") from None
    policy = _Policy(scorer, t, config, categories)
    steps = _catalogue_steps if is_catalogue(scorer) else _dense_steps
    pi, q_hat, v_hat, pi_embed = steps(policy, rows, mask, config)
    valid = rows[mask]
    mu_valid, mu_embed = _behaviour(mu, t, valid, categories, config)

    def grid(values: np.ndarray, fill: float = 0.0) -> np.ndarray:
        out = np.full(mask.shape, fill)
        out[mask] = values
        return out

    return LoggedEpisodes(
        rewards=grid(t.reward[valid]),
        behavior_prob=grid(mu_valid, 1.0),
        target_prob=grid(pi, 1.0),
        mask=mask,
        gamma=config.gamma,
        q_hat=grid(q_hat),
        v_hat=grid(v_hat),
        behavior_embed_prob=None if mu_embed is None else grid(mu_embed, 1.0),
        target_embed_prob=None if pi_embed is None else grid(np.maximum(pi_embed, pi), 1.0),
    )


def _logged_value(data: LoggedEpisodes) -> OPEEstimate:
    """The behaviour policy's own mean discounted return (on-policy, no weights)."""
    discounts = data.gamma ** np.arange(data.mask.shape[1], dtype=np.float64)
    returns = (data.rewards * discounts).sum(axis=1)
    return OPEEstimate(float(returns.mean()), returns, None)


def _estimators(config: LoggedOPEConfig) -> dict[str, Callable[[LoggedEpisodes], OPEEstimate]]:
    c = config.clip
    return {
        "logged_value": _logged_value,
        "dm": direct_method,
        "is": lambda d: is_estimate(d, c),
        "wis": lambda d: wis_estimate(d, c),
        "pdis": lambda d: pdis_estimate(d, c),
        "wpdis": lambda d: wpdis_estimate(d, c),
        "dr": lambda d: dr_estimate(d, c),
        "mips": lambda d: mips_estimate(d, c),
        "snmips": lambda d: snmips_estimate(d, c),
    }


def evaluate_logged(
    agent: Scorer,
    run_or_data: LoggedSplits | TaskConfig | Path | str | None,
    config: LoggedOPEConfig | None = None,
    *,
    propensity: Propensity | None = None,
) -> Lens:
    """The ``ope`` lens of ``agent`` on the test split of ``run_or_data`` (a run folder, its
    :class:`TaskConfig`, a KuaiRand folder, None for the built-in data, or prepared
    :class:`LoggedSplits`); see the module doc. ``propensity`` overrides the fitted μ. (A
    run trained with ``split="all"`` has seen the test rows: its estimates are not held out.)

    Returns ``{metric: {"mean", "low", "high"}}`` for ``logged_value``, ``dm``, ``is``,
    ``wis``, ``pdis``, ``wpdis``, ``dr``, ``ess`` and ``ess_fraction``, and with categories
    (module doc, step 6) ``mips``, ``snmips`` and ``mips_ess``.
    """
    config = config or LoggedOPEConfig()
    splits = run_or_data if isinstance(run_or_data, LoggedSplits) else load_splits(run_or_data)
    if splits.train.n_actions != splits.test.n_actions:
        raise ConfigError("train and test transitions must share one action vocabulary")
    mu = propensity if propensity is not None else propensity_for(splits, config)
    data = _episodes(agent, splits, mu, config)
    out: Lens = {}
    # every interval from one set of resamples at once: equal to estimators.bootstrap_ci of
    # each estimator (the one-resample-at-a-time reference) up to float rounding
    logged = {"logged_value": _logged_value(data).per_episode}
    intervals = bootstrap_intervals(
        data, config.clip, config.n_boot, config.seed, config.alpha, means=logged
    )
    for name, fn in _estimators(config).items():
        if name not in intervals:  # MIPS without categories
            continue
        low, high = intervals[name]
        estimate = fn(data)
        out[name] = {"mean": estimate.value, "low": low, "high": high}
        if name == "mips" and estimate.ess is not None:
            out["mips_ess"] = {"mean": estimate.ess, "low": estimate.ess, "high": estimate.ess}
    ess = effective_sample_size(np.prod(step_ratios(data, config.clip), axis=1))
    share = ess / data.n_episodes
    out["ess"] = {"mean": ess, "low": ess, "high": ess}
    out["ess_fraction"] = {"mean": share, "low": share, "high": share}
    return out
