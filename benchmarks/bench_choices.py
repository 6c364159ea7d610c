"""Wall time of fitting every cognitive model that applies to a 2,000-trial choice task and of
training the neural model of choice for 2,000 updates.

The task is hBayesDM's two-armed bandit example (20 subjects x 100 trials; Ahn, Haines &
Zhang, 2017) read from ``../shared/data/decision-tasks/``, or, when that folder is absent,
20 simulated Rescorla-Wagner learners (alpha 0.3, beta 4) of 100 trials in
``noetik/Bandit2Arm-v0``. Each cognitive model is fitted per subject by maximum likelihood
(the default :class:`~noetik.agents.cognitive.FitConfig`: 5 starts); each network trains with
the default :class:`~noetik.agents.choice_nets.NeuralChoiceConfig` (batches of all 20
subjects) except that early stopping is off, so that all 2,000 updates run. Goal: under 2
minutes in all on 2 cores. No environment variable is needed: the networks train on the
intra-op threads of :func:`~noetik.agents.fast.threads.sequence_threads` (one on the CPU; the
GRU's step-by-step recurrence ran 2.3 times slower on two), which the first line prints. ::

    .venv/bin/python benchmarks/bench_choices.py                      # GRU
    .venv/bin/python benchmarks/bench_choices.py --kinds gru transformer
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from noetik.agents.choice_nets import NeuralChoiceConfig, NeuralChoiceModel, make_net
from noetik.agents.cognitive import RescorlaWagner, fit_subjects, models_for, simulate
from noetik.agents.fast.threads import sequence_threads
from noetik.data.choices import PRESET_FILES, ChoiceEpisodes, read_choices

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "decision-tasks"


def _episodes() -> ChoiceEpisodes:
    path = DATA / PRESET_FILES["bandit2arm"]
    if path.is_file():
        return read_choices(path, "bandit2arm")
    params = np.tile([0.3, 4.0], (20, 1))
    return simulate(RescorlaWagner(), params, "noetik/Bandit2Arm-v0", seed=0, n_trials=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=2_000, help="network updates")
    parser.add_argument(
        "--kinds", nargs="+", default=["gru"], choices=["gru", "transformer"], help="networks"
    )
    args = parser.parse_args()
    episodes = _episodes()
    cpu = torch.device("cpu")
    rows = episodes.n_subjects * (episodes.max_trials + 1)
    training = {
        kind: sequence_threads(
            make_net(episodes.design, NeuralChoiceConfig(kind=kind)),
            rows,
            cpu,
            recurrent=kind == "gru",
        )
        or torch.get_num_threads()
        for kind in args.kinds
    }
    print(
        f"task: {episodes.source} ({episodes.n_subjects} subjects, "
        f"{int(episodes.mask.sum())} trials); OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')}, torch threads {torch.get_num_threads()}, "
        "training threads on the CPU " + ", ".join(f"{kind} {n}" for kind, n in training.items())
    )
    total = time.perf_counter()
    for model in models_for(episodes.design):
        start = time.perf_counter()
        fits = fit_subjects(model, episodes)
        seconds = time.perf_counter() - start
        print(
            f"fit {model.name:<14} per subject: {seconds:6.2f} s  (summed AIC {fits.aic.sum():.1f})"
        )
    for kind in args.kinds:
        config = NeuralChoiceConfig(kind=kind, updates=args.updates, val_fraction=0.0)
        start = time.perf_counter()
        fitted = NeuralChoiceModel(config).fit(episodes)
        seconds = time.perf_counter() - start
        assert fitted.log is not None
        print(
            f"train {kind:<12} {args.updates} updates: {seconds:6.2f} s  "
            f"(final loss {fitted.log.losses[-50:].mean():.3f} nats/decision, "
            f"{fitted.device})"
        )
    print(f"total: {time.perf_counter() - total:.1f} s")


if __name__ == "__main__":
    main()
