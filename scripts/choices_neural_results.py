"""Held-out prediction of people's choices by the neural models of choice on the four hBayesDM
example tasks (Ahn, Haines & Zhang, 2017), beside every applicable cognitive model, under both
schemes (leave subjects out, later trials) with the same folds, splits and bootstrap.

Reads ``../shared/data/decision-tasks/``; writes one JSON object per (task, model, scheme) to
``--out`` (default ``runs/choices_neural_results.jsonl``) and prints a markdown table::

    OMP_NUM_THREADS=1 .venv/bin/python scripts/choices_neural_results.py --updates 500
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from noetik.agents.choice_nets import ChoiceModel, NeuralChoiceConfig, NeuralChoiceModel
from noetik.agents.cognitive import CognitiveModel, models_for
from noetik.data.choices import PRESET_FILES, read_choices
from noetik.evaluation.choices import HeldOutConfig, later_trials, leave_subjects_out

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "decision-tasks"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=500, help="network updates per fit")
    parser.add_argument("--tasks", nargs="+", default=list(PRESET_FILES))
    parser.add_argument("--kinds", nargs="+", default=["gru", "transformer"])
    parser.add_argument("--no-cognitive", action="store_true", help="networks only")
    parser.add_argument("--out", type=Path, default=Path("runs/choices_neural_results.jsonl"))
    args = parser.parse_args()
    config = HeldOutConfig()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("a") as sink:
        for task in args.tasks:
            episodes = read_choices(DATA / PRESET_FILES[task], task)
            models: list[CognitiveModel | ChoiceModel] = []
            if not args.no_cognitive:
                models.extend(models_for(episodes.design))
            models.extend(
                NeuralChoiceModel(NeuralChoiceConfig(kind=kind, updates=args.updates))
                for kind in args.kinds
            )
            for model in models:
                for scheme in (leave_subjects_out, later_trials):
                    start = time.perf_counter()
                    result = scheme(model, episodes, config)
                    record = {
                        "task": task,
                        "model": result.model,
                        "scheme": result.scheme,
                        "updates": args.updates if isinstance(model, NeuralChoiceModel) else None,
                        "seconds": round(time.perf_counter() - start, 1),
                        **result.scores.as_dict(),
                    }
                    sink.write(json.dumps(record) + "\n")
                    sink.flush()
                    nl = result.scores.normalised_likelihood
                    print(
                        f"| {task} | {result.model} | {result.scheme} | {nl.format()} | "
                        f"{result.scores.chance:.3f} | {record['seconds']} s |",
                        flush=True,
                    )


if __name__ == "__main__":
    main()
