"""Report sections about the learned model: explained sample recommendations (text, runner-ups,
attributions, attention) and the faithfulness of the attributions (deletion/insertion)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from noetik.agents.core.recommend import decision_history_len, sample_users
from noetik.agents.core.serving import best_actions
from noetik.agents.networks.encoders import History
from noetik.errors import ConfigError
from noetik.explain.attention import attention_maps, attention_rollout, attention_weights
from noetik.explain.attributions import attribute
from noetik.explain.explain_context import DecisionContext, decision_contexts
from noetik.explain.explanation import (
    Explanation,
    default_steps,
    default_target,
    explain_recommendation,
)
from noetik.explain.faithfulness import FaithfulnessConfig, faithfulness_curves, summarize
from noetik.reports import html as h
from noetik.reports.context import RunData, Unavailable
from noetik.reports.plots import attention_heatmap, attribution_bars, faithfulness_plot

__all__ = ["explanations_section", "faithfulness_section", "sample_decisions"]

#: Largest attributions drawn in each decision's bar chart.
TOP_ATTRIBUTIONS = 12
#: Logged decisions whose deletion/insertion curves are measured.
FAITHFULNESS_DECISIONS = 32
#: Attribution methods compared with the random ordering (attention rollout is added for
#: Transformer agents).
FAITHFULNESS_METHODS = ("integrated_gradients", "saliency", "input_x_gradient")


def _candidate_rows(e: Explanation) -> list[list[Any]]:
    rows = []
    for c in (e.recommended, *e.runner_ups):
        tags = ", ".join(str(t) for t in c.item.tags) or "-"
        rows.append(
            [
                c.rank,
                c.item.video_id,
                tags,
                c.item.duration_s,
                c.score,
                c.probability,
                c.margin,
                c.q_value,
            ]
        )
    return rows


def _attribution_chart(data: RunData, ctx: DecisionContext, e: Explanation) -> str:
    """Bar chart of the largest state-slice and history-position attributions."""
    agent = data.agent()
    history = ctx.history_tensors() if agent.config.encoder.uses_history else None
    action = torch.tensor([e.recommended.item.action], dtype=torch.int64)
    target: Any = e.target_kind
    a = attribute(
        agent, ctx.obs_tensor(), history, actions=action, target=target, n_steps=e.n_steps
    )
    labels = list(a.groups)
    values = [float(v[0]) for v in a.groups.values()]
    if a.history is not None:
        for p in np.flatnonzero(ctx.mask):
            past = ctx.past(int(p))
            labels.append(f"history -{past.turns_ago}: video {past.item.video_id}")
            values.append(float(a.history[0, p]))
    v = np.asarray(values, dtype=np.float64)
    top = np.argsort(-np.abs(v), kind="stable")[:TOP_ATTRIBUTIONS]
    title = (
        f"user {ctx.user_id}: largest attributions of the {e.target_kind} of video "
        f"{e.recommended.item.video_id}"
    )
    return h.img(attribution_bars([labels[i] for i in top], v[top], title), "attributions")


def _attention_chart(data: RunData, ctx: DecisionContext) -> str:
    """Heatmap of the query's attention per layer and head (plus rollout), if any."""
    agent = data.agent()
    if not agent.config.encoder.uses_history:
        return h.note("This agent reads no history (MLP encoder): no attention to show.")
    obs, history = ctx.obs_tensor(), ctx.history_tensors()
    maps = attention_maps(agent, obs, history)
    weights = attention_weights(agent, obs, history)
    if maps is None or weights is None:
        return h.note("This agent's encoder has no attention weights to show.")
    rollout = attention_rollout(weights, ctx.mask[None])[0]
    title = f"user {ctx.user_id}: attention of the decision over its history"
    return h.img(attention_heatmap(maps[0], rollout, title), "attention heatmap")


def _one_explanation(data: RunData, ctx: DecisionContext) -> str:
    e = explain_recommendation(data.agent(), ctx, k_runner_ups=3)
    header = [
        "rank",
        "video",
        "tags",
        "duration (s)",
        e.score_kind,
        "probability",
        "margin",
        "Q-value",
    ]
    return "\n".join(
        [
            f"<h3>{h.esc(f'User {e.user_id}: video {e.recommended.item.video_id}')}</h3>",
            f'<div class="explanation">{h.esc(e.text).replace(chr(10), "<br>")}</div>',
            h.table(header, _candidate_rows(e), caption="Recommendation and runner-ups"),
            '<div class="grid"><div>',
            _attribution_chart(data, ctx, e),
            "</div><div>",
            _attention_chart(data, ctx),
            "</div></div>",
        ]
    )


def explanations_section(data: RunData) -> str:
    """The top recommendation of ``users`` sample users, explained (see the module docs)."""
    inputs = data.inputs
    transitions = data.transitions()
    ids = sample_users(transitions, inputs.users, inputs.seed)
    k = decision_history_len(data.agent())  # the states noetik act and noetik explain score
    window = inputs.task.states.history_len
    contexts = decision_contexts(data.dataset(), transitions, ids, k, states_window=window)
    parts = [
        h.para(
            f"The current decision of {len(ids)} users drawn with seed {inputs.seed} "
            "(the state noetik act scores), explained with integrated gradients "
            "(32 steps)."
        )
    ]
    return "\n".join(parts + [_one_explanation(data, ctx) for ctx in contexts])


