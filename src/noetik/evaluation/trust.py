"""Can the simulator be trusted? Its ranking of policies held against unbiased real exposure.

A learned simulator rewards a policy for finding the model's errors (MOPO, Yu et al. 2020;
DORL, Gao et al. 2023). KuaiRand's random-exposure log gives real data to hold it against:
there a policy's one-step rates are estimated without bias (:mod:`.real_exposure`). For a set
of policies (run folders), :func:`trust_table` measures

* in the simulator, plain (the base model) and pessimistic (the ensemble's mean, reward
  ``r - κ·σ``): each policy's mean session **return** over ``n_users`` simulated users;
* on the random log's contexts (the held-out real users' states before each random
  impression): the **simulated one-step** click rate and expected reward of the same π, from
  ``draws`` videos drawn from π per context and scored by the simulator (plain: the base
  model's ``p``; pessimistic: the members' mean minus ``κ`` times their std, clipped at 0 for
  the click rate), and the **real one-step** click rate and reward (SNIPS, the lens's
  lower-variance estimate), with the effective sample size of the weights;
* the **agreement**: Kendall's τ-b between the simulator's ranking of the policies and the
  real-exposure ranking, for the plain and the pessimistic simulator (returns against the real
  reward rate; one-step click rates against the real click rate), and the mean absolute gap
  between simulated and real one-step click rates; each with a percentile bootstrap interval
  that resamples the real users and the simulated users together (the same resample for every
  policy: the policies are compared on the same users).

Every policy is evaluated as the same stochastic π in both worlds: ``softmax(z / temperature)``
over the pool, ``z`` its scores standardised in each state
(:func:`~noetik.evaluation.policy_scores.standardise_scores`), because a deterministic policy
has no usable importance weights on a log of a few thousand impressions over a pool of
thousands of videos. In the simulator the policy also never re-shows a video of the user's
history window (the online lens's rule).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import Progress

from noetik.agents.core.base import Agent
from noetik.agents.core.runs import load_run
from noetik.data.dataset import load_kuairand
from noetik.data.rewards import RewardConfig
from noetik.errors import ConfigError
from noetik.evaluation.online.sessions import online_setup, run_user_blocks, user_blocks
from noetik.evaluation.random_log import RandomLog, load_random_log
from noetik.evaluation.real_exposure import (
    RealExposureConfig,
    exposure_pool,
    outcomes,
    pool_batches,
)
from noetik.simulators.kuairand import HEADS, FittedSimulator, load_simulator
from noetik.simulators.kuairand.env_config import KuaiRandEnvConfig
from noetik.simulators.kuairand.uncertainty import head_weights
from noetik.utils.bootstrap import mean_replicates, percentile_interval, replicates
from noetik.utils.io import write_json, write_text
from noetik.utils.seeding import derive_seed
from noetik.utils.tensor_files import load_tensors, save_tensors

ENV_ID = "noetik/KuaiRand-v0"
_CLICK = HEADS.index("is_click")
#: Per real user and policy, the sums behind the one-step figures (columns of a table).
_REAL = ("w_click", "w_reward", "w", "rows", "click_plain", "click_pess", "rew_plain", "rew_pess")


@dataclass(frozen=True)
class TrustConfig:
    """What ``noetik sim trust`` measures."""

    kappa: float = 1.0
    """κ >= 0 of the pessimistic simulator's reward ``r - κ·σ`` (and of its one-step rates)."""
    temperature: float = 1.0
    """π = ``softmax(z / temperature)`` over the pool, ``z`` the standardised scores (> 0)."""
    n_users: int = 1_000
    """Simulated users (one session each) per policy and simulator."""
    draws: int = 8
    """Videos drawn from π per random-log context for the simulated one-step rates (>= 1)."""
    n_boot: int = 1_000
    """Bootstrap resamples of the intervals (>= 1)."""
    seed: int = 0
    """Seed of the simulated users, the draws from π and the bootstrap."""
    env_options: tuple[tuple[str, Any], ...] = ()
    """Options of ``noetik/KuaiRand-v0`` on top of ``sim_dir`` (e.g. ``leave_model``);
    ``ensemble`` and ``pessimism`` are set by the lens itself."""
    batch_size: int = 256
    """Random-log contexts scored together over the whole pool."""

    def __post_init__(self) -> None:
        if not (self.kappa >= 0 and self.temperature > 0):
            raise ConfigError("trust: kappa must be >= 0 and temperature > 0")
        for name in ("n_users", "draws", "n_boot", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"trust: {name} must be an integer >= 1, got {value!r}")
        taken = {"sim_dir", "ensemble", "pessimism"} & {k for k, _ in self.env_options}
        if taken:
            raise ConfigError(f"trust: env option(s) {sorted(taken)} are set by the lens itself")

    def real_config(self) -> RealExposureConfig:
        """The real-exposure lens's config of the same π."""
        return RealExposureConfig(
            policy="softmax",
            temperature=self.temperature,
            standardise=True,
            n_boot=self.n_boot,
            seed=self.seed,
            batch_size=self.batch_size,
        )


