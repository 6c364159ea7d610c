"""A neural model of choice: a GRU or causal Transformer trained across subjects to predict
each next choice from the choices and outcomes before it.

Training minimises the cross-entropy of every observed choice (all levels of all real trials;
padding masked out), averaged per decision, with AdamW on batches of ``batch_subjects``
subjects' whole episodes (seeded epochs of shuffled subjects). By default a seeded
``val_fraction`` of the subjects is held out and training stops early: every ``eval_every``
updates their cross-entropy is measured, the best weights are kept, and training ends after
``patience`` checks without improvement (human data sets are small: a network of a few
thousand weights overfits 20 people's 2,000 choices within a few hundred updates). One
network serves every subject: what a person has learned reaches the prediction only through
their own history, so a new subject needs no fitting.

:class:`NeuralChoiceModel` implements the :class:`~noetik.agents.choice_nets.contract.ChoiceModel`
contract: ``fit`` (a new fitted model), ``predict`` (:class:`ChoicePredictions`, the form the
cognitive models' ``predict`` gives, for :mod:`noetik.evaluation.choices`), ``log_probs``,
``next_log_probs`` / ``act`` (the trial after each subject's last), ``save`` / ``load`` (a
folder: ``choice_model.json`` + ``weights.safetensors``, each written to a temporary file and
renamed; no pickle).

>>> from noetik.agents.choice_nets import NeuralChoiceConfig, NeuralChoiceModel
>>> model = NeuralChoiceModel(NeuralChoiceConfig(kind="gru", updates=500)).fit(episodes)
>>> model.predict(episodes).log_lik.shape          # (S, T)
>>> model.save("runs/gru"); NeuralChoiceModel.load("runs/gru")
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from noetik.agents.choice_nets.base import ChoiceNet, observed_log_probs, state_logits
from noetik.agents.choice_nets.config import NeuralChoiceConfig
from noetik.agents.choice_nets.gru import ChoiceGRU
from noetik.agents.choice_nets.inputs import ChoiceInputs, encode_inputs
from noetik.agents.choice_nets.transformer import ChoiceTransformer
from noetik.agents.cognitive import ChoicePredictions
from noetik.agents.fast.threads import intra_op_threads, sequence_threads
from noetik.data.choices import ChoiceEpisodes, FloatArray, IntArray, TaskDesign
from noetik.errors import ConfigError
from noetik.utils.config import from_json
from noetik.utils.io import expect_object, read_json, write_json
from noetik.utils.seeding import rng
from noetik.utils.tensor_files import load_tensors, save_tensors

__all__ = ["CONFIG_FILE", "WEIGHTS_FILE", "NeuralChoiceModel", "TrainLog", "make_net"]

#: Name of the JSON file of a saved model of choice (either kind).
CONFIG_FILE = "choice_model.json"
#: Name of a saved network's weights.
WEIGHTS_FILE = "weights.safetensors"


def make_net(design: TaskDesign, config: NeuralChoiceConfig) -> ChoiceNet:
    """The untrained network ``config.kind`` for tasks of ``design``."""
    if config.kind == "gru":
        return ChoiceGRU(design, config)
    return ChoiceTransformer(design, config)


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@dataclass(frozen=True, eq=False)
class TrainLog:
    """What training did."""

    losses: FloatArray
    """(updates run,) float64 cross-entropy per decision of each update's batch (nats)."""
    val_losses: FloatArray
    """(checks,) float64 validation cross-entropy per decision at each check (empty without
    validation subjects)."""
    best_update: int
    """Updates behind the weights kept (all of them without validation)."""
    n_subjects: int
    """Subjects trained on."""
    n_decisions: int
    """Decisions trained on (trials times choice levels)."""
    seconds: float
    """Wall-clock time of training."""


