"""Simulated participants: a cognitive model with given parameters plays a task environment.

Each of S simulated subjects plays one run of the environment (seeded per subject from
``seed``), choosing every option by sampling the model's probabilities (from an independent
stream of the same seed) and learning from the outcomes by the model's update, exactly the
steps whose likelihood :func:`~noetik.agents.cognitive.base.trial_log_likelihood` computes. The
result has the form of episodes read from a file, so it can be fitted the same way.

>>> import numpy as np
>>> from noetik.agents.cognitive import RescorlaWagner, simulate
>>> params = np.array([[0.2, 4.0], [0.6, 2.0]])                       # (S, P)
>>> episodes = simulate(RescorlaWagner(), params, "noetik/Bandit2Arm-v0", n_trials=200, seed=0)
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt

import noetik.envs  # noqa: F401  (registers the environments)
from noetik.agents.cognitive.base import CognitiveModel, Learners, log_softmax
from noetik.data.choices import ChoiceEpisodes
from noetik.envs.decision import DecisionEnv
from noetik.errors import ConfigError
from noetik.utils.seeding import rng

__all__ = ["simulate"]


def simulate(
    model: CognitiveModel,
    params: npt.ArrayLike,
    env_id: str,
    *,
    seed: int = 0,
    **env_options: Any,
) -> ChoiceEpisodes:
    """Episodes of S subjects, subject ``i`` with parameters ``params[i]`` ((S, P) array),
    each playing one run of ``gymnasium.make(env_id, **env_options)``."""
    values = np.atleast_2d(np.asarray(params, dtype=np.float64))
    if values.ndim != 2 or values.shape[1] != len(model.parameters):
        raise ConfigError(
            f"model '{model.name}' takes (S, {len(model.parameters)}) parameters, "
            f"got {values.shape}"
        )
    s = len(values)
    envs = [gym.make(env_id, **env_options).unwrapped for _ in range(s)]
    if not all(isinstance(env, DecisionEnv) for env in envs):
        raise ConfigError(f"{env_id} is not a decision-task environment")
    tasks: list[DecisionEnv] = [e for e in envs if isinstance(e, DecisionEnv)]
    design = tasks[0].design
    model.check(design)
    n_trials, levels = tasks[0].n_trials, design.n_levels
    env_seeds = rng(seed, "simulate-envs").integers(0, 2**31 - 1, size=s)
    draw = rng(seed, "simulate-choices", model.name)
    first = [env.reset(seed=int(es))[1] for env, es in zip(tasks, env_seeds, strict=True)]
    n_values = len(first[0]["option_values"])
    choices = np.zeros((s, n_trials, levels), dtype=np.int64)
    outcomes = np.zeros((s, n_trials, len(design.outcomes)))
    option_values = np.zeros((s, n_trials, n_values))
    learners = Learners(values, design)
    state = model.initial_state(learners)
    for t in range(n_trials):
        context = np.zeros(s, dtype=np.int64)
        for level in range(levels):
            k = design.options_per_state(level)
            probs = np.exp(log_softmax(model.logits(learners, state, level, context)))
            cumulative = np.cumsum(probs, axis=1)
            option = np.minimum((cumulative < draw.random(s)[:, None]).sum(axis=1), k - 1)
            choices[:, t, level] = context * k + option
            for i, env in enumerate(tasks):
                info = env.step(int(option[i]))[4]
                context[i] = info["state"]
                outcomes[i, t] = info["outcomes"]
                option_values[i, t] = info["option_values"]
        state = model.update(learners, state, choices[:, t], outcomes[:, t] / design.outcome_scale)
    return ChoiceEpisodes.from_arrays(
        design,
        tuple(f"sim-{i + 1:03d}" for i in range(s)),
        choices,
        outcomes,
        option_values=option_values if n_values else None,
        option_value_names=tasks[0].option_value_names if n_values else (),
        source=f"simulated: {model.name} in {env_id} (seed {seed})",
    )