@dataclass(frozen=True, eq=False)
class PolicyArrays:
    """One policy's per-unit sums, from which every figure and replicate is computed."""

    name: str
    """Label (the run folder's name)."""
    run_dir: str
    """The run folder."""
    real: np.ndarray
    """(U, 8) float64 per real user: the :data:`_REAL` sums."""
    returns: np.ndarray
    """(N, 2) float64 per simulated user: session return, plain and pessimistic simulator."""
    ess: float
    """Effective sample size ``(Σw)² / Σw²`` of the policy's importance weights."""


def _kwargs(sim_dir: Path, config: TrustConfig, pessimistic: bool) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"sim_dir": str(sim_dir), **dict(config.env_options)}
    if pessimistic:
        kwargs |= {"ensemble": "mean", "pessimism": config.kappa}
    return kwargs


def simulated_returns(
    agent: Agent, sim_dir: Path, config: TrustConfig, pessimistic: bool
) -> np.ndarray:
    """(N,) float64 session returns of the stochastic π of ``agent`` for ``config.n_users``
    simulated users (seeded blocks, the same users for every agent)."""
    setup = online_setup(
        agent,
        ENV_ID,
        _kwargs(sim_dir, config, pessimistic),
        deterministic=False,
        temperature=config.temperature,
        standardise=True,
    )
    shard = run_user_blocks(agent, setup, user_blocks(config.n_users, (config.seed,)))
    return np.concatenate([run.returns for run in shard.runs]).astype(np.float64)


def _one_step(
    sim: FittedSimulator,
    obs: np.ndarray,
    items: torch.Tensor,
    weights: torch.Tensor,
    kappa: float,
) -> np.ndarray:
    """(B, 4) float64 simulated one-step click and expected reward, plain and pessimistic,
    for states ``obs`` (B, 128) and drawn vocabulary items ``items`` (B, M), each the mean over
    the M draws."""
    b, m = items.shape
    obs_t = torch.from_numpy(np.repeat(obs.astype(np.float32), m, axis=0)).to(sim.device)
    flat = items.reshape(-1).to(sim.device)
    base = sim.predict_torch(obs_t, flat).double()  # (B·M, 9)
    members = sim.predict_members_torch(obs_t, flat).double()  # (K, B·M, 9)
    mean, std = members.mean(dim=0), members.std(dim=0, correction=0)
    expected = members @ weights  # (K, B·M)
    columns = torch.stack(
        [
            base[:, _CLICK],
            (mean[:, _CLICK] - kappa * std[:, _CLICK]).clamp_min(0.0),
            base @ weights,
            expected.mean(dim=0) - kappa * expected.std(dim=0, correction=0),
        ],
        dim=1,
    )
    out: np.ndarray = columns.view(b, m, 4).mean(dim=1).cpu().numpy()
    return out


