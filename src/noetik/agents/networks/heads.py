"""Output heads: scoring A items from an encoding, and fused ensembles (twin Q networks).

* :class:`ItemScorer` turns an encoding (B, H) into one score per action (B, A). Small action
  spaces use a dense linear layer; large ones score items against learned item embeddings
  (plus an optional projection of item side features), so memory is O(A * d) with d << H.
* :class:`FusedEnsemble` evaluates E copies of any module (e.g. twin Q networks) in one
  vectorised call (``torch.func.vmap``); its parameters are stacked (E, ...) tensors, so one
  optimizer step updates all members. ``member(i)`` is member ``i`` as a plain module that
  reads row ``i`` of the stacked tensors (a view: no copy to keep in sync, gradients reach the
  stacked parameters).
* :class:`EnsembleMLP` is the same for plain MLPs with batched matrix products (fastest).
"""

from __future__ import annotations

import contextlib
import copy
import functools
import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, stack_module_state, vmap
from torch.nn.utils import parametrize

from noetik.agents.fast.linear import linear

__all__ = ["EnsembleLinear", "EnsembleMLP", "FusedEnsemble", "ItemScorer"]


class ItemScorer(nn.Module):
    """``(B, H) -> (B, A)`` scores; dense when ``A <= dense_max_actions``, else embeddings.

    Embedding mode: ``score[b, a] = proj(h)[b] · item[a] + bias[a]`` with
    ``item[a] = emb[a] (+ W · features[a])``, ``emb`` (A, d) learned.
    """

    features: Tensor
    """(A, F) float32 item side features (embedding mode with features only)."""

    def __init__(
        self,
        in_dim: int,
        n_actions: int,
        embed_dim: int = 64,
        dense_max_actions: int = 4096,
        item_features: np.ndarray | None = None,
    ) -> None:
        super().__init__()
        self.n_actions = n_actions
        self.dense = n_actions <= dense_max_actions
        if self.dense:
            self.linear = nn.Linear(in_dim, n_actions)
            return
        self.proj = nn.Linear(in_dim, embed_dim)
        self.item_emb = nn.Parameter(torch.randn(n_actions, embed_dim) / math.sqrt(embed_dim))
        self.bias = nn.Parameter(torch.zeros(n_actions))
        self.feat: nn.Linear | None = None
        if item_features is not None:
            self.register_buffer("features", torch.as_tensor(item_features, dtype=torch.float32))
            self.feat = nn.Linear(self.features.shape[1], embed_dim, bias=False)

    def item_matrix(self) -> tuple[Tensor, Tensor]:
        """``(weights (A, d), bias (A,))`` such that ``scores = f(h) @ weights.T + bias``."""
        if self.dense:
            return self.linear.weight, self.linear.bias
        items = self.item_emb
        if self.feat is not None:
            items = items + self.feat(self.features)
        return items, self.bias

    def query(self, h: Tensor) -> Tensor:
        """(B, d) query vectors that are dotted with :meth:`item_matrix` rows."""
        return h if self.dense else self.proj(h)

    def forward(self, h: Tensor) -> Tensor:
        """(B, A) float32 scores of every action."""
        weights, bias = self.item_matrix()
        return linear(self.query(h), weights, bias)

    def score_actions(self, h: Tensor, actions: Tensor) -> Tensor:
        """(B,) scores of one action (B,) int64 per row, without scoring all A items."""
        q = self.query(h)
        if self.dense or self.feat is None:
            weights, bias = self.item_matrix() if self.dense else (self.item_emb, self.bias)
            picked: Tensor = (q * weights[actions]).sum(-1) + bias[actions]
            return picked
        items = self.item_emb[actions] + self.feat(self.features[actions])
        scored: Tensor = (q * items).sum(-1) + self.bias[actions]
        return scored

    def score_items(self, h: Tensor, items: Tensor) -> Tensor:
        """(B, S) scores of S items (S,) int64 shared by every row."""
        weights, bias = self.item_matrix()
        return linear(self.query(h), weights[items], bias[items])

    def train_log_prob(self, h: Tensor, actions: Tensor) -> tuple[Tensor, Tensor | None]:
        """``(log π(a | s) (B,), logits (B, A))`` of the softmax over every item, float32."""
        logits = self(h).float()
        return -F.cross_entropy(logits, actions, reduction="none"), logits


