"""Engagement versus interpretability: regularisers added to a policy's loss (IQL, BC, PPO).

The policy loss ``L_engage`` of an agent (IQL's advantage-weighted regression, BC's
cross-entropy, PPO's clipped surrogate + value + entropy terms) gets weighted interpretability
terms, all 0 by default (then the agents train exactly as without this module)::

    L = L_engage + λ_H · H_attn + λ_S · S_attr + λ_G · G_agree + λ_1 · L1_grad

* ``H_attn`` (:func:`attention_entropy`): in every Transformer layer l and head h, the query
  token's attention ``p`` over the *valid* history positions, renormalised,
  ``p̃_k = p_k m_k / Σ_j p_j m_j``, has entropy ``-Σ_k p̃_k log p̃_k``; averaged over layers,
  heads and the decisions with at least one past interaction. 0: one past interaction takes all
  the history attention; ``log n``: uniform over n interactions. Low entropy = sparse attention.
* ``S_attr`` (:func:`attribution_stability`): on the first ``samples`` decisions of the batch,
  with ``a`` the policy's argmax action and ``f(x) = scores(x, history)[a]`` (history fixed),
  the attribution ``φ(x) = x ⊙ ∇f(x)`` (gradient × input) or ``∇f(x)`` moves under a Gaussian
  perturbation ``ε ~ N(0, σ² I)`` of the state by ``S = mean_b ‖φ(x_b + ε_b) - φ(x_b)‖²``.
  ``φ`` is computed with ``create_graph=True`` so ``S`` is differentiable in the weights
  (double backpropagation, Drucker & LeCun 1992; Ross & Doshi-Velez 2018).
* ``G_agree`` (:func:`agreement_loss`): on the same decisions, the attention on each history
  position (:func:`attention_rollout`, Abnar & Zuidema 2020, or the last layer's mean over
  heads) and the gradient × input of each history token, ``|Σ_d t_kd ∂f/∂t_kd|`` over the
  token's embedding dimensions, should point the same way: ``G = mean_b (1 - cos(α_b, g_b))``
  over the valid positions.
* ``L1_grad``: ``mean_b Σ_i |∂f/∂x_i|``, a sparse input gradient over the 128 state dims.

The noise ``ε`` comes from a generator seeded by the agent's seed and an update counter (the
checkpointed buffer ``step``), so training with the terms on is reproducible and resumable.
The update's metrics report every enabled term as ``interp_<name>`` (unweighted) and the
weighted sum as ``interp_penalty``. See docs/algorithms.md, "Engagement versus
interpretability", and noetik.analysis.sweeps (``noetik sweep``) for the sweep of the weights.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn

from noetik.agents.networks.encoders import Encoder, History, HistoryTransformerEncoder
from noetik.errors import ConfigError

__all__ = [
    "InterpretabilityConfig",
    "InterpretabilityTerms",
    "add_penalty",
    "agreement_loss",
    "attention_entropy",
    "attention_rollout",
    "attribution_stability",
    "input_attribution",
    "make_terms",
    "mean_attention_entropy",
    "metric_names",
    "query_attention",
    "recording",
]

AttributionKind = Literal["grad_x_input", "gradient"]
#: ``(B, D) float32 states -> (B, A) float32 scores`` (the history is bound by the caller).
ScoreFn = Callable[[Tensor], Tensor]


@dataclass(frozen=True)
class InterpretabilityConfig:
    """Weights of the interpretability terms added to the policy loss (all 0: off)."""

    attention_entropy: float = 0.0
    """λ_H: weight of the mean entropy of the query's attention over valid history positions
    (per layer and head). Needs the Transformer encoder."""
    stability: float = 0.0
    """λ_S: weight of the squared change of the chosen action's state attribution under a
    Gaussian perturbation of the state (double backprop on ``samples`` decisions)."""
    agreement: float = 0.0
    """λ_G: weight of ``1 - cos`` between attention and gradient × input per history position.
    Needs the Transformer encoder."""
    l1_state: float = 0.0
    """λ_1: weight of the L1 norm of the chosen action's input gradient over the state."""
    stability_sigma: float = 0.05
    """σ of the Gaussian perturbation of the state (state units) in the stability term."""
    stability_attribution: AttributionKind = "grad_x_input"
    """Attribution whose stability is penalised: ``"grad_x_input"`` (x ⊙ ∇f) or ``"gradient"``."""
    agreement_attention: Literal["rollout", "last_layer"] = "rollout"
    """Attention compared in the agreement term: attention rollout over all layers, or the
    last layer's query attention averaged over heads."""
    samples: int = 32
    """Decisions per batch (its first rows) on which the gradient terms (stability,
    agreement, L1) are computed; they cost a double backprop, so keep this small."""

    def __post_init__(self) -> None:
        for name in ("attention_entropy", "stability", "agreement", "l1_state"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise ConfigError(f"interpretability.{name} must be a finite weight >= 0")
        if not (math.isfinite(self.stability_sigma) and self.stability_sigma >= 0.0):
            raise ConfigError("interpretability.stability_sigma must be >= 0")
        if self.stability_attribution not in ("grad_x_input", "gradient"):
            raise ConfigError(
                "interpretability.stability_attribution must be 'grad_x_input' "
                f"or 'gradient', got {self.stability_attribution!r}"
            )
        if self.agreement_attention not in ("rollout", "last_layer"):
            raise ConfigError(
                "interpretability.agreement_attention must be 'rollout' or "
                f"'last_layer', got {self.agreement_attention!r}"
            )
        if self.samples < 1:
            raise ConfigError(f"interpretability.samples must be >= 1, got {self.samples}")

    @property
    def weights(self) -> dict[str, float]:
        """Term name -> weight, for the enabled (non-zero) terms, in a fixed order."""
        pairs = {
            "attention_entropy": self.attention_entropy,
            "stability": self.stability,
            "agreement": self.agreement,
            "l1_state": self.l1_state,
        }
        return {k: v for k, v in pairs.items() if v > 0.0}

    @property
    def enabled(self) -> bool:
        """Whether any term has a non-zero weight."""
        return bool(self.weights)


# -- the terms, as plain functions (tested against hand-computed numbers) -----------------------
def query_attention(weights: Tensor) -> Tensor:
    """(B, L, H, K) attention of the query token over the K history positions, from the
    encoder's (L, B, H, K + 1, K + 1) weights (row/column K is the query token)."""
    return weights[:, :, :, -1, :-1].permute(1, 0, 2, 3)


def attention_entropy(attn: Tensor, mask: Tensor) -> Tensor:
    """0-d mean entropy (nats) of attention rows renormalised over the valid positions.

    ``attn`` (B, ..., K) float32 non-negative weights (e.g. :func:`query_attention`), ``mask``
    (B, K) bool valid positions. Masked positions are dropped before renormalising; rows are
    averaged within each decision, then over the decisions with at least one valid position.
    """
    m = mask.reshape(mask.shape[0], *([1] * (attn.dim() - 2)), mask.shape[1]).to(attn.dtype)
    p = attn * m
    p = p / p.sum(-1, keepdim=True).clamp_min(1e-12)
    ent = -(p * torch.log(p.clamp_min(1e-12))).sum(-1).reshape(attn.shape[0], -1).mean(1)
    valid = mask.any(-1).to(attn.dtype)
    return (ent * valid).sum() / valid.sum().clamp_min(1.0)


def attention_rollout(weights: Tensor) -> Tensor:
    """(B, K) attention rollout of the query token over the history positions.

    ``weights`` (L, B, H, T, T) float32 (T = K + 1). With ``Ã_l = ½ mean_h W_l + ½ I``, the
    rollout is ``Ã_L ⋯ Ã_1`` (Abnar & Zuidema 2020); its query row, without the query column.
    """
    t = weights.shape[-1]
    eye = torch.eye(t, dtype=weights.dtype, device=weights.device)
    out = eye.expand(weights.shape[1], t, t)
    for layer in weights.mean(2).unbind(0):
        out = (0.5 * layer + 0.5 * eye) @ out
    return out[:, -1, :-1]


def agreement_loss(attn: Tensor, attr: Tensor, mask: Tensor) -> Tensor:
    """0-d ``mean_b (1 - cos(attn_b, |attr_b|))`` over valid positions.

    ``attn`` (B, K) float32 attention, ``attr`` (B, K) float32 attribution per position (its
    absolute value is compared), ``mask`` (B, K) bool. Decisions without a valid position are
    left out. 0: proportional; 1: disjoint supports.
    """
    m = mask.to(attn.dtype)
    a, g = attn * m, attr.abs() * m
    cos: Tensor = (a * g).sum(-1) / (a.norm(dim=-1) * g.norm(dim=-1)).clamp_min(1e-12)
    valid = mask.any(-1).to(attn.dtype)
    return ((1.0 - cos) * valid).sum() / valid.sum().clamp_min(1.0)


def input_attribution(
    score: ScoreFn, obs: Tensor, actions: Tensor, kind: AttributionKind = "grad_x_input"
) -> Tensor:
    """(B, D) float32 attribution of the ``actions`` (B,) int64 scores to the states ``obs``
    (B, D) float32: ``x ⊙ ∇f`` or ``∇f``, differentiable in the weights (``create_graph``)."""
    x = obs.detach().requires_grad_(True)
    f = score(x).gather(1, actions[:, None]).sum()
    grad: Tensor = torch.autograd.grad(f, x, create_graph=True)[0]
    return grad * x if kind == "grad_x_input" else grad


def attribution_stability(
    score: ScoreFn,
    obs: Tensor,
    actions: Tensor,
    noise: Tensor,
    *,
    kind: AttributionKind = "grad_x_input",
    base: Tensor | None = None,
) -> Tensor:
    """0-d ``mean_b ‖φ(x_b + noise_b) - φ(x_b)‖²`` of :func:`input_attribution` φ.

    ``obs``, ``noise`` (B, D) float32; ``actions`` (B,) int64; ``base`` optionally φ(obs)
    already computed (B, D).
    """
    before = input_attribution(score, obs, actions, kind) if base is None else base
    after = input_attribution(score, obs + noise, actions, kind)
    return (after - before).square().sum(-1).mean()


# -- the module the agents hold -----------------------------------------------------------------
@dataclass
class _Capture:
    tokens: Tensor | None = None
    weights: list[Tensor] = field(default_factory=list)


@contextlib.contextmanager
def _capture(encoder: HistoryTransformerEncoder, tokens: bool, weights: bool) -> Iterator[_Capture]:
    """Record the encoder's input tokens (B, K + 1, d) and each block's attention weights."""
    cap, handles = _Capture(), []

    def on_tokens(module: nn.Module, args: tuple[Any, ...]) -> None:
        cap.tokens = args[0]

    def on_block(module: nn.Module, args: tuple[Any, ...], out: tuple[Tensor, Tensor]) -> None:
        cap.weights.append(out[1])

    blocks = list(encoder.blocks)
    if tokens:
        handles.append(blocks[0].register_forward_pre_hook(on_tokens))
    if weights:
        handles += [b.register_forward_hook(on_block) for b in blocks]
    try:
        yield cap
    finally:
        for handle in handles:
            handle.remove()


def _first(history: History | None, n: int) -> History | None:
    if history is None:
        return None
    return History(history.items[:n], history.signals[:n], history.gap_s[:n], history.mask[:n])


class InterpretabilityTerms(nn.Module):
    """The interpretability penalty of one policy encoder (built by :func:`make_terms`)."""

    step: Tensor
    """0-d int64 buffer: penalties computed so far (seeds the perturbation noise)."""

    def __init__(self, config: InterpretabilityConfig, encoder: Encoder, seed: int) -> None:
        super().__init__()
        needs_attention = config.attention_entropy > 0 or config.agreement > 0
        if needs_attention and not isinstance(encoder, HistoryTransformerEncoder):
            raise ConfigError(
                "interpretability.attention_entropy and .agreement need encoder.kind='transformer'"
            )
        self.config, self.encoder_ref, self.seed = config, [encoder], seed % 2**31
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))
        self._next: int | None = None
        self._main: _Capture | None = None

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        self._next = None  # re-read the counter after a checkpoint is loaded
        super()._load_from_state_dict(*args, **kwargs)

    @property
    def transformer(self) -> HistoryTransformerEncoder | None:
        """The policy encoder when it is a History Transformer (not a submodule of this)."""
        enc = self.encoder_ref[0]
        return enc if isinstance(enc, HistoryTransformerEncoder) else None

    @contextlib.contextmanager
    def recording(self) -> Iterator[None]:
        """Record the policy encoder's attention during the main forward pass (entropy term)."""
        enc = self.transformer
        if enc is None or self.config.attention_entropy == 0:
            yield
            return
        with _capture(enc, tokens=False, weights=True) as cap:
            self._main = cap
            yield

    def _noise(self, like: Tensor) -> Tensor:
        """σ ε (like.shape) from a CPU generator seeded by (seed, step); advances ``step``."""
        if self._next is None:
            self._next = int(self.step)
        gen = torch.Generator().manual_seed(self.seed * 2**32 + self._next)
        self._next += 1
        self.step.fill_(self._next)
        eps = torch.randn(like.shape, generator=gen, dtype=like.dtype)
        return self.config.stability_sigma * eps.to(like.device)

    def penalty(
        self,
        score: Callable[[Tensor, History | None], Tensor],
        obs: Tensor,
        history: History | None,
        logits: Tensor,
    ) -> tuple[Tensor, dict[str, Tensor]]:
        """``(Σ_k λ_k term_k (0-d), metrics)`` for the batch ``obs`` (B, D) float32 whose policy
        ``logits`` (B, A) were computed inside :meth:`recording`."""
        cfg, terms = self.config, {}
        main, self._main = self._main, None
        if cfg.attention_entropy > 0 and history is not None and main and main.weights:
            n_layers = len(self.transformer.blocks) if self.transformer is not None else 0
            weights = torch.stack(main.weights[-n_layers:]).float()
            terms["attention_entropy"] = attention_entropy(query_attention(weights), history.mask)
        if cfg.stability > 0 or cfg.agreement > 0 or cfg.l1_state > 0:
            terms |= self._gradient_terms(score, obs, history, logits)
        total, metrics = logits.new_zeros((), dtype=torch.float32), {}
        for name, weight in cfg.weights.items():  # a term that cannot be computed counts 0
            value = terms.get(name, total.new_zeros(()))
            total = total + weight * value
            metrics[f"interp_{name}"] = value.detach()
        return total, metrics | {"interp_penalty": total.detach()}

    def _gradient_terms(
        self,
        score: Callable[[Tensor, History | None], Tensor],
        obs: Tensor,
        history: History | None,
        logits: Tensor,
    ) -> dict[str, Tensor]:
        """Stability, agreement and L1 on the first ``samples`` decisions (double backprop)."""
        cfg = self.config
        n = min(cfg.samples, obs.shape[0])
        h = _first(history, n)
        x = obs[:n].detach().float().requires_grad_(True)
        actions = logits[:n].detach().argmax(-1)
        enc = self.transformer if cfg.agreement > 0 and h is not None else None
        with contextlib.ExitStack() as stack:
            cap = stack.enter_context(_capture(enc, True, True)) if enc is not None else None
            f = score(x, h).gather(1, actions[:, None]).sum()
        inputs = [x] if cap is None or cap.tokens is None else [x, cap.tokens]
        grads = torch.autograd.grad(f, inputs, create_graph=True)
        out: dict[str, Tensor] = {}
        if cfg.stability > 0:
            kind = cfg.stability_attribution
            base = grads[0] * x if kind == "grad_x_input" else grads[0]
            out["stability"] = attribution_stability(
                lambda z: score(z, h), x, actions, self._noise(x), kind=kind, base=base
            )
        if cfg.l1_state > 0:
            out["l1_state"] = grads[0].abs().sum(-1).mean()
        if cap is not None and cap.tokens is not None and h is not None:
            per_position = (grads[1] * cap.tokens).sum(-1)[:, :-1]  # (n, K)
            weights = torch.stack(cap.weights).float()
            attn = (
                attention_rollout(weights)
                if cfg.agreement_attention == "rollout"
                else query_attention(weights)[:, -1].mean(1)
            )
            out["agreement"] = agreement_loss(attn, per_position, h.mask)
        return out