class NeuralChoiceModel:
    """A GRU or Transformer model of choice: unfitted from a config, fitted by :meth:`fit`."""

    def __init__(
        self,
        config: NeuralChoiceConfig | None = None,
        *,
        net: ChoiceNet | None = None,
        log: TrainLog | None = None,
        scope: Literal["pooled", "subjects"] = "pooled",
        subjects: tuple[str, ...] = (),
    ) -> None:
        self.config = config or NeuralChoiceConfig()
        self.net = net
        """The trained network (None before :meth:`fit`)."""
        self.log = log
        """How training went (None before :meth:`fit` and after :meth:`load`)."""
        self.scope = scope
        self.subjects = subjects
        """Subjects trained on (with ``scope="subjects"``: whose rows ``fitted_params`` has)."""

    @property
    def name(self) -> str:
        """``"gru"`` or ``"transformer"``."""
        return self.config.kind

    @property
    def design(self) -> TaskDesign:
        """The task the network was built for."""
        return self._net().design

    @property
    def fitted_params(self) -> FloatArray:
        """No per-subject parameters: (0,) float64 (pooled) or (S, 0) (``scope="subjects"``),
        the shape cognitive models' parameters take with P = 0."""
        if self.scope == "subjects":
            return np.zeros((len(self.subjects), 0))
        return np.zeros(0)

    @property
    def device(self) -> torch.device:
        """Where the network's weights are."""
        return next(self._net().parameters()).device

    def _net(self) -> ChoiceNet:
        if self.net is None:
            raise ConfigError(f"the {self.name} model of choice is not fitted yet")
        return self.net

    # -- training ---------------------------------------------------------------------------

    def fit(
        self, episodes: ChoiceEpisodes, scope: Literal["pooled", "subjects"] = "pooled"
    ) -> NeuralChoiceModel:
        """A new model trained on every trial of ``episodes`` (this one is left unchanged).
        ``scope`` only records how it is meant to be used: a network has no per-subject
        parameters, so all subjects train one network either way. On the CPU training runs
        with the intra-op threads of :func:`~noetik.agents.fast.threads.sequence_threads` (one
        for these small networks: the GRU steps through trials one at a time), and torch's
        setting is restored afterwards."""
        config = self.config
        device = _device(config.device)
        start = time.perf_counter()
        forked = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=forked):
            torch.manual_seed(config.seed)
            net = make_net(episodes.design, config).to(device)
            rows = min(config.batch_subjects, episodes.n_subjects) * (episodes.max_trials + 1)
            threads = sequence_threads(net, rows, device, recurrent=config.kind == "gru")
            with intra_op_threads(threads):
                losses, val_losses, best = _train(net, episodes, config, device)
        net.eval()
        log = TrainLog(
            losses=losses,
            val_losses=val_losses,
            best_update=best,
            n_subjects=episodes.n_subjects,
            n_decisions=int(episodes.mask.sum()) * episodes.design.n_levels,
            seconds=time.perf_counter() - start,
        )
        return NeuralChoiceModel(config, net=net, log=log, scope=scope, subjects=episodes.subjects)

    # -- predictions ------------------------------------------------------------------------

    def tensors(self, episodes: ChoiceEpisodes) -> tuple[ChoiceInputs, Tensor, Tensor]:
        """``(inputs, rows, current)``: the encoded episodes and their tensors on the model's
        device ((S, T + 1, F) and (S, T + 1, C) float32)."""
        self._check(episodes.design)
        inputs = encode_inputs(episodes)
        device = self.device
        rows = torch.as_tensor(inputs.rows, device=device)
        return inputs, rows, torch.as_tensor(inputs.current, device=device)

    def _check(self, design: TaskDesign) -> None:
        own = self._net().design
        if (own.n_options, own.states, own.outcomes) != (
            design.n_options,
            design.states,
            design.outcomes,
        ):
            raise ConfigError(
                f"the {self.name} model was trained on task '{own.task}' "
                f"(options {own.n_options}, outcomes {own.outcomes}); "
                f"got task '{design.task}' (options {design.n_options}, "
                f"outcomes {design.outcomes})"
            )

    def predict(self, episodes: ChoiceEpisodes) -> ChoicePredictions:
        """Log-likelihood and hits of every observed trial (:class:`ChoicePredictions`)."""
        net = self._net()
        _, rows, current = self.tensors(episodes)
        choices = torch.as_tensor(episodes.choices, device=rows.device)
        with torch.no_grad():
            log_p, logits = observed_log_probs(net, rows, current, choices)
        design = episodes.design
        hits = np.zeros(episodes.mask.shape)
        for level, lv_logits in enumerate(logits):
            values = lv_logits.double().cpu().numpy()
            option = episodes.choices[..., level] % design.options_per_state(level)
            best = values >= values.max(axis=-1, keepdims=True) - 1e-9
            hits += np.take_along_axis(best, option[..., None], -1)[..., 0] / best.sum(-1)
        log_lik = log_p.double().sum(-1).cpu().numpy()
        mask = episodes.mask
        return ChoicePredictions(
            np.where(mask, log_lik, 0.0), np.where(mask, hits, 0.0), mask, design.n_levels
        )

    def log_probs(self, episodes: ChoiceEpisodes, level: int = 0) -> FloatArray:
        """(S, T, k) float64 log-probabilities of the k options of choice ``level`` on every
        trial (for a later level, the options of the state the trial reached); padding
        trials hold the values of a trial after the subject's last, and are meaningless."""
        net = self._net()
        _, rows, current = self.tensors(episodes)
        t = episodes.max_trials
        choices = torch.as_tensor(episodes.choices[..., level], device=rows.device)
        with torch.no_grad():
            logits = net.level_logits(net.features(rows)[:, :t], current[:, :t], level)
            logits = state_logits(logits, choices, episodes.design, level)
            out: FloatArray = torch.log_softmax(logits, -1).double().cpu().numpy()
        return out

    def next_log_probs(self, episodes: ChoiceEpisodes) -> FloatArray:
        """(S, n_options[0]) float64 log-probabilities of each subject's first choice on the
        trial after their last."""
        net = self._net()
        _, rows, current = self.tensors(episodes)
        with torch.no_grad():
            logits = net.level_logits(net.features(rows), current, 0)
        last = torch.as_tensor(episodes.n_trials, device=rows.device)
        picked = logits[torch.arange(len(last), device=rows.device), last]
        out: FloatArray = torch.log_softmax(picked, -1).double().cpu().numpy()
        return out

    def act(self, episodes: ChoiceEpisodes, *, seed: int = 0, greedy: bool = False) -> IntArray:
        """(S,) int64 each subject's next first-level choice: sampled from
        :meth:`next_log_probs` (seeded), or its most likely option when ``greedy``."""
        return sample_options(self.next_log_probs(episodes), seed=seed, greedy=greedy)

    # -- files ------------------------------------------------------------------------------

    def save(self, path: str | Path) -> Path:
        """Write the fitted model to folder ``path`` (weights, then the JSON config; each
        written to a temporary file and renamed); returns the folder."""
        net = self._net()
        folder = Path(path)
        save_tensors(folder / WEIGHTS_FILE, net.state_dict())
        payload: dict[str, Any] = {
            "kind": "neural",
            "config": dataclasses.asdict(self.config),
            "design": dataclasses.asdict(net.design),
            "scope": self.scope,
            "subjects": list(self.subjects),
        }
        write_json(folder / CONFIG_FILE, payload)
        return folder

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> NeuralChoiceModel:
        """The model saved in folder ``path`` (on ``device``, default the config's); a
        missing, damaged or mismatched file raises a one-line ConfigError naming it."""
        folder = Path(path)
        where = folder / CONFIG_FILE
        payload = expect_object(read_json(where, "model of choice"), where, "model of choice")
        if payload.get("kind") != "neural":
            raise ConfigError(f"{where}: not a neural model of choice")
        config = from_json(NeuralChoiceConfig, payload.get("config"), str(where))
        design = from_json(TaskDesign, payload.get("design"), str(where))
        scope = payload.get("scope")
        subjects = payload.get("subjects")
        if scope not in ("pooled", "subjects") or not isinstance(subjects, list):
            raise ConfigError(f"{where}: damaged model of choice (scope or subjects)")
        target = _device(device or config.device)
        net = make_net(design, config)
        tensors = load_tensors(folder / WEIGHTS_FILE)
        try:
            net.load_state_dict(tensors)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise ConfigError(f"{folder / WEIGHTS_FILE}: weights do not fit ({first})") from None
        net.to(target).eval()
        return cls(config, net=net, scope=scope, subjects=tuple(str(s) for s in subjects))


