"""On-policy machinery shared by PPO and A2C: rollouts of a ``VectorEnv``, GAE, n-step returns.

* :class:`Rollout` — ``n_steps`` x ``num_envs`` decisions as device tensors (T, N, ...).
* :class:`EnvRollouts` — the :class:`~noetik.agents.core.base.BatchSource` of online agents: each
  ``sample()`` steps the environment ``n_steps`` times with the agent's current policy.
* :func:`gae` — generalised advantage estimation per environment (Schulman et al. 2016).
* :func:`nstep_returns` — n-step bootstrapped returns per environment (Mnih et al. 2016).
* :class:`ActorCriticAgent` / :class:`ActorCriticConfig` — encoder + ``ItemScorer`` policy
  head + value head, the common part of :mod:`~noetik.agents.algorithms.ppo` and
  :mod:`~noetik.agents.algorithms.a2c`.

Next-step autoreset (the Noetik vector envs, Gymnasium's ``SyncVectorEnv`` /
``AsyncVectorEnv`` in their default ``AutoresetMode.NEXT_STEP``): the call that receives
action ``a_t`` restarts the rows whose episode ended (terminated or truncated) on the previous
call; there ``a_t`` was ignored and ``obs_t`` is the *final* observation of the old episode.
Such rows are found from the previous call's ``terminated | truncated`` (Gymnasium's own
vector envs do not report ``info["autoreset"]``). They are not transitions: ``valid`` is
False, their reward is 0, they get no advantage and no loss. Their stored value
``V(obs_t)`` is exactly the value of the final observation, which a truncated step ``t - 1``
bootstraps from. Nothing is bootstrapped across a termination or carried across an episode
boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from noetik.agents.core.base import Agent, AgentConfig, Capabilities, ProblemSpec, item_scorer
from noetik.agents.fast.grad_clip import clip_grad_norm
from noetik.agents.fast.threads import auto_threads, with_intra_op_threads
from noetik.agents.networks.catalogue import CatalogueScorer
from noetik.agents.networks.encoders import History, make_encoder
from noetik.agents.networks.heads import ItemScorer
from noetik.agents.onpolicy.collect import Collector
from noetik.agents.onpolicy.history import HistoryView
from noetik.errors import ConfigError

__all__ = [
    "ActorCriticAgent",
    "ActorCriticConfig",
    "EnvRollouts",
    "Rollout",
    "entropy_and_logp",
    "gae",
    "nstep_returns",
    "sample_actions",
    "take_history",
    "valid_rows",
]


@dataclass(frozen=True)
class Rollout:
    """T = ``n_steps`` decisions of N environments (device tensors, time first).

    :class:`EnvRollouts` builds them in inference mode: use them as inputs freely, but clone
    a tensor before changing it in place outside inference mode."""

    obs: Tensor
    """(T, N, D) float32 observations the actions were chosen on."""
    action: Tensor
    """(T, N) int64 sampled actions."""
    logp: Tensor
    """(T, N) float32 log-probability of each action under the rollout policy."""
    value: Tensor
    """(T, N) float32 V(obs) under the rollout critic."""
    reward: Tensor
    """(T, N) float32 rewards (0 on autoreset rows)."""
    terminated: Tensor
    """(T, N) bool: the episode ended at this step (no bootstrap)."""
    truncated: Tensor
    """(T, N) bool: the episode was cut at this step (bootstrap from the final observation)."""
    valid: Tensor
    """(T, N) bool: a real transition (False on rows restarted by autoreset)."""
    last_value: Tensor
    """(N,) float32 V(obs_T) of the observation after the last step."""
    history: History | None = None
    """(T, N, K) history tensors when the encoder reads history, else None."""
    episode_return: Tensor | None = None
    """0-d float32 mean undiscounted return of the episodes that ended in this rollout."""
    episodes: Tensor | None = None
    """0-d float32 number of episodes that ended in this rollout."""

    def next_value(self) -> Tensor:
        """(T, N) float32 V(obs_{t+1}): the value of the observation each step returned."""
        return torch.cat([self.value[1:], self.last_value[None]], dim=0)


@torch.no_grad()
def gae(r: Rollout, gamma: float, lam: float) -> tuple[Tensor, Tensor]:
    """``(advantages, returns)`` (T, N) float32 by GAE(lambda), per environment.

    ``delta_t = r_t + gamma (1 - term_t) V(s_{t+1}) - V(s_t)`` and
    ``A_t = delta_t + gamma lambda (1 - term_t)(1 - trunc_t) A_{t+1}``; ``V(s_{t+1})`` after a
    truncation is the value of the final observation. Invalid rows get 0; returns = A + V.
    """
    nxt = r.next_value()
    alive = (~r.terminated).float()
    cont = (~(r.terminated | r.truncated)).float()
    delta = (r.reward + gamma * alive * nxt - r.value).cpu().numpy()
    decay = (gamma * lam * cont).cpu().numpy()  # the backward recursion runs on the host:
    adv_np = np.zeros_like(delta)  # T small numpy steps, not T device launches
    running = np.zeros_like(delta[0])
    for t in range(len(delta) - 1, -1, -1):
        running = delta[t] + decay[t] * running
        adv_np[t] = running
    adv = torch.from_numpy(adv_np).to(r.value.device) * r.valid
    return adv, (adv + r.value) * r.valid


@torch.no_grad()
def nstep_returns(r: Rollout, gamma: float, n: int) -> Tensor:
    """(T, N) float32 ``R_t = sum_{k<m} gamma^k r_{t+k} + gamma^m V(s_{t+m})``, per env.

    ``m <= n`` stops early at the end of the episode (termination: no bootstrap; truncation:
    the value of the final observation) or of the rollout (the value of ``obs_T``). Every
    reward is discounted exactly once. Invalid rows get 0.
    """
    steps = r.reward.shape[0]
    nxt, term = r.next_value(), r.terminated
    ends = r.terminated | r.truncated
    out = torch.zeros_like(r.value)
    active = r.valid.clone()
    discount = 1.0
    for k in range(min(n, steps)):
        m = steps - k  # rows t < m can look k steps ahead
        a = active[:m]
        out[:m] += discount * a * r.reward[k:]
        stop = (
            ends[k:]
            | (k == n - 1)
            | (torch.arange(k, steps, device=a.device) == steps - 1)[:, None]
        )
        boot = a & stop & ~term[k:]
        out[:m] += discount * gamma * boot * nxt[k:]
        active[:m] = a & ~stop
        discount *= gamma
    return out


class EnvRollouts:
    """Steps a next-step-autoreset ``VectorEnv`` with ``agent``'s policy, ``n_steps`` at a time
    (:class:`~noetik.agents.onpolicy.collect.Collector`: host observation buffer, raw step
    arrays, episode bookkeeping afterwards).

    Actions are softmax samples drawn with a seeded generator (checkpointed); the env is reset
    with the agent's seed when the source is built (a resumed run restarts its episodes).
    """

    def __init__(self, agent: ActorCriticAgent, env: Any, n_steps: int, seed: int) -> None:
        self.agent, self.env, self.n_steps = agent, env, n_steps
        self.device = agent.device
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        enc = agent.config.encoder
        self.view = (
            HistoryView.for_env(env, agent.spec.n_actions, enc.history_len)
            if enc.uses_history
            else None
        )
        """The agent's reading of the env's history window (None: the encoder reads none)."""
        self.collector = Collector(env, seed=seed, next_step=True)
        self.num_envs = self.collector.num_envs
        self.env_steps = 0
        """Environment steps taken so far by this source (users x steps; the trainer's
        progress shows it next to the rollout iterations)."""

    def state_tensors(self) -> dict[str, Tensor]:
        """The action sampler's RNG state."""
        return {"generator": self.generator.get_state()}

    def load_state_tensors(self, tensors: dict[str, Tensor]) -> None:
        """Restore :meth:`state_tensors`."""
        self.generator.set_state(tensors["generator"].cpu())

    def _history(self, info: dict[str, Any]) -> History | None:
        return None if self.view is None else self.view(info, self.device)

    @property
    def intra_op_threads(self) -> int:
        """The agent's thread count (:mod:`noetik.agents.fast.threads`)."""
        return self.agent.intra_op_threads

    @with_intra_op_threads
    @torch.inference_mode()
    def sample(self) -> Rollout:
        """One rollout of ``n_steps`` calls to ``env.step`` (episode bookkeeping afterwards,
        in :func:`~noetik.agents.onpolicy.episode_log.episode_log`)."""
        uniform = torch.rand(
            self.n_steps, self.num_envs, 1, generator=self.generator, device=self.device
        )
        draws = iter(uniform)

        def act(obs: np.ndarray, info: dict[str, Any]) -> tuple[np.ndarray, tuple[Any, ...]]:
            hist = self._history(info)
            logits, value = self.agent.policy_value(self._tensor(obs), hist)
            action, logp = sample_actions(logits, next(draws))
            return action.cpu().numpy(), (action, logp, value, hist)

        got = self.collector.run(act, self.n_steps, keep_obs=True, keep_steps=True, episodes=True)
        self.env_steps += self.n_steps * self.num_envs
        c = self.collector
        last_value = self.agent.value(
            self._tensor(np.asarray(c.obs, dtype=np.float32)), self._history(c.info)
        )
        log, obs_buf = got.episodes, got.obs
        assert log is not None and obs_buf is not None  # keep_obs and episodes were asked
        cols = list(zip(*got.extras, strict=True))
        action_t, logp_t, value_t = (torch.stack(list(x)) for x in cols[:3])
        dev = self.device
        return Rollout(
            obs=self._tensor(obs_buf),
            action=action_t,
            logp=logp_t,
            value=value_t,
            reward=torch.from_numpy(log.reward).to(dev),
            terminated=torch.from_numpy(log.terminated).to(dev),
            truncated=torch.from_numpy(log.truncated).to(dev),
            valid=torch.from_numpy(log.valid).to(dev),
            last_value=last_value,
            history=_stack_history(list(cols[3])),
            episode_return=torch.tensor(
                float(log.returns.mean()) if len(log.returns) else 0.0, device=dev
            ),
            episodes=torch.tensor(float(len(log.returns)), device=dev),
        )

    def _tensor(self, array: np.ndarray) -> Tensor:
        """``array`` as a float32 tensor on the device (no copy on the CPU)."""
        return torch.from_numpy(array).to(self.device)