def sample_decisions(data: RunData, n: int) -> tuple[torch.Tensor, History | None, np.ndarray]:
    """``(obs (n, D) float32, history | None, rows (n,) int64)``: ``n`` logged decisions drawn
    with the report's seed, among those with at least 2 past interactions when the agent
    reads a history."""
    t = data.transitions()
    k = data.history_len()
    rng = np.random.default_rng([data.inputs.seed, 6])
    rows = np.sort(rng.choice(len(t), size=min(len(t), 8 * n), replace=False))
    history = None
    if k:
        arrays = t.history(rows, k)
        keep = arrays[3].sum(axis=1) >= 2
        rows = rows[keep][:n]
        history = History.from_numpy(t.history(rows, k))
    else:
        rows = rows[:n]
    if not len(rows):
        raise Unavailable("no logged decision with a history of at least 2 interactions")
    return torch.as_tensor(t.obs[rows], dtype=torch.float32), history, rows


def _methods(data: RunData, obs: torch.Tensor, history: History | None) -> list[str]:
    """The attribution methods compared (attention rollout for agents with attention)."""
    methods = list(FAITHFULNESS_METHODS)
    if (
        history is not None
        and attention_weights(data.agent(), obs[:1], _first(history)) is not None
    ):
        methods.append("attention_rollout")
    return methods


def _first(history: History) -> History:
    return History(history.items[:1], history.signals[:1], history.gap_s[:1], history.mask[:1])


def _gain_sentence(name: str, s: dict[str, float]) -> str:
    """How ``name`` compares with the random ordering, from its paired gains."""
    dl, dh = s.get("deletion_auc_gain_lo", np.nan), s.get("deletion_auc_gain_hi", np.nan)
    il, ih = s.get("insertion_auc_gain_lo", np.nan), s.get("insertion_auc_gain_hi", np.nan)
    clear = dl > 0 and il > 0
    verdict = (
        "beats the random ordering on both curves (both 95 % intervals of the gain exclude 0)"
        if clear
        else "does not clearly beat the random ordering on both curves"
    )
    return (
        f"{name}: deletion AUC {s['deletion_auc']:.3f} vs {s['random_deletion_auc']:.3f} "
        f"(gain {s['deletion_auc_gain']:.3f}, 95 % CI {dl:.3f} to {dh:.3f}); insertion AUC "
        f"{s['insertion_auc']:.3f} vs {s['random_insertion_auc']:.3f} (gain "
        f"{s['insertion_auc_gain']:.3f}, 95 % CI {il:.3f} to {ih:.3f}); {name} "
        f"{verdict}."
    )


_METRICS = ("deletion_auc", "insertion_auc", "comprehensiveness", "sufficiency")


def _ci(s: dict[str, float], key: str) -> str:
    return h.interval({"mean": s[key], "low": s[f"{key}_lo"], "high": s[f"{key}_hi"]})


def faithfulness_section(data: RunData) -> str:
    """Deletion/insertion curves of each attribution method against random orderings."""
    agent = data.agent()
    obs, history, _ = sample_decisions(data, FAITHFULNESS_DECISIONS)
    unit: Any = "history" if history is not None else "state"
    target: Any = default_target(agent)
    cfg = FaithfulnessConfig(seed=data.inputs.seed, n_bootstrap=500, n_steps=default_steps(agent))
    with torch.no_grad():
        actions = best_actions(agent, obs, history)
    kw: dict[str, Any] = {"unit": unit, "config": cfg, "actions": actions}
    random = faithfulness_curves(agent, obs, history, "random", target, **kw)
    curves, rows, sentences = {}, [], []
    for method in _methods(data, obs, history):
        try:
            c = faithfulness_curves(agent, obs, history, method, target, **kw)
        except ConfigError as exc:
            sentences.append(f"{method}: not available ({exc})")
            continue
        s = summarize(c, cfg, random)
        curves[method] = (c.deletion.mean(0), c.insertion.mean(0))
        rows.append(
            [
                method,
                _ci(s, "deletion_auc"),
                _ci(s, "insertion_auc"),
                _ci(s, "comprehensiveness"),
                _ci(s, "sufficiency"),
                _ci(s, "deletion_auc_gain"),
                _ci(s, "insertion_auc_gain"),
            ]
        )
        sentences.append(_gain_sentence(method, s))
    curves["random"] = (random.deletion.mean(0), random.insertion.mean(0))
    if rows:
        rows.append(["random", *(_ci(s, f"random_{m}") for m in _METRICS), "-", "-"])
    header = [
        "method",
        "deletion AUC (lower better)",
        "insertion AUC (higher better)",
        "comprehensiveness",
        "sufficiency",
        "deletion gain vs random",
        "insertion gain vs random",
    ]
    intro = (
        f"{len(obs)} decisions of the standard log (seed {data.inputs.seed}), with at least"
        f" 2 past interactions when the agent reads a history; target: the {target} of "
        f"the agent's choice; units: {unit} "
        f"{'positions (removed = masked out)' if unit == 'history' else 'slices'}; random: "
        f"{cfg.n_random} seeded orderings; integrated gradients over {cfg.n_steps} steps. "
        "AUCs are normalised by the full-minus-empty target span; intervals are 95 % "
        "bootstrap intervals over decisions."
    )
    return "\n".join(
        [
            h.para(intro),
            h.table(header, rows),
            "<ul>" + "".join(f"<li>{h.esc(s)}</li>" for s in sentences) + "</ul>",
            h.img(faithfulness_plot(curves, unit), "deletion and insertion curves"),
        ]
    )