def policy_arrays(
    name: str,
    run_dir: Path,
    *,
    sim: FittedSimulator,
    sim_dir: Path,
    log: RandomLog,
    pool: np.ndarray,
    reward: RewardConfig,
    config: TrustConfig,
) -> PolicyArrays:
    """Every per-unit sum of one policy (see :class:`PolicyArrays`)."""
    _, _, agent = load_run(run_dir)
    rconfig = config.real_config()
    where = np.searchsorted(pool, log.video_id)
    pool_items = torch.from_numpy(sim.vocab.encode(pool))
    weights_t = head_weights(reward, sim.device)
    values = outcomes(log.signals, rconfig, reward)
    n = len(log.video_id)
    w = np.empty(n, dtype=np.float64)
    sims = np.empty((n, 4), dtype=np.float64)
    generator = torch.Generator().manual_seed(derive_seed(config.seed, "trust-draws", name))
    for index, probs in pool_batches(agent, log, pool, rconfig):
        w[index] = probs[np.arange(len(index)), where[index]] * len(pool)
        drawn = torch.multinomial(
            torch.from_numpy(probs), config.draws, replacement=True, generator=generator
        )
        sims[index] = _one_step(sim, log.obs[index], pool_items[drawn], weights_t, config.kappa)
    users, inverse = np.unique(log.user_id, return_inverse=True)
    rows = [w * values["click"], w * values["reward"], w, np.ones(n), *sims.T]
    real = np.stack([np.bincount(inverse, r, len(users)) for r in rows], axis=1)
    returns = np.stack(
        [simulated_returns(agent, sim_dir, config, p) for p in (False, True)], axis=1
    )
    squares = float(np.sum(w * w))
    ess = float(w.sum()) ** 2 / squares if squares > 0 else 0.0
    return PolicyArrays(name, str(run_dir), real, returns, ess)


def _cache_key(run_dir: Path, sim_dir: Path, log_path: Path, config: TrustConfig) -> str:
    """What a policy's arrays depend on: the run's model, the simulator, the log and every
    config field but the bootstrap's (JSON text)."""
    fields = asdict(config)
    fields.pop("n_boot")
    model = Path(run_dir) / "model.safetensors"
    stamp = model.stat().st_mtime_ns if model.is_file() else 0
    parts = {"run": str(Path(run_dir).resolve()), "model_mtime_ns": stamp}
    parts |= {"sim": str(Path(sim_dir).resolve()), "log": str(Path(log_path).resolve())}
    return json.dumps(parts | {"config": fields}, sort_keys=True, default=str)


def _cached(folder: Path | None, name: str, key: str) -> PolicyArrays | None:
    """The arrays of policy ``name`` saved in ``folder`` under the same ``key``, else None."""
    if folder is None or not (folder / f"{name}.json").is_file():
        return None
    try:
        meta = json.loads((folder / f"{name}.json").read_text())
        if meta.get("key") != key:
            return None
        arrays = load_tensors(folder / f"{name}.safetensors")
    except (ValueError, ConfigError):
        return None  # a damaged cache entry is recomputed
    real, returns = arrays["real"].numpy(), arrays["returns"].numpy()
    return PolicyArrays(name, meta["run"], real, returns, float(meta["ess"]))


def _store(folder: Path, arrays: PolicyArrays, key: str) -> None:
    """Save one policy's arrays (safetensors, then the JSON naming its key, both atomic)."""
    tensors = {"real": torch.from_numpy(arrays.real), "returns": torch.from_numpy(arrays.returns)}
    save_tensors(folder / f"{arrays.name}.safetensors", tensors)
    meta = {"key": key, "run": arrays.run_dir, "ess": arrays.ess}
    write_json(folder / f"{arrays.name}.json", meta)


def _real_figures(sums: np.ndarray) -> dict[str, np.ndarray]:
    """{figure: (..., P)} from per-policy sums (..., P, 8) over (resampled) real users."""
    c = {k: sums[..., j] for j, k in enumerate(_REAL)}
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "real_click": c["w_click"] / c["w"],
            "real_reward": c["w_reward"] / c["w"],
            "sim_click": c["click_plain"] / c["rows"],
            "pess_click": c["click_pess"] / c["rows"],
            "sim_reward_1": c["rew_plain"] / c["rows"],
            "pess_reward_1": c["rew_pess"] / c["rows"],
        }


