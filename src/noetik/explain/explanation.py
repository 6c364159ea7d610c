"""One recommendation explained: what was chosen, how sure the model is, and what drove it.

:func:`explain_recommendation` scores every candidate for one :class:`DecisionContext`, takes
the best (the recommendation, as ``noetik act`` ranks them) and its runner-ups, attributes the
recommendation's target to the inputs (:func:`noetik.explain.attribute`, integrated
gradients by default) and names the largest contributions with the data behind them:

* **history items**: per-position attributions over the last K interactions (Transformer
  agents), each with its video, tags, duration, the user's feedback and how long ago it was;
* **state groups**: the named slices of the 128-d state (:mod:`noetik.data.state_layout`):
  user traits (``user.*``), the decision's context (``ctx.*``) and history summaries
  (``hist.*``), each with its signed attribution and its value for this user.

Shares are attributions divided by the total absolute attribution (every state dimension plus
every history position), so the absolute shares of all drivers sum to at most 1. The target is
the recommendation's log-probability under ``softmax(scores)`` for policy agents (IQL, BC, PPO,
A2C: the quantity that ranks the items and the confidence that is reported) and its Q-value for
value-based agents (``capabilities.q_scores``: their scores are Q values; DQN, CQL). The
sentences (``Explanation.text``) are composed from these numbers by
:func:`noetik.explain.explain_text.compose_text`.

>>> agent, contexts = run_contexts(Path("runs/iql"), users=[3])
>>> print(explain_recommendation(agent, contexts[0]).text)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from noetik.agents.core.base import Agent
from noetik.agents.networks.encoders import History
from noetik.data.state_layout import STATE_LAYOUT, STATE_SLICES
from noetik.errors import ConfigError
from noetik.explain.attention import attention_agreement, attention_rollout, attention_weights
from noetik.explain.attributions import Method, Target, attribute
from noetik.explain.explain_context import DecisionContext, ItemFacts, PastInteraction
from noetik.explain.explain_text import compose_text, describe_group

__all__ = [
    "Candidate",
    "Explanation",
    "HistoryDriver",
    "StateDriver",
    "default_steps",
    "explain_recommendation",
]


@dataclass(frozen=True)
class Candidate:
    """One scored candidate: the recommendation (rank 1) or a runner-up."""

    rank: int
    """1 for the recommendation, 2 for the best runner-up..."""
    item: ItemFacts
    """The video."""
    score: float
    """The agent's score (policy logit or Q-value, see ``Explanation.score_kind``)."""
    probability: float
    """``softmax(scores)`` over all candidates at this item."""
    margin: float
    """Recommendation's score minus this one (0 for the recommendation)."""
    q_value: float | None = None
    """Q-value of agents that have a critic besides their policy (IQL); None otherwise."""
    q_margin: float | None = None
    """Recommendation's Q-value minus this one (None without ``q_value``)."""


@dataclass(frozen=True)
class HistoryDriver:
    """A past interaction with its contribution to the recommendation."""

    past: PastInteraction
    """The interaction: video, feedback, when."""
    attribution: float
    """Attribution of the history position (item embedding, signals and gap summed)."""
    share: float
    """``attribution / total |attribution|`` (signed)."""
    attention: float | None = None
    """Attention rollout weight of the decision on this position (Transformer agents)."""


@dataclass(frozen=True)
class StateDriver:
    """A named slice of the state with its contribution to the recommendation."""

    group: str
    """Slice name, e.g. ``user.active_degree`` or ``ctx.hour``."""
    kind: str
    """``user`` (traits), ``context`` or ``history`` (summaries of past interactions)."""
    attribution: float
    """Sum of the attributions of the slice's dimensions."""
    share: float
    """``attribution / total |attribution|`` (signed)."""
    feature: str
    """The slice's dimension with the largest absolute attribution."""
    feature_value: float
    """That dimension's value in the state."""
    label: str
    """What the slice is, in words (``the hour``)."""
    value_text: str
    """Its value for this decision, in words (``21 h``)."""


