"""The response network, its configuration and the fitted simulator that wraps it.

Input of one prediction: the 128-d state (user features, history summary, context), the
candidate video's index, and an exposure indicator ``e`` (0: exposure chosen by the logging
recommender, as in the standard log; 1: uniform random exposure). The network::

    x      = [standardised state (128), item embedding (item_dim), item side features (F),
              tag match <hist.tags, item tags> (1)]
    h      = MLP(x)                        # `layers` x (Linear(hidden) + ReLU)
    logits = W_std h + b_std + e * (W_rand h + b_rand)

so the random-exposure head is the standard head plus a learned correction (zero-initialised)
trained on the random-exposure rows only. Binary signals are ``sigmoid(logit)``; the watch
ratio is ``sigmoid(logit)`` too, a bounded head in [0, 1] trained with the fractional
(Bernoulli quasi-likelihood) loss. See ``docs/simulator.md``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from noetik.data.features import STATE_DIM, STATE_SLICES, TAG_BUCKETS
from noetik.data.transitions import ItemVocab
from noetik.errors import ConfigError
from noetik.simulators.kuairand.examples import HEADS, ItemTable, UserSpec, check_user_spec

Exposure = Literal["random", "standard"]


@dataclass(frozen=True)
class ResponseModelConfig:
    """Architecture and training of the response model."""

    hidden: int = 256
    """Width of each hidden layer."""
    layers: int = 2
    """Number of hidden layers (>= 1)."""
    item_dim: int = 0
    """Size of the learned item embedding (0: none, items are described by their side
    features only; on the real Pure sample a 32-d embedding overfits: held-out click AUC 0.67
    instead of 0.69)."""
    dropout: float = 0.1
    """Dropout after each hidden layer while training, in [0, 1)."""
    epochs: int = 6
    """Passes over the training examples."""
    batch_size: int = 1024
    """Examples per gradient step."""
    lr: float = 1e-3
    """Adam learning rate (cosine-decayed to 5 % over training)."""
    weight_decay: float = 1e-5
    """Decoupled (AdamW) weight decay."""
    random_weight: float = 1.0
    """Loss weight of a random-exposure row relative to a standard-log row (> 0)."""
    random_users: UserSpec = 0.7
    """Users whose random-exposure rows are trained on: a fraction (lowest ids first) of the
    random log's users, or explicit ids. The others are held out for validation."""
    seed: int = 0
    """Seed of initialisation and shuffling (same seed, same weights)."""
    fit_uncorrected: bool = True
    """Also fit the uncorrected baseline (same architecture, standard log only)."""
    items: Literal["auto", "all", "random_pool"] = "auto"
    """The rows the simulator trains on: ``"all"`` every standard-log row; ``"random_pool"``
    only those that show a video of the random-exposure pool (the videos KuaiRand-v0 shows),
    plus the random log (states still read every row, and the simulator still describes every
    video by its features); ``"auto"`` the pool when the data has more than 100,000 videos and
    a random log (KuaiRand-1K: 7,388 of 4.37M videos, a fit in minutes instead of hours)."""

    def __post_init__(self) -> None:
        ints = {"hidden": self.hidden, "layers": self.layers, "item_dim": self.item_dim + 1}
        ints |= {"epochs": self.epochs, "batch_size": self.batch_size}
        for name, value in ints.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                low = 0 if name == "item_dim" else 1
                raise ConfigError(f"response model: {name} must be an integer >= {low}")
        if self.items not in ("auto", "all", "random_pool"):
            raise ConfigError(
                f"response model: items must be auto, all or random_pool, got {self.items!r}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"response model: dropout must be in [0, 1), got {self.dropout!r}")
        if not (self.lr > 0 and self.weight_decay >= 0 and self.random_weight > 0):
            raise ConfigError("response model: need lr > 0, weight_decay >= 0, random_weight > 0")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"response model: seed must be an integer >= 0, got {self.seed!r}")
        spec = self.random_users
        spec = tuple(spec) if isinstance(spec, list) else spec
        object.__setattr__(self, "random_users", check_user_spec(spec))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``from_dict`` inverts it)."""
        out = dataclasses.asdict(self)
        if isinstance(self.random_users, tuple):
            out["random_users"] = list(self.random_users)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResponseModelConfig:
        """Rebuild from ``to_dict``; unknown keys are a ConfigError."""
        try:
            return cls(**data)
        except TypeError as exc:
            raise ConfigError(f"invalid response model config: {exc}") from None


class ResponseNet(nn.Module):
    """Predicts logits of the :data:`HEADS` signals from (state, item, exposure)."""

    item_features: torch.Tensor
    """(A, F) float32 buffer: side features of every item."""
    obs_mean: torch.Tensor
    """(128,) float32 buffer: training mean of each state dimension."""
    obs_inv_std: torch.Tensor
    """(128,) float32 buffer: inverse training std of each state dimension."""

    def __init__(
        self,
        item_features: np.ndarray,
        config: ResponseModelConfig,
        obs_mean: np.ndarray,
        obs_std: np.ndarray,
    ) -> None:
        super().__init__()
        n_items, n_feats = item_features.shape
        self.register_buffer("item_features", torch.as_tensor(item_features, dtype=torch.float32))
        self.register_buffer("obs_mean", torch.as_tensor(obs_mean, dtype=torch.float32))
        self.register_buffer("obs_inv_std", torch.as_tensor(1.0 / obs_std, dtype=torch.float32))
        self.item_embedding = nn.Embedding(n_items, config.item_dim)
        nn.init.normal_(self.item_embedding.weight, std=0.05)
        width = STATE_DIM + config.item_dim + n_feats + 1
        blocks: list[nn.Module] = []
        for _ in range(config.layers):
            blocks += [nn.Linear(width, config.hidden), nn.ReLU(), nn.Dropout(config.dropout)]
            width = config.hidden
        self.trunk = nn.Sequential(*blocks)
        self.head = nn.Linear(width, len(HEADS))
        self.random_head = nn.Linear(width, len(HEADS))
        nn.init.zeros_(self.random_head.weight)
        nn.init.zeros_(self.random_head.bias)
        tags = STATE_SLICES["hist.tags"]
        self._tags = (tags.start, tags.stop)

    def forward(
        self, obs: torch.Tensor, item: torch.Tensor, exposure: torch.Tensor
    ) -> torch.Tensor:
        """Logits (B, 9) float32 from ``obs`` (B, 128) float, ``item`` (B,) int64 and
        ``exposure`` (B,) float (1 random, 0 standard)."""
        return self.logits_from(self.fixed_inputs(obs, item), item, exposure)

    def fixed_inputs(self, obs: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """(B, 128 + F + 1) float32: the standardised state, the item's side features and the
        tag match, the inputs that depend on the buffers only (so networks sharing their
        buffers, like the members of an ensemble, can share them)."""
        obs = obs.float()
        feats = self.item_features[item]
        lo, hi = self._tags
        match = (obs[:, lo:hi] * feats[:, :TAG_BUCKETS]).sum(dim=1, keepdim=True)
        x = (obs - self.obs_mean) * self.obs_inv_std
        return torch.cat([x, feats, match], dim=1)

    def logits_from(
        self, fixed: torch.Tensor, item: torch.Tensor, exposure: torch.Tensor
    ) -> torch.Tensor:
        """Logits (B, 9) float32 from :meth:`fixed_inputs` ``fixed``, ``item`` and ``exposure``
        (as :meth:`forward`)."""
        if self.item_embedding.embedding_dim:
            embedded = self.item_embedding(item)
            fixed = torch.cat([fixed[:, :STATE_DIM], embedded, fixed[:, STATE_DIM:]], dim=1)
        h = self.trunk(fixed)
        logits: torch.Tensor = self.head(h) + exposure.float()[:, None] * self.random_head(h)
        return logits

    def shares_buffers(self, other: ResponseNet) -> bool:
        """Whether ``other`` uses the very same buffers (so the same :meth:`fixed_inputs`)."""
        names = ("item_features", "obs_mean", "obs_inv_std")
        return all(getattr(self, n) is getattr(other, n) for n in names)


def batched_logits(
    net: ResponseNet, obs: np.ndarray, item: np.ndarray, exposure: float, batch_size: int = 8192
) -> np.ndarray:
    """(N, 9) float32 logits of ``net`` for states ``obs`` (N, 128) and items ``item`` (N,)
    with a fixed exposure flag, computed in batches without gradient."""
    device = next(net.parameters()).device
    out = np.empty((len(item), len(HEADS)), dtype=np.float32)
    with torch.inference_mode():
        for lo in range(0, len(item), batch_size):
            obs_t = torch.from_numpy(obs[lo : lo + batch_size].astype(np.float32)).to(device)
            item_t = torch.from_numpy(np.asarray(item[lo : lo + batch_size])).to(device)
            flag = torch.full((len(item_t),), exposure, device=device)
            out[lo : lo + batch_size] = net(obs_t, item_t, flag).cpu().numpy()
    return out


@dataclass(eq=False)
class FittedSimulator:
    """A trained response model (debiased with random exposure) plus its baselines.

    ``predict`` answers "how would this user respond to this video?" under uniform random
    exposure, i.e. to a video an agent picks, not one the logging recommender picked.
    """

    config: ResponseModelConfig
    """How it was trained."""
    vocab: ItemVocab
    """Video id <-> item index (the env's action space)."""
    items: ItemTable
    """Side features of the items of ``vocab``."""
    model: ResponseNet
    """The debiased model (predicts with exposure = random)."""
    uncorrected: ResponseNet | None
    """Same architecture trained on the standard log only (baseline), if fitted."""
    popularity: np.ndarray
    """(A, 1 + 9) float64 per item: training exposures, then the sum of each head's target."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Provenance: ``data_dir``, ``cache_dir``, ``train_random_users``,
    ``heldout_random_users``, example counts, training losses; ``ensemble`` (the
    :class:`~noetik.simulators.kuairand.ensemble.EnsembleConfig` and losses of ``members``)."""
    members: tuple[ResponseNet, ...] = ()
    """An ensemble of K networks like ``model`` (same examples, each on a bootstrap resample
    with its own initialisation; :mod:`~noetik.simulators.kuairand.ensemble`), or none."""

    def __post_init__(self) -> None:
        self.share_item_features()

    def share_item_features(self) -> None:
        """Let the members use ``model``'s buffers (item features, state statistics) where they
        are equal, instead of K copies (at millions of videos each copy of the item features
        is hundreds of MB) and so compute their fixed inputs once."""
        for name in ("item_features", "obs_mean", "obs_inv_std"):
            shared = getattr(self.model, name)
            for net in self.members:
                own = getattr(net, name)
                if own is not shared and own.device == shared.device and torch.equal(own, shared):
                    setattr(net, name, shared)

    @property
    def device(self) -> torch.device:
        """Where the model's weights live."""
        return next(self.model.parameters()).device

    def predict_torch(
        self, obs: torch.Tensor, item: torch.Tensor, exposure: Exposure = "random"
    ) -> torch.Tensor:
        """Probabilities / watch ratio (B, 9) float32 in :data:`HEADS` order, no gradient.

        ``obs`` (B, 128) float16/32 and ``item`` (B,) int64 on :attr:`device`.
        """
        e = 1.0 if exposure == "random" else 0.0
        with torch.inference_mode():
            flag = torch.full((obs.shape[0],), e, device=obs.device)
            return torch.sigmoid(self.model(obs, item, flag))

    def predict_members_torch(
        self, obs: torch.Tensor, item: torch.Tensor, exposure: Exposure = "random"
    ) -> torch.Tensor:
        """Probabilities / watch ratio (K, B, 9) float32 of each of the K :attr:`members`, no
        gradient (one batched call per member); inputs as :meth:`predict_torch`."""
        if not self.members:
            raise ConfigError("the simulator has no ensemble members (run `noetik sim ensemble`)")
        e = 1.0 if exposure == "random" else 0.0
        first = self.members[0]
        with torch.inference_mode():
            flag = torch.full((obs.shape[0],), e, device=obs.device)
            if not all(first.shares_buffers(net) for net in self.members):
                return torch.stack([torch.sigmoid(net(obs, item, flag)) for net in self.members])
            fixed = first.fixed_inputs(obs, item)  # the same for every member
            logits = [net.logits_from(fixed, item, flag) for net in self.members]
            return torch.sigmoid(torch.stack(logits))

    def predict(
        self, obs: np.ndarray, item_idx: np.ndarray, exposure: Exposure = "random"
    ) -> dict[str, np.ndarray]:
        """``{signal: (B,) float32}`` for states ``obs`` (B, 128) and items ``item_idx`` (B,).

        Binary signals are probabilities; ``watch_ratio`` is the expected ratio in [0, 1].
        """
        device = self.device
        obs_t = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=device)
        item_t = torch.as_tensor(np.asarray(item_idx, dtype=np.int64), device=device)
        out = self.predict_torch(obs_t, item_t, exposure).cpu().numpy()
        return {name: out[:, j] for j, name in enumerate(HEADS)}

    def to(self, device: torch.device | str) -> FittedSimulator:
        """Move the networks to ``device`` (in place); returns self."""
        self.model.to(device)
        if self.uncorrected is not None:
            self.uncorrected.to(device)
        for net in self.members:
            net.to(device)
        self.share_item_features()
        return self

    def save(self, run_dir: Path | str) -> None:
        """Write the simulator to ``run_dir`` (safetensors weights + JSON config)."""
        from noetik.simulators.kuairand.store import save_simulator

        save_simulator(self, Path(run_dir))