def sample_options(log_probs: FloatArray, *, seed: int = 0, greedy: bool = False) -> IntArray:
    """(S,) int64 options drawn from (S, k) ``log_probs`` (seeded), or their argmax."""
    if greedy:
        out: IntArray = log_probs.argmax(axis=1).astype(np.int64)
        return out
    probs = np.exp(log_probs - log_probs.max(axis=1, keepdims=True))
    cumulative = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    draw = rng(seed, "choice-act").random(len(probs))
    k = probs.shape[1]
    picked: IntArray = np.minimum((cumulative < draw[:, None]).sum(axis=1), k - 1)
    return picked.astype(np.int64)


def _split(episodes: ChoiceEpisodes, config: NeuralChoiceConfig) -> tuple[IntArray, IntArray]:
    """``(train, validation)`` subject rows: a seeded ``val_fraction`` (rounded up) held out
    when there are at least two subjects, none otherwise."""
    s = episodes.n_subjects
    n_val = int(np.ceil(config.val_fraction * s)) if s >= 2 else 0
    order = rng(config.seed, "choice-net-validation").permutation(s)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


class _BestWeights:
    """Validation checks during training: the best weights so far, and when to stop."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.losses: list[float] = []
        self.best, self.update, self.since = np.inf, 0, 0
        self.state: dict[str, Tensor] | None = None

    def check(self, net: ChoiceNet, loss: float, update: int) -> bool:
        """Record validation ``loss`` after ``update`` updates; True when training should
        stop (``patience`` checks without improvement)."""
        self.losses.append(loss)
        if loss < self.best:
            self.best, self.update, self.since = loss, update, 0
            self.state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        else:
            self.since += 1
        return self.since >= self.patience


def _train(
    net: ChoiceNet, episodes: ChoiceEpisodes, config: NeuralChoiceConfig, device: torch.device
) -> tuple[FloatArray, FloatArray, int]:
    """Train ``net`` in place (the best validation weights kept); ``(batch losses, validation
    losses, updates behind the kept weights)``."""
    inputs = encode_inputs(episodes)
    rows = torch.as_tensor(inputs.rows, device=device)
    current = torch.as_tensor(inputs.current, device=device)
    choices = torch.as_tensor(episodes.choices, device=device)
    mask = torch.as_tensor(episodes.mask, device=device)
    lengths = episodes.n_trials
    if not lengths.sum():
        raise ConfigError("no trials to train the model of choice on")
    train, val = _split(episodes, config)

    def loss_of(pick: IntArray) -> Tensor:
        t = max(int(lengths[pick].max()), 1)
        index = torch.as_tensor(pick, device=device)
        log_p, _ = observed_log_probs(
            net, rows[index, : t + 1], current[index, : t + 1], choices[index, :t]
        )
        real = mask[index, :t]
        return -(log_p.sum(-1) * real).sum() / (real.sum().clamp_min(1) * log_p.shape[-1])

    b = min(config.batch_subjects, len(train))
    order = rng(config.seed, "choice-net-batches")
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    queue = np.zeros(0, dtype=np.int64)
    losses: list[float] = []
    keeper = _BestWeights(config.patience)
    for update in range(config.updates + 1):
        if len(val) and (update % config.eval_every == 0 or update == config.updates):
            net.eval()
            with torch.no_grad():
                if keeper.check(net, float(loss_of(val)), update):
                    break
        if update == config.updates:
            break
        net.train()
        if len(queue) < b:
            queue = np.concatenate([queue, train[order.permutation(len(train))]])
        pick, queue = np.sort(queue[:b]), queue[b:]
        loss = loss_of(pick)
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(net.parameters(), config.grad_clip)
        opt.step()
        losses.append(float(loss.detach()))
    if keeper.state is not None:
        net.load_state_dict(keeper.state)
    best = keeper.update if len(val) else len(losses)
    return np.asarray(losses), np.asarray(keeper.losses), best