def sample_actions(logits: Tensor, uniform: Tensor) -> tuple[Tensor, Tensor]:
    """``(actions (B,) int64, log pi(actions) (B,))``: softmax samples by inverse CDF.

    ``uniform`` (B, 1) float32 in [0, 1) (one draw per row, e.g. from a seeded generator):
    the action is the first whose cumulative probability exceeds ``u * total``, so an action
    of probability 0 is never drawn. One uniform per row instead of ``torch.multinomial``'s
    per-call set-up over all A actions.
    """
    logp_all = torch.log_softmax(logits, dim=-1)
    cdf = logp_all.exp().cumsum(-1)
    u = (uniform * cdf[:, -1:]).contiguous()
    action = torch.searchsorted(cdf, u, right=True).squeeze(1).clamp_max(logits.shape[-1] - 1)
    return action, logp_all.gather(1, action[:, None]).squeeze(1)


def _stack_history(hs: list[History | None]) -> History | None:
    if not hs or hs[0] is None:
        return None
    parts = [h for h in hs if h is not None]
    return History(
        *(
            torch.stack(list(x))
            for x in zip(*((h.items, h.signals, h.gap_s, h.mask) for h in parts), strict=True)
        )
    )


def take_history(h: History | None, rows: Tensor) -> History | None:
    """Rows (M,) int64 of a (T, N, ...) history flattened to (T * N, ...)."""
    if h is None:
        return None
    return History(*(x.flatten(0, 1)[rows] for x in (h.items, h.signals, h.gap_s, h.mask)))