@dataclass(frozen=True)
class Explanation:
    """One recommendation explained (see the module docs); ``text`` says it in sentences."""

    user_id: int
    """KuaiRand user id."""
    recommended: Candidate
    """The recommended video (rank 1)."""
    runner_ups: tuple[Candidate, ...]
    """The next best candidates, best first."""
    n_candidates: int
    """A, the number of candidates scored."""
    score_kind: str
    """``logit`` (policy agents) or ``Q-value`` (value-based agents)."""
    history: tuple[HistoryDriver, ...]
    """History positions with the largest absolute attribution, largest first."""
    state: tuple[StateDriver, ...]
    """State slices with the largest absolute attribution, largest first."""
    method: str
    """Attribution method (``integrated_gradients``, ``saliency``, ``input_x_gradient``)."""
    target_kind: str
    """What was attributed: ``logp`` or ``q`` of the recommendation."""
    n_steps: int
    """Integrated-gradients steps."""
    target: float
    """Target value at the input."""
    baseline_target: float
    """Target value at the attribution baseline."""
    delta: float | None
    """IG convergence delta (sum of attributions minus the target change); None otherwise."""
    total_attribution: float
    """Sum of absolute attributions, the denominator of every share."""
    attention_agreement: float | None
    """Spearman correlation of attention rollout and absolute history attributions."""
    text: str = ""
    """The explanation in sentences, composed from the numbers above."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples as lists); :meth:`from_dict` inverts it."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Explanation:
        """The explanation of a :meth:`to_dict` dict (e.g. read back from JSON)."""

        def item(d: Mapping[str, Any]) -> ItemFacts:
            return ItemFacts(**{**d, "tags": tuple(d["tags"])})

        def candidate(d: Mapping[str, Any]) -> Candidate:
            return Candidate(**{**d, "item": item(d["item"])})

        def driver(d: Mapping[str, Any]) -> HistoryDriver:
            past = PastInteraction(**{**d["past"], "item": item(d["past"]["item"])})
            return HistoryDriver(**{**d, "past": past})

        return cls(
            **{
                **data,
                "recommended": candidate(data["recommended"]),
                "runner_ups": tuple(candidate(c) for c in data["runner_ups"]),
                "history": tuple(driver(h) for h in data["history"]),
                "state": tuple(StateDriver(**s) for s in data["state"]),
            }
        )


def _candidates(
    ctx: DecisionContext, scores: torch.Tensor, top: torch.Tensor, q: torch.Tensor | None
) -> tuple[Candidate, ...]:
    """The candidates ``top`` (n,) int64 (the best-scored actions, best first) with their
    ``scores`` (A,) and ``q`` (n,) their Q values when given."""
    log_z = torch.logsumexp(scores.double(), dim=0)
    actions = top.tolist()
    best = actions[0]
    out = []
    for rank, a in enumerate(actions, start=1):
        qv = None if q is None else float(q[rank - 1])
        qm = None if q is None else float(q[0] - q[rank - 1])
        out.append(
            Candidate(
                rank,
                ctx.catalogue.facts(a),
                float(scores[a]),
                float(torch.exp(scores[a].double() - log_z)),
                float(scores[best] - scores[a]),
                qv,
                qm,
            )
        )
    return tuple(out)


def _candidate_q(
    agent: Agent, obs: torch.Tensor, history: History | None, actions: torch.Tensor
) -> torch.Tensor:
    """(n,) float32 Q values of the decision ``obs`` (1, D) / ``history`` for ``actions``
    (n,) int64 only (not the whole catalogue)."""
    n = len(actions)
    if history is not None:
        history = History(*(t.expand(n, *t.shape[1:]) for t in vars(history).values()))
    return agent.q_values(obs.expand(n, -1), history, actions).float()


def _history_drivers(
    ctx: DecisionContext, attr: np.ndarray, total: float, attn: np.ndarray | None, n: int
) -> tuple[HistoryDriver, ...]:
    """The ``n`` valid positions of largest |attribution| ``attr`` (K,), nonzero ones only."""
    valid = np.flatnonzero(ctx.mask & (attr != 0))
    order = valid[np.argsort(-np.abs(attr[valid]), kind="stable")][:n]
    return tuple(
        HistoryDriver(
            ctx.past(int(p)),
            float(attr[p]),
            float(attr[p]) / total,
            None if attn is None else float(attn[p]),
        )
        for p in order
    )


def _state_drivers(
    ctx: DecisionContext, state: np.ndarray, total: float, n: int
) -> tuple[StateDriver, ...]:
    """The ``n`` state slices of largest |summed attribution| (``state`` (128,)), nonzero."""
    sums = np.array([state[STATE_SLICES[s.name]].sum(dtype=np.float64) for s in STATE_LAYOUT])
    order = [i for i in np.argsort(-np.abs(sums), kind="stable") if sums[i] != 0][:n]
    out = []
    for i in order:
        sl = STATE_LAYOUT[i]
        dims = state[STATE_SLICES[sl.name]]
        j = int(np.argmax(np.abs(dims)))
        feature = sl.feature_names[j]
        label, value = describe_group(ctx, sl.name, feature)
        kind = {"user": "user", "ctx": "context"}.get(sl.name.split(".")[0], "history")
        out.append(
            StateDriver(
                sl.name,
                kind,
                float(sums[i]),
                float(sums[i]) / total,
                feature,
                float(ctx.obs[STATE_SLICES[sl.name].start + j]),
                label,
                value,
            )
        )
    return tuple(out)


def _agreement(
    agent: Agent, obs: torch.Tensor, ctx: DecisionContext, history_attr: np.ndarray | None
) -> tuple[np.ndarray | None, float | None]:
    """``(attention rollout (K,), Spearman agreement with |history attribution|)`` or Nones."""
    if history_attr is None or not agent.config.encoder.uses_history:
        return None, None
    weights = attention_weights(agent, obs, ctx.history_tensors(obs.device))
    if weights is None:
        return None, None
    rollout = attention_rollout(weights, ctx.mask[None]).astype(np.float64)[0]
    rho = attention_agreement(rollout[None], history_attr[None], ctx.mask[None])
    value = float(np.asarray(rho)[0])
    return rollout, None if np.isnan(value) else value


def score_kind(agent: Agent) -> str:
    """What ``agent.scores`` are: ``Q-value`` (``capabilities.q_scores``) or ``logit``."""
    return "Q-value" if agent.capabilities.q_scores else "logit"


def default_target(agent: Agent) -> Target:
    """``q`` for agents whose scores are Q values (``capabilities.q_scores``), else ``logp``
    (the policy's log-probability, what ranks the items)."""
    return "q" if agent.capabilities.q_scores else "logp"


def default_steps(agent: Agent) -> int:
    """Integration steps of an explanation's integrated gradients: 32, and 8 at catalogue
    scale, where the log-probability target of every step is a pass over all the items.

    Gauss-Legendre nodes converge fast on these smooth targets. On the real-size 1K run
    (4.37M videos, ``docs/scale.md``), five decisions: the completeness error was at most
    0.38 % of the explained change with 32 steps (1.44 s per explanation), 0.41 % with 16
    (0.89 s) and 0.87 % with 8 (0.73 s); ``--steps`` / ``n_steps`` chooses another."""
    return 8 if agent.config.catalogue.applies(agent.spec.n_actions) else 32


def explain_recommendation(
    agent: Agent,
    context: DecisionContext,
    *,
    k_runner_ups: int = 3,
    method: Method = "integrated_gradients",
    n_steps: int | None = None,
    target: Target | None = None,
    n_history: int = 3,
    n_state: int = 3,
) -> Explanation:
    """Explain ``agent``'s recommendation (its best-scored item) for ``context``.

    ``k_runner_ups`` next-best items are reported with their margins; ``method`` and
    ``n_steps`` (None: :func:`default_steps`) choose the attribution
    (:func:`noetik.explain.attribute`);
    ``target`` defaults to :func:`default_target`; the ``n_history`` history positions and
    ``n_state`` state slices with the largest absolute attribution are named.
    """
    n_steps = default_steps(agent) if n_steps is None else n_steps
    if k_runner_ups < 0 or n_steps < 1 or n_history < 0 or n_state < 0:
        raise ConfigError("k_runner_ups, n_history and n_state must be >= 0 and n_steps >= 1")
    params = next(iter(agent.parameters()), None)
    if params is None:
        raise ConfigError(f"{type(agent).__name__} has no network to explain")
    obs = context.obs_tensor(params.device)
    history = context.history_tensors(params.device) if agent.config.encoder.uses_history else None
    with torch.no_grad():
        scores = agent.scores(obs, history)[0].float()
        top = torch.topk(scores, min(k_runner_ups + 1, scores.shape[0])).indices
        q = _candidate_q(agent, obs, history, top) if agent.capabilities.q_values else None
    cands = _candidates(context, scores, top, q)
    kind = target or default_target(agent)
    action = torch.tensor([cands[0].item.action], dtype=torch.int64, device=params.device)
    attr = attribute(
        agent, obs, history, actions=action, method=method, target=kind, n_steps=n_steps
    )
    state = np.asarray(attr.state[0], dtype=np.float64)
    hist = None if attr.history is None else np.asarray(attr.history[0], dtype=np.float64)
    hist_valid = np.zeros(0) if hist is None else hist[context.mask]
    total = float(np.abs(state).sum() + np.abs(hist_valid).sum())
    denom = total if total > 0 else 1.0
    rollout, agreement = _agreement(agent, obs, context, hist)
    history_drivers = (
        () if hist is None else _history_drivers(context, hist, denom, rollout, n_history)
    )
    explanation = Explanation(
        user_id=context.user_id,
        recommended=cands[0],
        runner_ups=cands[1:],
        n_candidates=int(scores.shape[0]),
        score_kind=score_kind(agent),
        history=history_drivers,
        state=_state_drivers(context, state, denom, n_state),
        method=attr.method,
        target_kind=attr.target_kind,
        n_steps=n_steps,
        target=float(attr.target[0]),
        baseline_target=float(attr.baseline_target[0]),
        delta=None if attr.delta is None else float(attr.delta[0]),
        total_attribution=total,
        attention_agreement=agreement,
    )
    return dataclasses.replace(explanation, text=compose_text(explanation))