#: Agreement figures: name -> (the simulator's figure, the real figure it is ranked against).
AGREEMENT = {
    "return_plain": ("sim_return", "real_reward"),
    "return_pessimistic": ("pess_return", "real_reward"),
    "click_plain": ("sim_click", "real_click"),
    "click_pessimistic": ("pess_click", "real_click"),
}


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's τ-b of two (P,) rankings: ``(n_c − n_d) / sqrt((n_0 − t_a)(n_0 − t_b))`` over
    the P(P−1)/2 pairs (concordant, discordant, pairs tied in ``a`` / ``b``); NaN when either
    ranking is constant or undefined."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        return math.nan
    upper = np.triu_indices(len(a), k=1)
    da = np.sign(a[:, None] - a[None, :])[upper]
    db = np.sign(b[:, None] - b[None, :])[upper]
    n0 = len(da)
    denom = math.sqrt(float(n0 - np.sum(da == 0)) * float(n0 - np.sum(db == 0)))
    return float(np.sum(da * db) / denom) if denom > 0 else math.nan


def _agreement(fig: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """(...,) τ of each :data:`AGREEMENT` pair and the mean |sim − real| click gaps, from
    figures shaped (..., P)."""
    out: dict[str, np.ndarray] = {}
    for name, (sim_key, real_key) in AGREEMENT.items():
        s, r = np.atleast_2d(fig[sim_key]), np.atleast_2d(fig[real_key])
        out[name] = np.array([kendall_tau(x, y) for x, y in zip(s, r, strict=True)])
    for kind, key in (("plain", "sim_click"), ("pessimistic", "pess_click")):
        out[f"click_gap_{kind}"] = np.atleast_1d(
            np.abs(np.atleast_2d(fig[key]) - np.atleast_2d(fig["real_click"])).mean(axis=-1)
        )
    return out


def _figures(real: np.ndarray, returns: np.ndarray) -> dict[str, np.ndarray]:
    """Figures (..., P) from real-user sums (..., P, 8) and mean returns (..., P, 2)."""
    fig = _real_figures(real)
    fig["sim_return"], fig["pess_return"] = returns[..., 0], returns[..., 1]
    return fig


def _interval(point: float, reps: np.ndarray) -> dict[str, float]:
    low, high = percentile_interval(reps)
    return {"mean": float(point), "low": low, "high": high}


def summarise(policies: Sequence[PolicyArrays], config: TrustConfig) -> dict[str, Any]:
    """The trust table (JSON-ready) of ``policies``: per policy every figure with its interval,
    and the agreement figures with theirs (see the module doc)."""
    if len(policies) < 3:
        raise ConfigError("trust: give at least three policies (a ranking of two says little)")
    real = np.stack([p.real for p in policies], axis=1)  # (U, P, 8)
    returns = np.stack([p.returns for p in policies], axis=1)  # (N, P, 2)
    n_users, n_sim = real.shape[0], returns.shape[0]
    point = _figures(real.sum(axis=0), returns.mean(axis=0))
    real_reps = replicates(
        lambda counts: np.einsum("bu,upk->bpk", counts, real),
        n_users,
        n_boot=config.n_boot,
        seed=(config.seed, 1),
    )
    flat = returns.reshape(n_sim, -1)
    sim_reps = replicates(mean_replicates(flat), n_sim, n_boot=config.n_boot, seed=(config.seed, 2))
    reps = _figures(real_reps, sim_reps.reshape(config.n_boot, *returns.shape[1:]))
    rows = []
    for j, p in enumerate(policies):
        row: dict[str, Any] = {"policy": p.name, "run": p.run_dir, "ess": p.ess}
        row |= {k: _interval(point[k][j], reps[k][:, j]) for k in point}
        rows.append(row)
    agree_point = {k: float(v[0]) for k, v in _agreement(point).items()}
    agree_reps = _agreement(reps)
    agreement = {k: _interval(agree_point[k], agree_reps[k]) for k in agree_point}
    return {
        "config": asdict(config),
        "policies": rows,
        "agreement": agreement,
        "n_real_users": int(n_users),
        "n_real_rows": int(real[:, 0, 3].sum()),
        "n_simulated_users": int(n_sim),
    }


def trust_table(
    sim_dir: Path,
    run_dirs: Sequence[Path],
    log_path: Path,
    config: TrustConfig | None = None,
    *,
    progress: Progress | None = None,
    cache_dir: Path | None = None,
) -> dict[str, Any]:
    """The trust table of the runs ``run_dirs`` in the simulator ``sim_dir`` (with ensemble
    members: ``noetik sim ensemble``) against the random-exposure CSV ``log_path`` of users
    of the simulator's dataset (e.g. its held-out users: ``noetik sim fit --holdout-log``).

    ``cache_dir``: each policy's arrays are kept there (safetensors + JSON) and reused by a
    later call with the same run model, simulator, log and config (the bootstrap aside), so
    adding a policy to the table evaluates only the new one."""
    config = config or TrustConfig()
    sim = load_simulator(sim_dir, "cpu")
    if not sim.members:
        raise ConfigError(f"{sim_dir}: the simulator has no ensemble (run `noetik sim ensemble`)")
    if not Path(log_path).is_file():
        raise ConfigError(f"--log: no such file {log_path}")
    names = [Path(r).name for r in run_dirs]
    if len(set(names)) != len(names):
        raise ConfigError("trust: run folders must have distinct names (they label the rows)")
    ds = load_kuairand(sim.meta.get("data_dir"), cache_dir=sim.meta.get("cache_dir") or None)
    log = load_random_log(ds, log=log_path)
    pool = exposure_pool(ds, log)
    env = KuaiRandEnvConfig(sim_dir=str(sim_dir), **dict(config.env_options))
    reward = env.reward_config
    task = progress.add_task("trust: policies", total=len(run_dirs)) if progress else None
    policies = []
    for name, run_dir in zip(names, run_dirs, strict=True):
        key = _cache_key(Path(run_dir), Path(sim_dir), Path(log_path), config)
        arrays = _cached(cache_dir, name, key)
        if arrays is None:
            arrays = policy_arrays(
                name,
                Path(run_dir),
                sim=sim,
                sim_dir=Path(sim_dir),
                log=log,
                pool=pool,
                reward=reward,
                config=config,
            )
            if cache_dir is not None:
                _store(cache_dir, arrays, key)
        policies.append(arrays)
        if progress is not None and task is not None:
            progress.advance(task)
    result = summarise(policies, config)
    result |= {"simulator": str(Path(sim_dir).resolve()), "log": str(Path(log_path).resolve())}
    result["reward"] = dict(reward.weights)
    return result


def _cell(value: dict[str, float], digits: int = 3) -> str:
    return f"{value['mean']:.{digits}f} [{value['low']:.{digits}f}, {value['high']:.{digits}f}]"


#: Table columns: (heading, figure).
COLUMNS = (
    ("sim return", "sim_return"),
    ("pessimistic return", "pess_return"),
    ("sim 1-step click", "sim_click"),
    ("pessimistic 1-step click", "pess_click"),
    ("real click (SNIPS)", "real_click"),
    ("real reward (SNIPS)", "real_reward"),
)


def agreement_label(key: str) -> str:
    """Plain words for an agreement figure's key (e.g. ``click_pessimistic``)."""
    if key.startswith("click_gap"):
        return f"mean |sim − real| 1-step click rate, {key.rsplit('_', 1)[1]} simulator"
    figure, kind = key.split("_", 1)
    what = "return" if figure == "return" else "1-step click rate"
    real = "real reward rate" if figure == "return" else "real click rate"
    return f"Kendall τ: {kind} simulator's {what} vs {real}"


def trust_markdown(result: dict[str, Any]) -> str:
    """The trust table and the agreement as Markdown."""
    head = "| policy | " + " | ".join(h for h, _ in COLUMNS) + " | ESS |"
    lines = [head, "|---" * (len(COLUMNS) + 2) + "|"]
    for row in result["policies"]:
        cells = " | ".join(_cell(row[key]) for _, key in COLUMNS)
        lines.append(f"| {row['policy']} | {cells} | {row['ess']:.0f} |")
    lines += ["", "| agreement | value [95 % interval] |", "|---|---|"]
    for key, value in result["agreement"].items():
        lines.append(f"| {agreement_label(key)} | {_cell(value)} |")
    return "\n".join(lines) + "\n"


def write_trust(result: dict[str, Any], out_dir: Path) -> None:
    """``trust.json`` and ``trust.md`` in ``out_dir`` (written atomically)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "trust.json", result)
    write_text(out_dir / "trust.md", trust_markdown(result))


__all__ = [
    "AGREEMENT",
    "TrustConfig",
    "agreement_label",
    "kendall_tau",
    "policy_arrays",
    "simulated_returns",
    "summarise",
    "trust_markdown",
    "trust_table",
    "write_trust",
]