@dataclass(frozen=True)
class ActorCriticConfig(AgentConfig):
    """Fields shared by the on-policy actor-critic agents (PPO, A2C)."""

    n_steps: int = 128
    """Environment steps per environment in one rollout (one trainer step)."""
    ent_coef: float = 0.01
    """Weight of the entropy bonus."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip (0: no clipping)."""
    shared_encoder: bool = False
    """One encoder for policy and value (True), or a separate critic encoder (CleanRL)."""
    anneal_updates: int = 0
    """Linearly anneal the learning rate to 0 over this many updates (0: constant)."""
    threads: int = 0
    """Torch intra-op threads during rollouts and updates: 0 picks one thread for small CPU
    networks and keeps torch's setting otherwise (:mod:`noetik.agents.fast.threads`), -1 keeps
    torch's setting, n > 0 uses n threads. Torch's setting is restored after each call."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.n_steps < 1 or self.anneal_updates < 0 or self.max_grad_norm < 0:
            raise ConfigError("n_steps must be >= 1, anneal_updates and max_grad_norm >= 0")
        if self.threads < -1:
            raise ConfigError(f"threads must be >= -1, got {self.threads}")


class ActorCriticAgent(Agent):
    """Encoder -> ``ItemScorer`` policy logits (B, A); (critic) encoder -> value (B,)."""

    config: ActorCriticConfig
    capabilities = Capabilities(policy_logits=True, online=True, learned=True)
    n_updates: Tensor
    """0-d int64 buffer: updates done (drives learning-rate annealing; checkpointed)."""

    def __init__(self, config: ActorCriticConfig, spec: ProblemSpec) -> None:
        super().__init__(config, spec)
        self.encoder = make_encoder(config.encoder, spec, config.catalogue)
        self.head = item_scorer(self.encoder.out_dim, config, spec)
        _small_policy_init(self.head)
        self.critic_encoder = (
            None if config.shared_encoder else make_encoder(config.encoder, spec, config.catalogue)
        )
        self.value_head = nn.Linear(self.encoder.out_dim, 1)
        self.register_buffer("n_updates", torch.zeros((), dtype=torch.int64))
        self.add_optimizer("main", self.make_adam(self.parameters(), lr=config.lr, eps=1e-5))
        auto = auto_threads(self, self.update_rows(), self.device)
        self.intra_op_threads = auto if config.threads == 0 else config.threads
        """Torch threads of :meth:`update` and of rollouts (<= 0: torch's setting)."""

    def update_rows(self) -> int:
        """Rows of one gradient step's batch (drives the automatic thread count)."""
        return self.config.batch_size

    def scores(self, obs: Tensor, history: History | None = None) -> Tensor:
        """(B, A) float32 policy logits."""
        out: Tensor = self.head(self.encoder(obs, history))
        return out

    def value(self, obs: Tensor, history: History | None = None) -> Tensor:
        """(B,) float32 state values."""
        enc = self.critic_encoder if self.critic_encoder is not None else self.encoder
        out: Tensor = self.value_head(enc(obs, history)).squeeze(-1)
        return out

    def policy_value(self, obs: Tensor, history: History | None) -> tuple[Tensor, Tensor]:
        """``(logits (B, A), values (B,))`` sharing the encoder pass when it is shared."""
        h = self.encoder(obs, history)
        critic = h if self.critic_encoder is None else self.critic_encoder(obs, history)
        return self.head(h), self.value_head(critic).squeeze(-1)

    def make_source(self, data: Any) -> EnvRollouts:
        """Rollouts of the Gymnasium ``VectorEnv`` ``data``."""
        if not hasattr(data, "num_envs"):
            raise ConfigError(f"{type(self).__name__} trains on a VectorEnv, got {type(data)}")
        return EnvRollouts(self, data, self.config.n_steps, self.config.seed)

    def _anneal(self) -> None:
        """Set the learning rate for this update (one host read of the counter)."""
        total = self.config.anneal_updates
        if total:
            frac = max(0.0, 1.0 - int(self.n_updates) / total)
            for group in self.optimizers["main"].param_groups:
                group["lr"] = frac * self.config.lr

    def _step(self, loss: Tensor) -> Tensor:
        """One optimizer step on ``loss``; returns the (pre-clip) gradient norm (0-d)."""
        opt = self.optimizers["main"]
        opt.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        params = [p for g in opt.param_groups for p in g["params"]]
        norm = clip_grad_norm(params, self.config.max_grad_norm or math.inf)
        opt.step()
        return norm.detach()


def _small_policy_init(head: ItemScorer | CatalogueScorer) -> None:
    """Near-uniform initial policy (CleanRL: orthogonal init with gain 0.01, zero bias)."""
    layer = head.linear if isinstance(head, ItemScorer) and head.dense else head.proj
    nn.init.orthogonal_(layer.weight, gain=0.01)
    nn.init.zeros_(layer.bias)


def entropy_and_logp(
    logits: Tensor, actions: Tensor, entropy_grad: bool = True
) -> tuple[Tensor, Tensor]:
    """``(entropy (B,), log pi(actions) (B,))`` of softmax policies with logits (B, A).

    ``entropy_grad=False`` computes the entropy without gradient (a metric only, e.g. when
    its loss weight is 0: its (B, A) backward is skipped)."""
    logp_all = torch.log_softmax(logits, dim=-1)
    with torch.set_grad_enabled(entropy_grad and torch.is_grad_enabled()):
        probs = torch.softmax(logits, dim=-1)  # one vectorised pass (cheaper than exp)
        entropy = -(probs * logp_all).sum(-1)
    return entropy, logp_all.gather(1, actions[:, None]).squeeze(1)


def valid_rows(r: Rollout) -> Tensor:
    """(M,) int64 indices of the valid rows of ``r`` flattened to (T * N) (one host sync)."""
    return r.valid.flatten().nonzero().squeeze(1)
