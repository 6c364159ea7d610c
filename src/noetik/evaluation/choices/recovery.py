"""Parameter recovery: simulate participants with known parameters, refit, compare.

Each simulated participant draws every parameter uniformly from its ``typical`` range, plays
one run of the model's task environment (:data:`RECOVERY_ENVS`, or the one given), and is
refitted by maximum likelihood on its own choices. The recovery correlation of a parameter is
the Pearson correlation, over participants, of the true and the fitted values (Spearman's rank
correlation is given too).

>>> from noetik.agents.cognitive import RescorlaWagner
>>> from noetik.evaluation.choices import parameter_recovery
>>> result = parameter_recovery(RescorlaWagner(), n_subjects=50, n_trials=200, seed=0)
>>> result.pearson          # {"alpha": ..., "beta": ...}
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from noetik.agents.cognitive import CognitiveModel, FitConfig, fit_subjects, simulate
from noetik.data.choices import FloatArray
from noetik.errors import ConfigError
from noetik.utils.seeding import rng

__all__ = ["RECOVERY_ENVS", "Recovery", "parameter_recovery", "sample_parameters"]

#: Task options of the bandits used for recovery: reward and loss chances drifting fast over
#: a wide range make every trial informative about the learning rate.
_INFORMATIVE_BANDIT: dict[str, Any] = {"p_low": 0.05, "p_high": 0.95, "drift_sd": 0.05}

#: The task environment (id and options) each model is recovered in, by model name.
RECOVERY_ENVS: MappingProxyType[str, tuple[str, dict[str, Any]]] = MappingProxyType(
    {
        "rw": ("noetik/Bandit4Arm-v0", _INFORMATIVE_BANDIT),
        "rw_gain_loss": ("noetik/Bandit4Arm-v0", _INFORMATIVE_BANDIT),
        "wsls": ("noetik/Bandit4Arm-v0", _INFORMATIVE_BANDIT),
        "pvl_delta": ("noetik/IowaGambling-v0", {}),
        "hybrid": ("noetik/TwoStep-v0", {}),
    }
)


@dataclass(frozen=True, eq=False)
class Recovery:
    """True and refitted parameters of S simulated participants (P parameters)."""

    model: str
    """Name of the model."""
    env_id: str
    """Task environment the participants played."""
    parameter_names: tuple[str, ...]
    """(P,) parameter names."""
    true: FloatArray
    """(S, P) float64 parameters the participants were simulated with."""
    fitted: FloatArray
    """(S, P) float64 maximum-likelihood parameters of their simulated choices."""
    fit_seconds: float
    """Wall-clock time of the refit."""

    @property
    def pearson(self) -> dict[str, float]:
        """Pearson correlation of true and fitted values, per parameter."""
        return {
            name: _correlation(self.true[:, j], self.fitted[:, j])
            for j, name in enumerate(self.parameter_names)
        }

    @property
    def spearman(self) -> dict[str, float]:
        """Spearman rank correlation of true and fitted values, per parameter."""
        ranks = [
            (_ranks(self.true[:, j]), _ranks(self.fitted[:, j]))
            for j in range(len(self.parameter_names))
        ]
        return {name: _correlation(*ranks[j]) for j, name in enumerate(self.parameter_names)}


def sample_parameters(model: CognitiveModel, n: int, seed: int = 0) -> FloatArray:
    """(n, P) float64 parameters, each uniform in its ``typical`` range (seeded)."""
    draw = rng(seed, "recovery-parameters", model.name)
    low = np.array([p.typical[0] for p in model.parameters])
    high = np.array([p.typical[1] for p in model.parameters])
    out: FloatArray = low + (high - low) * draw.random((n, len(model.parameters)))
    return out


def parameter_recovery(
    model: CognitiveModel,
    *,
    n_subjects: int = 50,
    n_trials: int = 200,
    env_id: str | None = None,
    seed: int = 0,
    fit: FitConfig | None = None,
    **env_options: Any,
) -> Recovery:
    """Simulate ``n_subjects`` participants of ``n_trials`` trials from ``model`` with
    parameters drawn by :func:`sample_parameters` in ``env_id`` with ``env_options`` (default:
    the model's :data:`RECOVERY_ENVS` entry), then refit each; ``seed`` seeds parameters,
    tasks and choices."""
    if n_subjects < 3:
        raise ConfigError(f"parameter recovery needs at least 3 subjects, got {n_subjects}")
    if env_id is None:
        if model.name not in RECOVERY_ENVS:
            raise ConfigError(f"no task environment known for model '{model.name}'; give env_id")
        env, options = RECOVERY_ENVS[model.name]
        env_options = {**options, **env_options}
    else:
        env = env_id
    true = sample_parameters(model, n_subjects, seed)
    episodes = simulate(model, true, env, seed=seed, n_trials=n_trials, **env_options)
    start = time.perf_counter()
    fits = fit_subjects(model, episodes, fit)
    return Recovery(
        model.name, env, model.parameter_names, true, fits.params, time.perf_counter() - start
    )


def _ranks(values: FloatArray) -> FloatArray:
    """Average ranks (ties share their mean rank)."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values), dtype=np.float64)
    for value in np.unique(values):
        tied = values == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    return ranks


def _correlation(x: FloatArray, y: FloatArray) -> float:
    """Pearson correlation (NaN when either side is constant)."""
    if np.std(x) == 0 or np.std(y) == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])
