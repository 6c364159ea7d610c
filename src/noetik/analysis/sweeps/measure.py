"""What a sweep measures on each trained agent: engagement and interpretability.

* engagement: the mean return of one KuaiRand-v0 session for each of ``users`` simulated users
  of the sweep's simulator, with a 95 % interval;
* sparsity: the mean entropy (nats) of the policy's query attention over the valid history
  positions, on logged decisions of the test split (uniform over n positions is log n);
* attribution concentration: the share of the |integrated-gradients| attribution of the
  policy's log-probability of its chosen item that falls on the top 3 history positions, and
  the Spearman agreement of attention rollout and that attribution (:mod:`noetik.explain`);
* faithfulness: deletion and insertion AUC of IG over the history positions, and of a random
  order (:mod:`noetik.explain.faithfulness`; lower deletion / higher insertion AUC = more
  faithful).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from noetik.agents.core.base import Agent
from noetik.agents.core.batches import DeviceReplay
from noetik.agents.networks.encoders import History
from noetik.agents.regularisers.terms import mean_attention_entropy
from noetik.analysis.sweeps.config import MeasureConfig
from noetik.data.dataset import load_kuairand
from noetik.data.transitions import build_transitions
from noetik.evaluation.online.sessions import evaluate_online
from noetik.explain.attention import attention_agreement, attention_rollout, attention_weights
from noetik.explain.attributions import attribute
from noetik.explain.faithfulness import FaithfulnessConfig, faithfulness

__all__ = ["ENV_ID", "FAITHFULNESS_KEYS", "decisions", "measure_agent", "top_share"]

#: The environment in which engagement is measured.
ENV_ID = "noetik/KuaiRand-v0"
#: The faithfulness metrics of a trial (IG and the random order's).
FAITHFULNESS_KEYS = ("deletion_auc", "random_deletion_auc", "insertion_auc", "random_insertion_auc")


@functools.lru_cache(maxsize=4)
def decisions(data: str, n: int, history_len: int, seed: int) -> tuple[torch.Tensor, History]:
    """``n`` logged decisions of the test split of ``data`` (a sample drawn from ``seed``):
    their states (n, D) and histories of ``history_len`` positions (cached per process)."""
    test = build_transitions(load_kuairand(data), split="test")
    rows = np.random.default_rng(seed).choice(len(test), size=min(n, len(test)), replace=False)
    replay = DeviceReplay(test, 1, history_len=history_len, device="cpu")
    batch = replay.batch(torch.as_tensor(rows))
    assert batch.history is not None
    return batch.obs, batch.history


def top_share(attr: np.ndarray, mask: np.ndarray, k: int = 3) -> float:
    """Mean over decisions (with attribution) of the share of |``attr``| (B, K) on the top
    ``k`` valid positions (``mask`` (B, K) bool)."""
    a = np.where(mask, np.abs(attr), 0.0)
    total = a.sum(1)
    top = -np.sort(-a, axis=1)[:, :k].sum(1)
    ok = total > 0
    return float((top[ok] / total[ok]).mean())


def measure_agent(agent: Agent, simulator: str, data: str, config: MeasureConfig) -> dict[str, Any]:
    """Every metric of the module docs for ``agent`` (the return is ``{"mean", "low",
    "high"}``, the others floats; faithfulness None when ``config.faithfulness`` is off)."""
    agent = agent.eval()
    online = evaluate_online(agent, ENV_ID, config.users, {"sim_dir": simulator}, config.seed)
    k = agent.config.encoder.history_len
    obs, history = decisions(data, config.decisions, k, config.seed)
    metrics: dict[str, Any] = {
        "return": online["return"],
        "is_click_rate": online.get("is_click_rate"),
        **_history_metrics(agent, obs, history, config),
    }
    faithful: dict[str, float | None] = dict.fromkeys(FAITHFULNESS_KEYS)
    if config.faithfulness and metrics["ig_top3_share"] is not None:
        out = faithfulness(
            agent,
            obs,
            history,
            "integrated_gradients",
            "logp",
            unit="history",
            config=FaithfulnessConfig(n_bootstrap=config.faithfulness_bootstrap),
        )
        faithful = {name: float(out[name]) for name in FAITHFULNESS_KEYS}
    return {k: _number(v) for k, v in {**metrics, **faithful}.items()}


def _number(value: Any) -> Any:
    """``value``, with a NaN (a measure undefined for this agent) as None: JSON has no NaN."""
    return None if isinstance(value, float) and not np.isfinite(value) else value


def _history_metrics(
    agent: Agent, obs: torch.Tensor, history: History, config: MeasureConfig
) -> dict[str, float | None]:
    """Attention entropy, IG top-3 share, attention-IG agreement and IG's completeness gap
    over the history positions (None for an agent that does not read the history)."""
    keys = ("attention_entropy", "ig_top3_share", "agreement_spearman", "ig_delta_abs_mean")
    weights = attention_weights(agent, obs, history)
    if weights is None:
        return dict.fromkeys(keys)
    entropy = mean_attention_entropy(agent.encoder, obs, history)  # type: ignore[arg-type]
    ig = attribute(
        agent, obs, history, method="integrated_gradients", target="logp", n_steps=config.ig_steps
    )
    if ig.history is None or ig.history_mask is None:
        return {**dict.fromkeys(keys), "attention_entropy": float(entropy)}
    rollout = attention_rollout(weights, ig.history_mask)
    rho = attention_agreement(rollout, ig.history, ig.history_mask)
    return {
        "attention_entropy": float(entropy),
        "ig_top3_share": top_share(ig.history, ig.history_mask),
        "agreement_spearman": float(np.nanmean(rho)),
        "ig_delta_abs_mean": None if ig.delta is None else float(np.abs(ig.delta).mean()),
    }