# -- what the agents call (a no-op when every weight is 0) --------------------------------------
def make_terms(
    config: InterpretabilityConfig, encoder: Encoder, seed: int
) -> InterpretabilityTerms | None:
    """:class:`InterpretabilityTerms` for the policy ``encoder``, or None when all weights are
    0 (then the agent's state dict and training are exactly those without the terms)."""
    return InterpretabilityTerms(config, encoder, seed) if config.enabled else None


def recording(terms: InterpretabilityTerms | None) -> contextlib.AbstractContextManager[Any]:
    """Context of the policy's main forward pass: :meth:`InterpretabilityTerms.recording`."""
    return contextlib.nullcontext() if terms is None else terms.recording()


def add_penalty(
    terms: InterpretabilityTerms | None,
    loss: Tensor,
    score: Callable[[Tensor, History | None], Tensor],
    obs: Tensor,
    history: History | None,
    *,
    logits: Tensor | None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """``(loss + penalty, metrics)`` of :meth:`InterpretabilityTerms.penalty`; ``(loss, {})``
    itself, untouched, when ``terms`` is None (``logits`` (B, A) are needed otherwise)."""
    if terms is None:
        return loss, {}
    if logits is None:
        raise ConfigError("interpretability terms need the (B, A) logits of every item")
    penalty, metrics = terms.penalty(score, obs, history, logits)
    return loss + penalty, metrics


def metric_names(terms: InterpretabilityTerms | None) -> tuple[str, ...]:
    """The metric names :func:`add_penalty` returns for ``terms``, in order."""
    if terms is None:
        return ()
    return (*(f"interp_{k}" for k in terms.config.weights), "interp_penalty")


@torch.no_grad()
def mean_attention_entropy(encoder: Encoder, obs: Tensor, history: History) -> float:
    """Mean :func:`attention_entropy` (nats) of ``encoder``'s query attention on a batch of
    decisions ``obs`` (B, D) float32; NaN for encoders without attention."""
    weights = encoder.attention(obs, history)
    if weights is None:
        return float("nan")
    return float(attention_entropy(query_attention(weights.float()), history.mask))