class EnsembleLinear(nn.Module):
    """E independent linear layers: ``(E, B, in) -> (E, B, out)`` in one ``baddbmm``."""

    def __init__(self, n_members: int, in_dim: int, out_dim: int) -> None:
        super().__init__()
        bound = 1.0 / math.sqrt(in_dim)  # the default init of nn.Linear
        self.weight = nn.Parameter(torch.empty(n_members, in_dim, out_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(n_members, 1, out_dim).uniform_(-bound, bound))

    def forward(self, x: Tensor) -> Tensor:
        return torch.baddbmm(self.bias, x, self.weight)


class EnsembleMLP(nn.Module):
    """E MLPs ``in_dim -> hidden... -> out_dim`` (ReLU), evaluated together.

    ``forward(x)``: x (B, in_dim) shared by all members, or (E, B, in_dim) one per member;
    returns (E, B, out_dim) float32.
    """

    def __init__(self, n_members: int, in_dim: int, hidden: Sequence[int], out_dim: int) -> None:
        super().__init__()
        sizes = [in_dim, *hidden, out_dim]
        self.n_members = n_members
        self.layers = nn.ModuleList(
            EnsembleLinear(n_members, a, b) for a, b in itertools.pairwise(sizes)
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.n_members, *x.shape)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return x


class FusedEnsemble(nn.Module):
    """E copies of a module with stacked parameters, evaluated with one vmapped call.

    ``FusedEnsemble([q1, q2])(obs, history)`` equals ``torch.stack([q1(obs, history),
    q2(obs, history)])`` (E, ...). Members must share their architecture; each keeps its own
    initial weights. Parameters are registered as ``params.<name with . -> __>`` (E, ...).

    ``member(i)`` is member ``i`` as a module of its own whose parameters and buffers are row
    ``i`` of the stacked tensors, read at every access: it always sees the current weights
    (optimizer steps, ``load_state_dict``, ``.to()``), and its gradients flow to the stacked
    parameters. Inside ``with ensemble.unfused():`` the ensemble's own forward runs member by
    member through such views, so forward hooks on a member's submodules (an encoder's item
    embedding, say) fire, per member.
    """

    _base: nn.Module
    _unfused: tuple[nn.Module, ...] | None

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if len(members) < 1:
            raise ValueError("FusedEnsemble needs at least one member")
        params, buffers = stack_module_state(list(members))  # type: ignore[arg-type]
        self.n_members = len(members)
        self._names = list(params)
        self._buffer_names = list(buffers)
        self.params = nn.ParameterDict({_key(k): nn.Parameter(v) for k, v in params.items()})
        for name, value in buffers.items():
            self.register_buffer(f"buf__{_key(name)}", value)
        base = copy.deepcopy(members[0]).to("meta")
        object.__setattr__(self, "_base", base)  # a template only: not a submodule
        self._unfused = None

    def train(self, mode: bool = True) -> FusedEnsemble:
        super().train(mode)
        self._base.train(mode)
        return self

    def member(self, i: int) -> nn.Module:
        """Member ``i`` (0 <= i < E) as a plain module of the members' class, in this
        ensemble's train/eval mode; a view of the stacked tensors, not a copy (class docs)."""
        if not 0 <= i < self.n_members:
            raise IndexError(f"member {i} of an ensemble of {self.n_members}")
        module = copy.deepcopy(self._base)  # on the meta device: no memory
        for name in self._names:
            current = functools.partial(getattr, self.params, _key(name))
            _bind_row(module, name, current(), i, current)
        for name in self._buffer_names:
            current = functools.partial(getattr, self, f"buf__{_key(name)}")
            _bind_row(module, name, current(), i, current)
        return module.train(self.training)

    def members(self) -> tuple[nn.Module, ...]:
        """``(member(0), ..., member(E - 1))``."""
        return tuple(self.member(i) for i in range(self.n_members))

    @property
    def unfused_members(self) -> tuple[nn.Module, ...] | None:
        """The member views the forward runs through inside :meth:`unfused` (None outside)."""
        return self._unfused

    @contextlib.contextmanager
    def unfused(self) -> Iterator[tuple[nn.Module, ...]]:
        """Within the block, ``forward`` stacks the outputs of :meth:`members` views called one
        by one (the same values up to rounding, hooks on their submodules fire); yields them."""
        previous, self._unfused = self._unfused, self.members()
        try:
            yield self._unfused
        finally:
            self._unfused = previous

    def each(self, *args: Any) -> Tensor:
        """(E, ...) the members' outputs on ``args``, one plain call per member on its rows of
        the stacked tensors (no ``vmap``, no views: what a member caches by the identity of its
        weights, such as a catalogue scorer's item matrix, stays valid between calls)."""
        outs = []
        for i in range(self.n_members):
            params = {n: self.params[_key(n)][i] for n in self._names}
            buffers = {n: getattr(self, f"buf__{_key(n)}")[i] for n in self._buffer_names}
            outs.append(functional_call(self._base, (params, buffers), args))
        return torch.stack(outs)

    def forward(self, *args: Any) -> Tensor:
        """(E, ...) stacked outputs of every member on the same ``args``."""
        if self._unfused is not None:
            return torch.stack([m(*args) for m in self._unfused])
        params = {n: self.params[_key(n)] for n in self._names}
        buffers = {n: getattr(self, f"buf__{_key(n)}") for n in self._buffer_names}

        def call(p: dict[str, Tensor], b: dict[str, Tensor], *inputs: Any) -> Tensor:
            out: Tensor = functional_call(self._base, (p, b), inputs)
            return out

        dims = (0, 0, *([None] * len(args)))
        fused = vmap(call, in_dims=dims, randomness="different")
        result: Tensor = fused(params, buffers, *args)
        return result


class _Row(nn.Module):
    """Parametrization: row ``index`` of the ensemble's current stacked (E, ...) tensor."""

    def __init__(self, index: int, current: Callable[[], Tensor]) -> None:
        super().__init__()
        self.index = index
        self.current = current
        """Returns the stacked tensor as the ensemble holds it now (buffers are replaced, not
        updated in place, when the ensemble moves to another device or dtype)."""

    def forward(self, registered: Tensor) -> Tensor:
        return self.current()[self.index]


def _bind_row(
    module: nn.Module, name: str, stacked: Tensor, index: int, current: Callable[[], Tensor]
) -> None:
    """Make ``module.<name>`` read row ``index`` of ``current()``; ``stacked`` is registered in
    its place (the ensemble's own parameter object, so the view's parameters are the ensemble's)."""
    owner_name, _, leaf = name.rpartition(".")
    owner = module.get_submodule(owner_name)
    if leaf in owner._parameters:
        owner._parameters[leaf] = stacked  # type: ignore[assignment]
    else:
        owner._buffers[leaf] = stacked
    parametrize.register_parametrization(owner, leaf, _Row(index, current), unsafe=True)


def _key(name: str) -> str:
    return name.replace(".", "__")
