"""A cognitive model (its equations) with its maximum-likelihood parameters, as a
:class:`~noetik.agents.choice_nets.contract.ChoiceModel`: the thin adapter that lets held-out
evaluation, explanations and reports treat cognitive and neural models of choice alike.

``fit(episodes, scope="pooled")`` fits one parameter set for everyone
(:func:`~noetik.agents.cognitive.fit_pooled`); ``scope="subjects"`` one per subject
(:func:`~noetik.agents.cognitive.fit_subjects`), which then predicts those subjects only (the
same ids, in the same order). :meth:`CognitiveChoiceModel.trace` exposes the model's latent
state (e.g. Rescorla-Wagner's Q-values) before every trial, for explanations.

>>> from noetik.agents.choice_nets import CognitiveChoiceModel
>>> from noetik.agents.cognitive import RescorlaWagner
>>> rw = CognitiveChoiceModel(RescorlaWagner()).fit(episodes, scope="subjects")
>>> rw.fitted_params.shape, rw.predict(episodes).log_lik.shape     # (S, 2), (S, T)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from noetik.agents.choice_nets.model import CONFIG_FILE, sample_options
from noetik.agents.cognitive import (
    MODELS,
    ChoicePredictions,
    CognitiveModel,
    FitConfig,
    Learners,
    fit_pooled,
    fit_subjects,
    log_softmax,
    predict,
)
from noetik.data.choices import ChoiceEpisodes, FloatArray, IntArray
from noetik.errors import ConfigError
from noetik.utils.config import from_json
from noetik.utils.io import expect_object, read_json, write_json

__all__ = ["CognitiveChoiceModel", "CognitiveTrace"]


@dataclass(frozen=True, eq=False)
class CognitiveTrace:
    """A cognitive model run through episodes: its state and choice probabilities per trial."""

    states: FloatArray
    """(S, T + 1, K) float64 latent state before each trial (row T: after the last trial;
    each subject's state stays fixed after their last trial)."""
    log_probs: tuple[FloatArray, ...]
    """Per level, (S, T + 1, k) float64 log-probabilities of the options of the state the
    trial reached (row ``n_trials[s]``: the first level of the next trial)."""


@dataclass(frozen=True, eq=False)
class CognitiveChoiceModel:
    """A cognitive model of choice and (once fitted) its parameters."""

    model: CognitiveModel
    """The equations."""
    fit_config: FitConfig = field(default_factory=FitConfig)
    """How :meth:`fit` searches."""
    params: FloatArray | None = None
    """(P,) float64 pooled or (S, P) per-subject parameters; None before :meth:`fit`."""
    subjects: tuple[str, ...] = ()
    """Ids of the subjects whose rows ``params`` has (per-subject fits only)."""

    @property
    def name(self) -> str:
        """The cognitive model's name (``"rw"``, ...)."""
        return self.model.name

    @property
    def fitted_params(self) -> FloatArray:
        """(P,) or (S, P) float64 fitted parameters."""
        if self.params is None:
            raise ConfigError(f"model '{self.name}' is not fitted yet")
        return self.params

    def fit(
        self, episodes: ChoiceEpisodes, scope: Literal["pooled", "subjects"] = "pooled"
    ) -> CognitiveChoiceModel:
        """The model with parameters fitted to ``episodes`` (one set, or one per subject)."""
        if scope == "pooled":
            params = fit_pooled(self.model, episodes, self.fit_config).params
            return dataclasses.replace(self, params=params, subjects=())
        fits = fit_subjects(self.model, episodes, self.fit_config)
        return dataclasses.replace(self, params=fits.params, subjects=episodes.subjects)

    def _rows(self, episodes: ChoiceEpisodes) -> FloatArray:
        params = self.fitted_params
        if params.ndim == 2 and self.subjects != episodes.subjects:
            raise ConfigError(
                f"model '{self.name}' was fitted per subject on {len(self.subjects)} subjects; "
                "it predicts only those, in the same order"
            )
        out: FloatArray = np.ascontiguousarray(
            np.broadcast_to(params, (episodes.n_subjects, len(self.model.parameters)))
        )
        return out

    def predict(self, episodes: ChoiceEpisodes) -> ChoicePredictions:
        """Log-likelihood and hits of every observed trial."""
        return predict(self.model, self._rows(episodes), episodes)

    def trace(self, episodes: ChoiceEpisodes) -> CognitiveTrace:
        """The latent state and option log-probabilities before every trial."""
        design = episodes.design
        self.model.check(design)
        learners = Learners(self._rows(episodes), design)
        s, t = episodes.mask.shape
        state = self.model.initial_state(learners)
        states = np.zeros((s, t + 1, state.shape[1]))
        per_state = [design.options_per_state(lv) for lv in range(design.n_levels)]
        log_probs = [np.zeros((s, t + 1, k)) for k in per_state]
        outcomes = episodes.outcomes / design.outcome_scale
        for trial in range(t + 1):
            states[:, trial] = state
            for level, k in enumerate(per_state):
                if trial < t:
                    context = episodes.choices[:, trial, level] // k
                else:
                    context = np.zeros(s, dtype=np.int64)
                if level > 0 and trial == t:
                    break
                logits = self.model.logits(learners, state, level, context)
                log_probs[level][:, trial] = log_softmax(logits)
            if trial < t:
                new = self.model.update(
                    learners, state, episodes.choices[:, trial], outcomes[:, trial]
                )
                state = np.where(episodes.mask[:, trial, None], new, state)
        return CognitiveTrace(states, tuple(log_probs))

    def log_probs(self, episodes: ChoiceEpisodes, level: int = 0) -> FloatArray:
        """(S, T, k) float64 log-probabilities of the options of choice ``level`` on every
        trial (meaningless in padding)."""
        return self.trace(episodes).log_probs[level][:, : episodes.max_trials]

    def next_log_probs(self, episodes: ChoiceEpisodes) -> FloatArray:
        """(S, n_options[0]) float64 log-probabilities of each subject's next first choice."""
        first = self.trace(episodes).log_probs[0]
        out: FloatArray = first[np.arange(episodes.n_subjects), episodes.n_trials]
        return out

    def act(self, episodes: ChoiceEpisodes, *, seed: int = 0, greedy: bool = False) -> IntArray:
        """(S,) int64 each subject's next first-level choice (sampled, or the most likely)."""
        return sample_options(self.next_log_probs(episodes), seed=seed, greedy=greedy)

    def save(self, path: str | Path) -> Path:
        """Write the fitted model to folder ``path`` (``choice_model.json``; atomic)."""
        folder = Path(path)
        payload = {
            "kind": "cognitive",
            "model": self.name,
            "fit": dataclasses.asdict(self.fit_config),
            "params": self.fitted_params.tolist(),
            "subjects": list(self.subjects),
        }
        write_json(folder / CONFIG_FILE, payload)
        return folder

    @classmethod
    def load(cls, path: str | Path) -> CognitiveChoiceModel:
        """The model saved in folder ``path``; a bad file raises a one-line ConfigError."""
        where = Path(path) / CONFIG_FILE
        payload = expect_object(read_json(where, "model of choice"), where, "model of choice")
        name = payload.get("model")
        if payload.get("kind") != "cognitive" or name not in MODELS:
            raise ConfigError(f"{where}: not a cognitive model of choice known here")
        model = MODELS[str(name)]
        fit = from_json(FitConfig, payload.get("fit"), str(where))
        try:
            params = np.asarray(payload.get("params"), dtype=np.float64)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: damaged model of choice (params)") from None
        subjects = payload.get("subjects")
        p = len(model.parameters)
        rows_ok = params.ndim == 2 and isinstance(subjects, list) and len(subjects) == len(params)
        if params.shape[-1:] != (p,) or not (params.ndim == 1 or rows_ok):
            raise ConfigError(f"{where}: damaged model of choice (params {params.shape})")
        names = tuple(str(s) for s in subjects) if isinstance(subjects, list) else ()
        return cls(model, fit, params, names if params.ndim == 2 else ())
