"""Sweeps: hyperparameters, seeds and the engagement-versus-interpretability weight.

A sweep config (:mod:`~noetik.analysis.sweeps.config`) spans a grid of agent configs; each
grid point is one trial (:mod:`~noetik.analysis.sweeps.trial`: trained into its own run
folder, then measured by :mod:`~noetik.analysis.sweeps.measure`), run one after another or as
Ray Tune trials (:mod:`~noetik.analysis.sweeps.runner`); the results are one table, with the
Pareto front of engagement against interpretability (:mod:`~noetik.analysis.sweeps.results`,
:mod:`~noetik.analysis.sweeps.pareto`, :mod:`~noetik.analysis.sweeps.plot`).

>>> from noetik.analysis.sweeps import load_sweep_config, run_sweep
>>> run_sweep(load_sweep_config(Path("sweep.toml")), Path("results/sweep"))  # doctest: +SKIP
"""

from noetik.analysis.sweeps.config import MeasureConfig, SweepConfig, load_sweep_config
from noetik.analysis.sweeps.pareto import pareto_front
from noetik.analysis.sweeps.runner import SweepFailed, SweepResult, run_sweep
from noetik.analysis.sweeps.trial import TrialSpec, plan_trials, run_trial

__all__ = [
    "MeasureConfig",
    "SweepConfig",
    "SweepFailed",
    "SweepResult",
    "TrialSpec",
    "load_sweep_config",
    "pareto_front",
    "plan_trials",
    "run_sweep",
    "run_trial",
]
