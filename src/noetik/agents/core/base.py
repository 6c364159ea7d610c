"""The agent contract: a frozen config that creates an agent; the agent updates, scores, acts.

>>> config = IQLConfig(lr=1e-4, encoder=EncoderConfig(kind="transformer"))
>>> agent = config.create(ProblemSpec.from_transitions(train))
>>> agent.fit(train, steps=100_000, out_dir="runs/iql")       # see noetik.agents.core.trainer
>>> agent.act(obs)                                             # (B,) int64 action indices
>>> Agent.load("runs/iql/checkpoint")                          # config.json + safetensors
>>> agent.capabilities.q_values                                # what it offers beyond that

Every algorithm is one module with a config (``@register("name")``, a frozen dataclass that
subclasses :class:`AgentConfig`) and an :class:`Agent` subclass that implements
:meth:`Agent.update` and :meth:`Agent.scores` and declares its :class:`Capabilities`; callers
ask for a capability (``agent.capabilities.policy_logits``), never for a class or an
algorithm name. Nothing is pickled: weights, optimizer state and RNG states are safetensors,
everything else JSON.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, Self, TypeVar

import numpy as np
import torch
from torch import Tensor, nn

from noetik.agents.core.batches import DeviceReplay, HostReplay
from noetik.agents.networks.catalogue import (
    CatalogueConfig,
    CatalogueScorer,
    mean_chunks,
    mean_query,
)
from noetik.agents.networks.encoders import Encoder, EncoderConfig, History
from noetik.agents.networks.heads import ItemScorer
from noetik.agents.networks.topk import (
    Chunk,
    chunked_sample,
    chunked_topk,
    differentiable_logsumexp,
)
from noetik.agents.regularisers.terms import InterpretabilityConfig
from noetik.data.item_content import ItemContent
from noetik.data.ondisk import DiskTransitions
from noetik.data.transitions import Transitions
from noetik.errors import ConfigError
from noetik.utils.config import from_json
from noetik.utils.io import expect_object, read_json, write_json
from noetik.utils.tensor_files import load_tensors, save_tensors

if TYPE_CHECKING:
    from noetik.agents.core.trainer import Hook, TrainerConfig, TrainResult

__all__ = [
    "ALGOS",
    "Agent",
    "AgentConfig",
    "BatchSource",
    "Capabilities",
    "ProblemSpec",
    "register",
    "resolve_device",
    "save_tensors",
]

#: Every registered algorithm: name -> its config class (filled by :func:`register`).
ALGOS: dict[str, type[AgentConfig]] = {}
C = TypeVar("C", bound="type[AgentConfig]")


def register(name: str) -> Callable[[C], C]:
    """Class decorator: register an :class:`AgentConfig` subclass under ``name``."""

    def wrap(cls: C) -> C:
        old = ALGOS.get(name)
        if old is not None and old.__qualname__ != cls.__qualname__:
            raise ConfigError(f"algorithm {name!r} is already registered by {old.__qualname__}")
        cls.algo = name
        ALGOS[name] = cls
        return cls

    return wrap


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available else CPU; any other name as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass(frozen=True)
class Capabilities:
    """What an agent offers beyond the contract (``update``, ``scores``, ``act``, ``save``).

    Each agent class declares its own (``Agent.capabilities``); callers such as the
    explanations and the leaderboard's OPE lens ask for a capability instead of checking a
    class or an algorithm name. ``tests/test_agent_contract.py`` checks every registered
    algorithm's declaration against what the agent does.
    """

    q_values: bool = False
    """:meth:`Agent.q_values` gives Q(s, a) in raw reward units: (B, A) float32 for every
    action, or (B,) for one given action per row (IQL's twin critics, DQN's and CQL's)."""
    q_scores: bool = False
    """:meth:`Agent.scores` are those Q values (value-based agents: DQN, CQL)."""
    policy_logits: bool = False
    """``softmax(scores)`` is the stochastic policy the agent runs (what ``act`` samples when
    not ``deterministic``; for DQN/CQL the Boltzmann policy of its Q values) and greedy ``act``
    is its argmax, so :meth:`Agent.policy_log_probs` is ``log_softmax(scores)``. False for
    heuristics whose scores are noise, counts or expected rewards."""
    online: bool = False
    """Trains in an environment: ``fit`` takes a Gymnasium ``VectorEnv`` (PPO, A2C)."""
    offline: bool = False
    """Trains on logged :class:`Transitions`: ``fit`` takes them (IQL, BC, DQN, CQL; the
    popularity heuristic counts them)."""
    learned: bool = False
    """Has weights trained by gradient steps (false for heuristics, even those with state)."""


@dataclass(frozen=True, eq=False)
class ProblemSpec:
    """What an agent must know about the problem before it is built."""

    n_actions: int
    """A, the number of actions (items); action ``A`` is the history padding index."""
    obs_dim: int = 128
    """Dimension of the state vector."""
    item_features: np.ndarray | None = None
    """Optional (A, F) float32 side features of every item, read by encoders and scorers."""
    video_ids: np.ndarray | None = None
    """Optional (A,) int64 KuaiRand ``video_id`` of every action (for explanations)."""
    item_counts: np.ndarray | None = None
    """Optional (A,) int64 times each action was logged in the training data (which items
    keep an id embedding, and the proposal of sampled losses, at catalogue scale)."""
    item_codes: np.ndarray | None = None
    """Optional (A, C) int64 content codes (:attr:`ItemContent.codes`; -1 missing)."""
    item_numeric: np.ndarray | None = None
    """Optional (A, N) float32 content numbers (:attr:`ItemContent.numeric`)."""

    @classmethod
    def from_transitions(
        cls,
        t: Transitions | DiskTransitions,
        item_features: np.ndarray | None = None,
        catalogue: ItemContent | None = None,
    ) -> ProblemSpec:
        """The spec of a logged dataset (its vocabulary defines the actions; the logged counts
        and the ``catalogue``'s content describe the items)."""
        return cls(
            t.n_actions,
            t.obs_dim,
            item_features,
            t.vocab.video_ids,
            t.stats.action_counts,
            None if catalogue is None else catalogue.codes,
            None if catalogue is None else catalogue.numeric,
        )

    @classmethod
    def from_env(cls, env: Any, item_features: np.ndarray | None = None) -> ProblemSpec:
        """The spec of a Gymnasium (vector) env with a Discrete/MultiDiscrete action space."""
        space = getattr(env, "single_action_space", env.action_space)
        n = int(space.n) if hasattr(space, "n") else int(np.asarray(space.nvec).flat[0])
        obs_space = getattr(env, "single_observation_space", env.observation_space)
        return cls(n, int(np.prod(obs_space.shape)), item_features)

    def save(self, directory: Path) -> None:
        """``spec.json`` (+ ``spec.safetensors`` with the arrays, when any) in ``directory``."""
        write_json(directory / "spec.json", {"n_actions": self.n_actions, "obs_dim": self.obs_dim})
        arrays = {k: torch.from_numpy(np.asarray(v)) for k, v in self._arrays().items()}
        if arrays:
            save_tensors(directory / "spec.safetensors", arrays)

    def _arrays(self) -> dict[str, np.ndarray]:
        pairs = {
            "item_features": self.item_features,
            "video_ids": self.video_ids,
            "item_counts": self.item_counts,
            "item_codes": self.item_codes,
            "item_numeric": self.item_numeric,
        }
        return {k: v for k, v in pairs.items() if v is not None}

    @classmethod
    def load(cls, directory: Path) -> ProblemSpec:
        """Inverse of :meth:`save`."""
        path = directory / "spec.json"
        meta = expect_object(read_json(path, "spec file"), path, "spec file")
        for key in ("n_actions", "obs_dim"):
            if not isinstance(meta.get(key), int) or isinstance(meta.get(key), bool):
                raise ConfigError(f"{path}: field '{key}' must be int, got {meta.get(key)!r}")
        arrays_path = directory / "spec.safetensors"
        arrays = (
            {k: v.numpy() for k, v in load_tensors(arrays_path).items()}
            if arrays_path.is_file()
            else {}
        )
        return cls(meta["n_actions"], meta["obs_dim"], **arrays)


@dataclass(frozen=True)
class AgentConfig:
    """Fields shared by every agent; algorithms subclass it (frozen) and add their own."""

    algo: ClassVar[str] = ""
    agent_class: ClassVar[type[Agent]]

    seed: int = 0
    """Seed of the initial weights, the sampling RNG and every other random draw."""
    device: str = "auto"
    """``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:1"``..."""
    batch_size: int = 256
    """Transitions per gradient step (offline) / per update (online, see the algorithm)."""
    lr: float = 3e-4
    """Adam learning rate."""
    gamma: float = 0.99
    """Discount factor."""
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    """The state encoder (MLP over the state, or the History Transformer)."""
    item_embed_dim: int = 64
    """Item embedding size of :class:`~noetik.agents.networks.heads.ItemScorer` for large pools."""
    dense_max_actions: int = 4096
    """Up to this many actions the scorer is a dense linear layer; above, item embeddings."""
    catalogue: CatalogueConfig = field(default_factory=CatalogueConfig)
    """From ``catalogue.min_actions`` actions on: content + hashed-id item vectors, sampled
    losses and chunked scoring (:mod:`noetik.agents.networks.catalogue`)."""
    precision: Literal["float32", "bf16"] = "float32"
    """Arithmetic of the training forward passes and losses. ``"float32"`` (default): exact
    float32 everywhere. ``"bf16"``: ``torch.autocast`` to bfloat16 (CPU and CUDA) around each
    update's forward/loss; weights, gradients, optimizer states, :meth:`Agent.scores` and
    acting stay float32. Opt-in: faster matmuls on CPUs with AVX512-BF16/AMX and on GPUs, at
    bf16 rounding (~3 significant digits) of activations, so results differ from float32."""
    interpretability: InterpretabilityConfig = field(default_factory=InterpretabilityConfig)
    """Weights of the interpretability terms added to the policy loss (IQL's actor, BC, PPO;
    other algorithms refuse non-zero weights); all 0 (default) trains exactly as without them."""

    #: Whether the algorithm adds :attr:`interpretability` terms to its loss.
    supports_interpretability: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.lr <= 0 or not 0.0 <= self.gamma <= 1.0:
            raise ConfigError("batch_size must be >= 1, lr > 0 and gamma in [0, 1]")
        if self.interpretability.enabled and not self.supports_interpretability:
            raise ConfigError(
                f"{type(self).__name__}: interpretability terms are only "
                "trained by IQL, BC and PPO; set their weights to 0"
            )
        if self.precision not in ("float32", "bf16"):
            raise ConfigError(f"precision must be 'float32' or 'bf16', got {self.precision!r}")

    def create(self, spec: ProblemSpec) -> Agent:
        """Build the agent for ``spec``: weights seeded by ``seed``, moved to ``device``."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            agent = self.agent_class(self, spec)
        return agent.to(agent.device)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field (nested configs as dicts, tuples as lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))  # type: ignore[no-any-return]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "config") -> Self:
        """Inverse of :meth:`to_dict`; an unknown key or a mistyped value raises a one-line
        :class:`ConfigError` naming ``where`` (a file, an option) and the field."""
        return from_json(cls, data, where)

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)


class BatchSource(Protocol):
    """Where :meth:`Agent.update` batches come from (a replay, or rollouts of an env)."""

    def sample(self) -> Any:
        """The next batch for one ``update``."""

    def state_tensors(self) -> dict[str, Tensor]:
        """Everything needed to resume sampling exactly (RNG states...)."""

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        """Restore :meth:`state_tensors`."""


def item_scorer(
    in_dim: int, config: AgentConfig, spec: ProblemSpec
) -> ItemScorer | CatalogueScorer:
    """The item scoring head every agent uses: ``(B, in_dim) -> (B, A)`` for ``spec``'s items,
    dense, through item embeddings, or at catalogue scale as ``config`` says."""
    if config.catalogue.applies(spec.n_actions):
        return CatalogueScorer(in_dim, spec, config.catalogue)
    return ItemScorer(
        in_dim, spec.n_actions, config.item_embed_dim, config.dense_max_actions, spec.item_features
    )


class Agent(nn.Module):
    """Base class of every agent; subclasses build their networks in ``__init__``.

    Subclasses implement :meth:`update` and :meth:`scores`, register optimizers with
    :meth:`add_optimizer` and keep any other training state (target networks, counters) as
    modules or buffers so that checkpoints hold it.
    """

    config: AgentConfig
    #: What this agent class offers (see :class:`Capabilities`); every algorithm declares it.
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, config: AgentConfig, spec: ProblemSpec) -> None:
        super().__init__()
        if config.catalogue.applies(spec.n_actions) and config.interpretability.enabled:
            raise ConfigError(
                f"interpretability terms need the logits of all {spec.n_actions} items; at "
                "catalogue scale set their weights to 0 (or raise catalogue.min_actions)"
            )
        self.config, self.spec = config, spec
        self.device = resolve_device(config.device)
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    # -- the contract ---------------------------------------------------------------------
    def update(self, batch: Any) -> dict[str, Tensor]:
        """One gradient step on ``batch``; metrics as 0-d tensors (never ``.item()`` here)."""
        raise NotImplementedError

    def scores(self, obs: Tensor, history: History | None = None) -> Tensor:
        """(B, A) float32 action scores (Q values or policy logits) for states (B, obs_dim)."""
        raise NotImplementedError

    def q_values(
        self, obs: Tensor, history: History | None = None, actions: Tensor | None = None
    ) -> Tensor:
        """Q(s, a) in raw reward units: (B, A) float32 for every action, or (B,) for
        ``actions`` (B,) int64; agents with ``capabilities.q_values`` implement it."""
        raise ConfigError(f"{type(self).__name__} has no Q values (capabilities.q_values)")

    def policy_log_probs(self, obs: Tensor, history: History | None = None) -> Tensor:
        """(B, A) float32 ``log pi(a | s)`` = ``log_softmax(scores)`` of agents whose scores
        are policy logits (``capabilities.policy_logits``); others raise ConfigError."""
        if not self.capabilities.policy_logits:
            raise ConfigError(
                f"{type(self).__name__}'s scores are not policy logits "
                "(capabilities.policy_logits is false)"
            )
        return torch.log_softmax(self.scores(obs, history), dim=-1)

    def item_scores(self, obs: Tensor, history: History | None, items: Tensor) -> Tensor:
        """(B, P) float32 :meth:`scores` of ``items`` (P,) int64 only. The default selects
        columns of the (B, A) scores; agents whose scores need not be built for every item
        (heuristics, catalogue scale) score only the P items."""
        factorised = self.factorised_scores(obs, history, items)
        if factorised is not None:
            query, chunks = factorised
            return torch.cat([torch.addmm(b, query, w.T) for _, _, w, b in chunks], 1).float()
        return self.scores(obs, history).index_select(1, items.to(obs.device)).float()

    def action_scores(self, obs: Tensor, history: History | None, actions: Tensor) -> Tensor:
        """(B,) float32 :meth:`scores` of one action (B,) int64 per row, never building the
        (B, A) scores at catalogue scale (row ``i`` pairs with candidate ``i``)."""
        factorised = self.factorised_scores(obs, history, actions)
        if factorised is None:
            picked = self.scores(obs, history).gather(1, actions.view(-1, 1).to(obs.device))
            return picked[:, 0].float()
        query, chunks = factorised
        parts = [(query[lo : lo + len(ids)] * w).sum(-1) + b for lo, ids, w, b in chunks]
        return torch.cat(parts).float()

    def catalogue_scorers(self) -> list[tuple[nn.Module, CatalogueScorer]]:
        """At catalogue scale, the ``(encoder, scorer)`` pairs whose mean score, divided by
        :meth:`score_scale`, is :meth:`scores` (the actor; or each critic); empty when the
        agent scores its (small) action space directly."""
        return []

    def score_scale(self) -> float | Tensor:
        """What the mean of :meth:`catalogue_scorers`' scores is divided by (1 by default)."""
        return 1.0

    def factorised_scores(
        self, obs: Tensor, history: History | None = None, candidates: Tensor | None = None
    ) -> tuple[Tensor, Iterator[Chunk]] | None:
        """At catalogue scale, :meth:`scores` as ``query (B, d)`` and the item side in chunks
        (``scores[b, a] = query[b] · w[a] + bias[a]``, :mod:`noetik.agents.networks.topk`),
        over every action or ``candidates`` (P,) int64 only; None when the agent scores its
        (small) action space directly. Serving then never builds the (B, A) matrix."""
        pairs = self.catalogue_scorers()
        if not pairs:
            return None
        query = mean_query([s.query(e(obs, history)) for e, s in pairs], self.score_scale())
        return query, self._item_chunks(query.device, candidates, query.shape[0])

    def _item_chunks(
        self, device: torch.device, candidates: Tensor | None, rows: int
    ) -> Iterator[Chunk]:
        scorers = [s for _, s in self.catalogue_scorers()]
        return mean_chunks(scorers, device, candidates, self.score_scale(), rows)

    def action_log_probs(self, obs: Tensor, history: History | None, actions: Tensor) -> Tensor:
        """(B,) float32 ``log π(a | s)`` of one action (B,) int64 per row (agents with
        ``capabilities.policy_logits``). At catalogue scale: the action's score minus a
        chunked log-partition whose gradient reaches the inputs (item vectors are constants,
        as in eval mode), never the (B, A) matrix."""
        factorised = self.factorised_scores(obs, history)
        if factorised is None:
            log_p = self.policy_log_probs(obs, history)
            return log_p.gather(1, actions.view(-1, 1).to(log_p.device))[:, 0]
        query, _ = factorised
        chunks = self._item_chunks(query.device, None, query.shape[0])  # read without gradient
        lse = differentiable_logsumexp(query, chunks)
        return self.action_scores(obs, history, actions) - lse

    @torch.no_grad()
    def act(
        self,
        obs: Tensor,
        history: History | None = None,
        deterministic: bool = True,
        generator: torch.Generator | None = None,
    ) -> Tensor:
        """(B,) int64 actions: argmax of :meth:`scores`, or a softmax sample when not
        ``deterministic`` (agents with other exploration override this). At catalogue scale
        both are exact and computed chunk by chunk (Gumbel-max sampling)."""
        factorised = self.factorised_scores(obs, history)
        if factorised is not None:
            query, chunks = factorised
            if deterministic:
                return chunked_topk(query, chunks, 1)[1][:, 0]
            return chunked_sample(query, chunks, generator)
        s = self.scores(obs, history)
        if deterministic:
            return s.argmax(dim=-1)
        return torch.multinomial(torch.softmax(s, dim=-1), 1, generator=generator).squeeze(-1)

    @torch.no_grad()
    def attention(self, obs: Tensor, history: History | None) -> Tensor | None:
        """(L, B, heads, K + 1, K + 1) attention of ``self.encoder``; None without one."""
        encoder = getattr(self, "encoder", None)
        if not isinstance(encoder, Encoder) or history is None:
            return None
        return encoder.attention(obs, history)

    def make_source(self, data: Any) -> BatchSource:
        """The batch source for ``data``: a device-resident replay of :class:`Transitions`, or
        a replay reading :class:`~noetik.data.ondisk.DiskTransitions` a batch at a time.

        Online agents override this to return a source that steps a Gymnasium ``VectorEnv``.
        """
        k = self.config.encoder.history_len if self.config.encoder.uses_history else 0
        if isinstance(data, DiskTransitions):
            return HostReplay(
                data,
                self.config.batch_size,
                history_len=k,
                seed=self.config.seed,
                device=self.device,
            )
        if not isinstance(data, Transitions):
            raise ConfigError(f"{type(self).__name__} trains on Transitions, got {type(data)}")
        return DeviceReplay(
            data,
            self.config.batch_size,
            history_len=k,
            seed=self.config.seed,
            device=self.device,
        )

    # -- helpers for subclasses -----------------------------------------------------------
    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Wrap an update's forward/loss: bf16 autocast when ``config.precision == "bf16"``."""
        if self.config.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def make_adam(
        self, params: Iterable[Any], lr: float, fused: bool = True, **kwargs: Any
    ) -> torch.optim.Adam:
        """Adam; with ``fused`` its fused kernel on CPU and CUDA (one kernel per step for all
        tensors: the same update rule, rounded differently), else torch's default (foreach)."""
        use_fused = True if fused and self.device.type in ("cpu", "cuda") else None
        return torch.optim.Adam(params, lr=lr, fused=use_fused, **kwargs)

    # -- state ----------------------------------------------------------------------------
    def add_optimizer(self, name: str, optimizer: torch.optim.Optimizer) -> None:
        """Register ``optimizer`` so that checkpoints save and restore its state."""
        self.optimizers[name] = optimizer

    def state_tensors(self) -> dict[str, Tensor]:
        """Weights (``model.*``) and optimizer tensors (``optim.<name>.<param>.<key>``)."""
        out = {f"model.{k}": v for k, v in self.state_dict().items()}
        for name, opt in self.optimizers.items():
            for pid, state in opt.state_dict()["state"].items():
                out |= {
                    f"optim.{name}.{pid}.{k}": v for k, v in state.items() if isinstance(v, Tensor)
                }
        return out

    def state_meta(self) -> dict[str, Any]:
        """The JSON part of the optimizer states (param groups, non-tensor values)."""
        meta: dict[str, Any] = {}
        for name, opt in self.optimizers.items():
            sd = opt.state_dict()
            scalars = {
                f"{pid}.{k}": v
                for pid, st in sd["state"].items()
                for k, v in st.items()
                if not isinstance(v, Tensor)
            }
            meta[name] = {"param_groups": sd["param_groups"], "scalars": scalars}
        return json.loads(json.dumps(meta))  # type: ignore[no-any-return]

    def load_state_tensors(
        self, tensors: Mapping[str, Tensor], meta: Mapping[str, Any] | None = None
    ) -> None:
        """Restore :meth:`state_tensors` (and the optimizers when ``meta`` is given)."""
        model = {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}
        self.load_state_dict(model)
        for name, opt in self.optimizers.items():
            if meta is None or name not in meta:
                continue
            state: dict[int, dict[str, Any]] = {}
            for key, v in _opt_items(tensors, meta[name]["scalars"], f"optim.{name}."):
                pid, k = key.split(".", 1)
                state.setdefault(int(pid), {})[k] = v
            opt.load_state_dict({"state": state, "param_groups": meta[name]["param_groups"]})

    def save(self, directory: str | Path) -> Path:
        """``config.json``, ``spec.json`` (+ ``spec.safetensors``) and ``model.safetensors``."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_json(
            directory / "config.json", {"algo": self.config.algo, "config": self.config.to_dict()}
        )
        self.spec.save(directory)
        save_tensors(directory / "model.safetensors", self.state_dict())
        return directory

    @classmethod
    def load(cls, directory: str | Path, device: str | None = None) -> Agent:
        """The agent saved by :meth:`save` (or a trainer checkpoint), on ``device``."""
        directory = Path(directory)
        path = directory / "config.json"
        payload = expect_object(read_json(path, "agent config"), path, "agent config")
        algo = payload.get("algo")
        if not isinstance(algo, str) or algo not in ALGOS:
            raise ConfigError(f"{path}: field 'algo' names no known algorithm ({algo!r})")
        if not isinstance(payload.get("config"), dict):
            raise ConfigError(f"{path}: field 'config' must be an object")
        config = ALGOS[algo].from_dict(payload["config"], where=str(path))
        if device is not None:
            config = config.replace(device=device)
        agent = config.create(ProblemSpec.load(directory))
        weights_path = directory / "model.safetensors"
        weights = load_tensors(weights_path, agent.device)
        try:
            agent.load_state_dict(weights)
        except RuntimeError as exc:
            detail = str(exc).splitlines()[0]
            raise ConfigError(f"{weights_path}: does not fit {path} ({detail})") from None
        return agent

    def fit(
        self,
        data: Any,
        steps: int,
        out_dir: str | Path | None = None,
        *,
        hooks: Iterable[Hook] = (),
        resume: bool = False,
        trainer: TrainerConfig | None = None,
    ) -> TrainResult:
        """Train for ``steps`` updates on ``data`` (Transitions, or a VectorEnv for online
        agents) with :class:`~noetik.agents.core.trainer.Trainer`; see its docs for the run
        folder."""
        from noetik.agents.core.trainer import Trainer, TrainerConfig

        config = trainer or TrainerConfig()
        config = dataclasses.replace(
            config,
            out_dir=str(out_dir) if out_dir else config.out_dir,
            resume=resume or config.resume,
        )
        return Trainer(config).run(self, data, steps, hooks=hooks)


def _opt_items(
    tensors: Mapping[str, Tensor], scalars: Mapping[str, Any], prefix: str
) -> Iterable[tuple[str, Any]]:
    yield from ((k[len(prefix) :], v) for k, v in tensors.items() if k.startswith(prefix))
    yield from scalars.items()
