"""Marginalised importance sampling over item embeddings (MIPS) for episodes.

Saito & Joachims (ICML 2022, "Off-Policy Evaluation for Large Action Spaces via Embeddings")
replace the action ratio ``π(a|x) / μ(a|x)`` by the ratio of the marginal distributions of an
action embedding ``e``: ``w(x, e) = p(e|x, π) / p(e|x, μ)`` with
``p(e|x, π) = Σ_a π(a|x) p(e|a)``. Here the embedding is a deterministic category of each
item (KuaiRand: its first tag), so ``p(e|x, π) = Σ_{a: e(a) = e} π(a|x)``: the weight of a
logged item is the ratio of the probability masses its whole category gets, which stays
moderate when π and μ agree on categories but not on the items inside them (the catalogue
case, where item ratios have an ESS of a few episodes).

For episodes the ratios are applied **per decision**, as PDIS applies action ratios: step
``t`` is weighted by ``W_it = Π_{k<=t} w(s_ik, e_ik)``:

* :func:`mips_estimate` — ``mean_i Σ_t W_it γ**t r_it``;
* :func:`snmips_estimate` — its self-normalised form, each step's weights divided by their
  mean over the episodes (as WPDIS).

MIPS is unbiased when the reward and the next state depend on the action only through its
embedding (no direct effect of the item beyond its category) and μ gives every category π
uses positive mass; an item effect inside a category biases it (towards μ's choice of items
within categories). With one item per category it is PDIS exactly; with one category for all
items every weight is 1 and it is the on-policy mean of the logged returns.

The marginals of the logged embedding come from full action distributions:
:func:`category_mass` (M, A) -> (M, C) by scatter-add over categories, chunked over rows, and
:func:`logged_category_prob` the mass of each row's logged category only (M,); at catalogue
scale, where no (M, A) matrix is built, :func:`category_log_partition` gives the
log-partition of a softmax over every item and over the items of one category per row in one
chunked pass over the items (``p(e|s) = exp(lse_e − lse)``). The bootstrap
of both estimators is :func:`~noetik.evaluation.ope.estimators.resampled_values` (keys
``mips``, ``snmips``) whenever the episodes carry the ``*_embed_prob`` arrays.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from noetik.agents.core.base import Agent
from noetik.agents.networks.encoders import History
from noetik.agents.networks.topk import BLOCK_SCORES
from noetik.evaluation.ope.estimators import (
    LoggedEpisodes,
    OPEEstimate,
    embed_ratios,
    per_decision,
    weighted_per_decision,
)

__all__ = [
    "category_log_partition",
    "category_mass",
    "check_categories",
    "logged_category_prob",
    "mips_estimate",
    "snmips_estimate",
]


def mips_estimate(data: LoggedEpisodes, clip: float | None = None) -> OPEEstimate:
    """Per-decision MIPS: ``mean_i Σ_t W_it γ**t r_it``, ``W_it = Π_{k<=t} min(π(e_ik|s_ik) /
    μ(e_ik|s_ik), clip)``; ESS of the final ``W_iH``. Needs the ``*_embed_prob`` arrays."""
    return per_decision(data, embed_ratios(data, clip))


def snmips_estimate(data: LoggedEpisodes, clip: float | None = None) -> OPEEstimate:
    """Self-normalised per-decision MIPS: ``Σ_t Σ_i W_it γ**t r_it / Σ_i W_it``."""
    return weighted_per_decision(data, embed_ratios(data, clip))


def check_categories(categories: np.ndarray, n_actions: int) -> tuple[np.ndarray, int]:
    """``(categories (A,) int64, C)``: the category of each of ``n_actions`` actions, in
    ``[0, C)`` with ``C = max + 1``; raises ``ValueError`` on a wrong shape or a negative
    category (map items without one to a category of their own first)."""
    cats = np.asarray(categories)
    if cats.shape != (n_actions,) or not np.issubdtype(cats.dtype, np.integer):
        raise ValueError(
            f"categories must be an int array of shape ({n_actions},), got {cats.dtype} "
            f"{cats.shape}"
        )
    if n_actions and cats.min() < 0:
        raise ValueError("categories must be >= 0")
    return cats.astype(np.int64), int(cats.max()) + 1 if n_actions else 0


def category_mass(probs: np.ndarray, categories: np.ndarray, chunk_rows: int = 4_096) -> np.ndarray:
    """(M, C) float64 probability mass of each category: ``out[m, c] = Σ_{a: cat(a) = c}
    probs[m, a]``, from action distributions ``probs`` (M, A) float and ``categories`` (A,)
    int (in ``[0, C)``, C = max + 1); a scatter-add over categories, ``chunk_rows`` rows at a
    time (float64 working memory ``chunk_rows × A``)."""
    p = np.asarray(probs)
    cats, n_cats = check_categories(categories, p.shape[1])
    order = np.argsort(cats, kind="stable")
    present, starts = np.unique(cats[order], return_index=True)
    out = np.zeros((p.shape[0], n_cats), dtype=np.float64)
    for lo in range(0, p.shape[0], chunk_rows):
        block = np.asarray(p[lo : lo + chunk_rows], dtype=np.float64)[:, order]
        out[lo : lo + chunk_rows, present] = np.add.reduceat(block, starts, axis=1)
    return out


def logged_category_prob(
    probs: np.ndarray, categories: np.ndarray, actions: np.ndarray, chunk_rows: int = 4_096
) -> np.ndarray:
    """(M,) float64 ``p(e(a_m)|s_m) = Σ_{a: cat(a) = cat(a_m)} probs[m, a]``: the mass of the
    category of each row's logged action ``actions`` (M,) int under ``probs`` (M, A), with
    ``categories`` (A,) int as in :func:`category_mass` (chunked the same way)."""
    p = np.asarray(probs)
    cats, _ = check_categories(categories, p.shape[1])
    a = np.asarray(actions, dtype=np.int64)
    if a.shape != (p.shape[0],):
        raise ValueError(f"actions must have shape ({p.shape[0]},), got {a.shape}")
    out = np.zeros(p.shape[0], dtype=np.float64)
    for lo in range(0, p.shape[0], chunk_rows):
        mass = category_mass(p[lo : lo + chunk_rows], cats, chunk_rows)
        out[lo : lo + chunk_rows] = mass[np.arange(len(mass)), cats[a[lo : lo + chunk_rows]]]
    return out


@torch.no_grad()
def category_log_partition(
    agent: Agent,
    obs: Tensor,
    history: History | None,
    temperature: float,
    *,
    categories: Tensor,
    row_category: Tensor,
) -> tuple[Tensor, Tensor]:
    """``(lse (B,), lse_e (B,))`` float64: ``logsumexp_a f(s_b)_a / T`` over every action and
    over the actions of category ``row_category[b]`` only, for the agent's scores ``f`` of
    states ``obs`` (B, D); ``categories`` (A,) int64 and ``row_category`` (B,) int64 on the
    agent's device. So ``softmax(f / T)`` gives category ``e_b`` the mass ``exp(lse_e − lse)``.

    At catalogue scale (:meth:`Agent.factorised_scores`) one pass over the item chunks, in
    blocks of at most ``BLOCK_SCORES`` (2**19) scores (working memory about 13 bytes a score:
    a few MB, whatever A and B); otherwise from the (B, A) scores. A row whose category
    holds no item gets ``lse_e = -inf``."""
    factorised = agent.factorised_scores(obs, history)
    if factorised is None:
        scores = agent.scores(obs, history).double() / temperature
        same = categories[None, :] == row_category[:, None]
        return scores.logsumexp(1), scores.masked_fill(~same, float("-inf")).logsumexp(1)
    query, chunks = factorised
    query = query.double()
    total = torch.full((query.shape[0],), float("-inf"), dtype=torch.float64, device=query.device)
    inside = total.clone()
    for _, chunk_ids, weights, bias in chunks:
        ids = chunk_ids.to(query.device)
        w, b, own = weights.to(query).T, bias.to(query), categories[ids]
        step = max(1, BLOCK_SCORES // max(len(ids), 1))
        for lo in range(0, query.shape[0], step):
            rows = slice(lo, lo + step)
            scores = torch.addmm(b, query[rows], w) / temperature
            total[rows] = torch.logaddexp(total[rows], scores.logsumexp(1))
            other = own[None, :] != row_category[rows, None]
            part = scores.masked_fill_(other, float("-inf")).logsumexp(1)
            inside[rows] = torch.logaddexp(inside[rows], part)
    return total, inside
