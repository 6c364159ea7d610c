"""``noetik choices``: people's trial-by-trial choices in decision tasks.

Every command reads one choice file through a preset (``--task bandit2arm``) or a mapping file
(``--mapping task.toml``, see :mod:`noetik.data.choices.mapping`):

* ``info``: subjects, trials, options and outcomes of the file;
* ``fit``: per-subject and pooled maximum-likelihood fits of every applicable cognitive model
  (AIC/BIC), parameter recovery in the task environments and the behavioural analysis, all
  written to a run folder (``choices.json``, ``fits.json``, ``recovery.json``,
  ``behaviour.json``) that ``noetik report RUN`` renders; with ``--neural gru`` (or
  ``transformer``, or both) the neural model of choice too, saved in ``RUN/neural/KIND/``
  (``choice_model.json`` + ``weights.safetensors``) with a few of its predictions explained
  (``explanations.json``);
* ``evaluate``: held-out choice prediction (leave subjects out, later trials) of the models
  (``--neural`` adds the networks), win-stay/lose-shift and chance, each figure
  ``{"mean", "low", "high"}`` with ``--json``;
* ``explain``: one subject's predicted choice on one trial explained: the network's
  integrated gradients over the earlier trials, the Transformer's attention, the fitted
  Rescorla-Wagner model's view and plain words (trains the network, or loads it with
  ``--model-dir``);
* ``analyse``: win-stay/lose-shift, learning curves, perseveration, gain/loss sensitivity;
* ``simulate``: participants of a cognitive model playing the task's environment, written as a
  choice file in the mapping's layout (for demos and tests without data);
* ``tags``: the same question on KuaiRand logs (does a user's long view of a tag follow their
  recent outcomes on it the way a Rescorla-Wagner learner predicts?).

Errors (unknown column, bad mapping file, choices out of range) print one line and exit 2.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from noetik.errors import ConfigError

choices_app = typer.Typer(
    help="People's trial-by-trial choices in decision tasks: read, fit, evaluate, analyse.",
    no_args_is_help=True,
)
_OUT = Console()
if not _OUT.is_terminal:
    _OUT = Console(width=160)

#: File names of a choices run folder.
RUN_FILES = {
    "config": "choices.json",
    "fits": "fits.json",
    "recovery": "recovery.json",
    "behaviour": "behaviour.json",
    "evaluation": "evaluation.json",
    "explanations": "explanations.json",
}
#: Folder of a run's saved neural models (one subfolder per kind).
NEURAL_DIR = "neural"

DataArg = typer.Argument(..., help="Trial-by-trial choice file (one row per trial).")
TaskOpt = typer.Option(
    None, "--task", help="Preset mapping: bandit2arm, bandit4arm, igt or two-step."
)
MappingOpt = typer.Option(
    None, "--mapping", help="Mapping file (.json or .toml) naming the file's columns."
)
ModelOpt = typer.Option(
    None, "--model", help="Only these cognitive models (repeatable; default: all applicable)."
)
BootOpt = typer.Option(2_000, "--boot", help="Bootstrap resamples of subjects (intervals).")
SeedOpt = typer.Option(0, "--seed", help="Seed of fits' starting points, folds and bootstrap.")
JsonOpt = typer.Option(False, "--json", help="Print JSON instead of tables.")
NeuralOpt = typer.Option(
    "",
    "--neural",
    help="Neural models of choice too: gru, transformer or gru,transformer (default: none).",
)
UpdatesOpt = typer.Option(
    2_000,
    "--updates",
    help="Most training updates of each neural model (early stopping on held-out subjects).",
)


def _mapping(task: str | None, mapping: Path | None) -> Any:
    """The ChoiceMapping of ``--task`` or ``--mapping`` (exactly one)."""
    from noetik.data.choices import load_mapping, preset

    if (task is None) == (mapping is None):
        raise ConfigError("give exactly one of --task PRESET and --mapping FILE")
    return preset(task) if task is not None else load_mapping(mapping)  # type: ignore[arg-type]


def _episodes(data: Path, task: str | None, mapping: Path | None) -> tuple[Any, Any]:
    """``(episodes, mapping)`` of the choice file ``data``."""
    from noetik.data.choices import read_choices

    chosen = _mapping(task, mapping)
    if not data.is_file():
        raise ConfigError(f"{data}: no such choice file")
    return read_choices(data, chosen), chosen


def _models(design: Any, names: list[str] | None) -> tuple[Any, ...]:
    """The applicable cognitive models, or those named (each must apply)."""
    from noetik.agents.cognitive import MODELS, models_for

    if not names:
        return models_for(design)
    out = []
    for name in names:
        if name not in MODELS:
            raise ConfigError(f"unknown model '{name}' (models: {', '.join(MODELS)})")
        MODELS[name].check(design)
        out.append(MODELS[name])
    return tuple(out)


def _neural_kinds(text: str) -> list[str]:
    """The kinds named by ``--neural`` (comma-separated, each once)."""
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    for kind in kinds:
        if kind not in ("gru", "transformer"):
            raise ConfigError(f"--neural takes gru and/or transformer, got {kind!r}")
    if len(set(kinds)) != len(kinds):
        raise ConfigError(f"--neural names a model twice: {text!r}")
    return kinds


def _neural(kind: str, updates: int, seed: int) -> Any:
    """An untrained neural model of choice of ``kind`` (the default config otherwise)."""
    from noetik.agents.choice_nets import NeuralChoiceConfig, NeuralChoiceModel

    if updates < 1:
        raise ConfigError(f"--updates must be >= 1, got {updates}")
    kind_: Literal["gru", "transformer"] = "gru" if kind == "gru" else "transformer"
    return NeuralChoiceModel(NeuralChoiceConfig(kind=kind_, updates=updates, seed=seed))


def _fit_config(restarts: int, seed: int) -> Any:
    from noetik.agents.cognitive import FitConfig

    return FitConfig(restarts=restarts, seed=seed)


@choices_app.command("info")
def info(
    data: Path = DataArg,
    task: str | None = TaskOpt,
    mapping: Path | None = MappingOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Subjects, trials per subject, options and a summary of the outcomes."""
    episodes, chosen = _episodes(data, task, mapping)
    summary = _info(episodes, chosen, data)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    trials = summary["trials_per_subject"]
    _OUT.print(f"task: [bold]{summary['task']}[/bold]  ({data})")
    _OUT.print(
        f"subjects: {summary['subjects']}, trials: {summary['trials']:,} "
        f"(per subject {trials['min']}-{trials['max']}, median {trials['median']:g})"
    )
    _OUT.print(
        "options per choice level: "
        + ", ".join(
            f"{n} ({s} state{'s' if s > 1 else ''})"
            for n, s in zip(summary["n_options"], summary["states"], strict=True)
        )
    )
    table = Table("outcome", "mean", "min", "max", "share > 0", "share < 0", title="Outcomes")
    for name, o in summary["outcomes"].items():
        table.add_row(
            name,
            f"{o['mean']:.4g}",
            f"{o['min']:.4g}",
            f"{o['max']:.4g}",
            f"{o['positive']:.3f}",
            f"{o['negative']:.3f}",
        )
    _OUT.print(table)
    extras = [k for k in ("reaction_time", "block", "option_values") if summary["extras"][k]]
    _OUT.print("extras: " + (", ".join(extras) or "none"))


def _info(episodes: Any, mapping: Any, data: Path) -> dict[str, Any]:
    design = episodes.design
    n = episodes.n_trials
    mask = episodes.mask
    outcomes: dict[str, dict[str, float]] = {}
    columns = [*design.outcomes, "net"] if len(design.outcomes) > 1 else list(design.outcomes)
    for j, name in enumerate(columns):
        values = episodes.reward[mask] if name == "net" else episodes.outcomes[:, :, j][mask]
        outcomes[name] = {
            "mean": float(values.mean()),
            "min": float(values.min()),
            "max": float(values.max()),
            "positive": float((values > 0).mean()),
            "negative": float((values < 0).mean()),
        }
    return {
        "file": str(data),
        "task": design.task,
        "subjects": episodes.n_subjects,
        "trials": int(n.sum()),
        "trials_per_subject": {
            "min": int(n.min()),
            "median": float(np.median(n)),
            "max": int(n.max()),
        },
        "n_options": list(design.n_options),
        "states": list(design.states),
        "outcome_columns": list(design.outcomes),
        "outcome_scale": design.outcome_scale,
        "outcomes": outcomes,
        "extras": {
            "reaction_time": episodes.reaction_time is not None,
            "block": episodes.block is not None,
            "option_values": list(episodes.option_value_names),
        },
        "mapping": mapping.to_json(),
    }


@choices_app.command("fit")
def fit(
    data: Path = DataArg,
    out: Path = typer.Option(..., "--out", help="Run folder to write (created if needed)."),
    task: str | None = TaskOpt,
    mapping: Path | None = MappingOpt,
    model: list[str] | None = ModelOpt,
    restarts: int = typer.Option(5, "--restarts", help="Starting points per fit."),
    recovery: int = typer.Option(
        30, "--recovery", help="Simulated subjects per model for parameter recovery (0: none)."
    ),
    recovery_trials: int | None = typer.Option(
        None, "--recovery-trials", help="Trials per simulated subject (default: the data's most)."
    ),
    neural: str = NeuralOpt,
    updates: int = UpdatesOpt,
    explain: int = typer.Option(
        3, "--explain", help="With --neural: trials explained into explanations.json (0: none)."
    ),
    boot: int = BootOpt,
    seed: int = SeedOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Per-subject and pooled maximum-likelihood fits of the cognitive models (AIC/BIC table),
    parameter recovery and the behavioural analysis, written to the run folder OUT; with
    --neural, the neural models of choice trained on every subject, saved in OUT/neural/KIND,
    and a few of their predictions explained."""
    from noetik import __version__
    from noetik.agents.cognitive import fit_pooled, fit_subjects
    from noetik.analysis.choices import ChoiceAnalysisConfig, analyse_choices
    from noetik.evaluation.choices import parameter_recovery
    from noetik.utils.io import write_json
    from noetik.utils.progress import make_progress, track

    if recovery < 0 or (recovery and recovery < 3):
        raise ConfigError(f"--recovery must be 0 or >= 3, got {recovery}")
    if recovery_trials is not None and recovery_trials < 2:
        raise ConfigError(f"--recovery-trials must be >= 2, got {recovery_trials}")
    if explain < 0:
        raise ConfigError(f"--explain must be >= 0, got {explain}")
    kinds = _neural_kinds(neural)
    networks = [_neural(kind, updates, seed) for kind in kinds]
    episodes, chosen = _episodes(data, task, mapping)
    models = _models(episodes.design, model)
    fit_config = _fit_config(restarts, seed)
    analysis = ChoiceAnalysisConfig(n_boot=boot, seed=seed)
    n_trials = recovery_trials or episodes.max_trials
    fits: dict[str, Any] = {}
    recoveries: dict[str, Any] = {}
    with make_progress() as progress:
        for m in track(models, len(models), "Fitting models", progress):
            per, pooled = fit_subjects(m, episodes, fit_config), fit_pooled(m, episodes, fit_config)
            fits[m.name] = _fit_entry(per, pooled)
        if recovery:
            for m in track(models, len(models), "Parameter recovery", progress):
                r = parameter_recovery(
                    m, n_subjects=recovery, n_trials=n_trials, seed=seed, fit=fit_config
                )
                recoveries[m.name] = _recovery_entry(r)
        trained = [
            net.fit(episodes)
            for net in track(networks, len(networks), "Training neural models", progress)
        ]
    behaviour = analyse_choices(episodes, analysis).as_dict()
    config = {
        "kind": "choices",
        "noetik": __version__,
        "data": str(data.resolve()),
        "task": episodes.design.task,
        "mapping": chosen.to_json(),
        "models": [m.name for m in models],
        "fit": asdict(fit_config),
        "recovery": {"subjects": recovery, "trials": n_trials},
        "analysis": asdict(analysis),
        "neural": {net.name: asdict(net.config) for net in trained},
    }
    results = {
        "task": episodes.design.task,
        "n_subjects": episodes.n_subjects,
        "n_trials": int(episodes.n_trials.sum()),
        "models": fits,
        "best": _best_by(fits),
        "neural": {net.name: _neural_entry(net, episodes) for net in trained},
    }
    for net in trained:
        net.save(out / NEURAL_DIR / net.name)
    explained = _explain_run(trained, episodes, fits, explain)
    write_json(out / RUN_FILES["config"], config)
    write_json(out / RUN_FILES["fits"], results)
    write_json(out / RUN_FILES["behaviour"], behaviour)
    if recovery:
        write_json(out / RUN_FILES["recovery"], recoveries)
    if explained:
        write_json(out / RUN_FILES["explanations"], explained)
    if as_json:
        typer.echo(json.dumps({"fits": results, "recovery": recoveries}, indent=2))
        return
    _OUT.print(_fit_table(results))
    for name, entry in results["neural"].items():
        _OUT.print(
            f"{name}: in-sample NLL {entry['nll_per_decision']:.3f} per decision "
            f"(normalised likelihood {entry['normalised_likelihood']:.3f}), "
            f"{entry['updates']} updates (kept {entry['best_update']}), "
            f"{entry['seconds']:.1f} s; saved in {out / NEURAL_DIR / name}"
        )
    for name, r in recoveries.items():
        cells = ", ".join(f"{p} {v:.2f}" for p, v in r["pearson"].items())
        _OUT.print(f"recovery of {name} (r, {recovery} simulated subjects x {n_trials}): {cells}")
    typer.echo(f"wrote {out}", err=True)


def _fit_entry(per: Any, pooled: Any) -> dict[str, Any]:
    """JSON form of a model's per-subject and pooled fits."""
    return {
        "parameters": list(per.parameter_names),
        "subjects": {
            "ids": list(per.subjects),
            "params": per.params.tolist(),
            "nll": per.nll.tolist(),
            "n_decisions": per.n_decisions.tolist(),
            "converged": per.converged.tolist(),
            "nll_total": float(per.nll.sum()),
            "aic": float(per.aic.sum()),
            "bic": float(per.bic.sum()),
            "seconds": per.seconds,
        },
        "pooled": {
            "params": pooled.params.tolist(),
            "nll": pooled.nll,
            "aic": pooled.aic,
            "bic": pooled.bic,
            "converged": pooled.converged,
            "seconds": pooled.seconds,
        },
    }


def _neural_entry(model: Any, episodes: Any) -> dict[str, Any]:
    """JSON form of a trained network: its in-sample fit and how training went."""
    predictions = model.predict(episodes)
    decisions = int(episodes.mask.sum()) * episodes.design.n_levels
    nll = float(-predictions.log_lik[episodes.mask].sum())
    log = model.log
    return {
        "kind": model.name,
        "weights": int(sum(p.numel() for p in model.net.parameters())),
        "nll_total": nll,
        "nll_per_decision": nll / decisions,
        "normalised_likelihood": math.exp(-nll / decisions),
        "updates": len(log.losses),
        "best_update": log.best_update,
        "seconds": log.seconds,
        "folder": f"{NEURAL_DIR}/{model.name}",
    }


def _rw_view(episodes: Any, params: Any = None) -> Any:
    """Rescorla-Wagner fitted per subject to ``episodes`` (or with the per-subject ``params``
    of a fit), for the cognitive view of explanations; None where it does not apply."""
    import dataclasses

    from noetik.agents.choice_nets import CognitiveChoiceModel
    from noetik.agents.cognitive import MODELS

    rw = MODELS["rw"]
    try:
        rw.check(episodes.design)
    except ConfigError:
        return None
    adapter = CognitiveChoiceModel(rw, _fit_config(3, 0))
    if params is None:
        return adapter.fit(episodes, scope="subjects")
    return dataclasses.replace(adapter, params=np.asarray(params), subjects=episodes.subjects)


def _explain_run(
    trained: list[Any], episodes: Any, fits: dict[str, Any], count: int
) -> dict[str, Any]:
    """``count`` explained trials of each network (the last trial of the first subjects),
    each beside the run's per-subject Rescorla-Wagner fit when there is one."""
    from noetik.explain.choices import explain_choice

    if not trained or count == 0:
        return {}
    rw_fit = fits.get("rw")
    rows = list(range(min(count, episodes.n_subjects)))
    picked = episodes.select(rows)
    cognitive = _rw_view(
        picked, None if rw_fit is None else np.asarray(rw_fit["subjects"]["params"])[rows]
    )
    out: dict[str, Any] = {}
    for net in trained:
        out[net.name] = [
            explain_choice(
                net, picked, s, int(picked.n_trials[s]) - 1, cognitive=cognitive
            ).as_dict()
            for s in range(len(rows))
        ]
    return out


def _recovery_entry(r: Any) -> dict[str, Any]:
    return {
        "env_id": r.env_id,
        "parameters": list(r.parameter_names),
        "true": r.true.tolist(),
        "fitted": r.fitted.tolist(),
        "pearson": r.pearson,
        "spearman": r.spearman,
        "seconds": r.fit_seconds,
    }


def _best_by(fits: dict[str, Any]) -> dict[str, str]:
    """The model with the lowest summed per-subject AIC and BIC, and pooled AIC and BIC."""
    out: dict[str, str] = {}
    for where in ("subjects", "pooled"):
        for crit in ("aic", "bic"):
            out[f"{where}_{crit}"] = min(fits, key=lambda m: fits[m][where][crit])
    return out


def _fit_table(results: dict[str, Any]) -> Table:
    fits = results["models"]
    best_aic = min(f["subjects"]["aic"] for f in fits.values())
    table = Table(
        "model",
        "k",
        "NLL (per subject)",
        "AIC",
        "ΔAIC",
        "BIC",
        "NLL (pooled)",
        "AIC",
        "BIC",
        title=f"{results['task']}: {results['n_subjects']} subjects, "
        f"{results['n_trials']:,} trials (AIC/BIC summed over subjects)",
    )
    for name, f in fits.items():
        s, p = f["subjects"], f["pooled"]
        table.add_row(
            name,
            str(len(f["parameters"])),
            f"{s['nll_total']:.1f}",
            f"{s['aic']:.1f}",
            f"{s['aic'] - best_aic:.1f}",
            f"{s['bic']:.1f}",
            f"{p['nll']:.1f}",
            f"{p['aic']:.1f}",
            f"{p['bic']:.1f}",
        )
    return table


@choices_app.command("evaluate")
def evaluate(
    data: Path = DataArg,
    task: str | None = TaskOpt,
    mapping: Path | None = MappingOpt,
    model: list[str] | None = ModelOpt,
    folds: int = typer.Option(5, "--folds", help="Leave-subjects-out folds."),
    train_fraction: float = typer.Option(
        0.5, "--train-fraction", help="Later-trials scheme: share of each subject's trials fitted."
    ),
    restarts: int = typer.Option(5, "--restarts", help="Starting points per fit."),
    neural: str = NeuralOpt,
    updates: int = UpdatesOpt,
    boot: int = BootOpt,
    seed: int = SeedOpt,
    out: Path | None = typer.Option(
        None, "--out", help="Folder (e.g. a fit run folder) to write evaluation.json into."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Held-out choice prediction under both schemes: each model's NLL per decision,
    normalised likelihood and accuracy with 95 % intervals over subjects, against chance, and
    each model against the best. --neural adds the networks, trained under the same splits."""
    from noetik.evaluation.choices import HeldOutConfig, later_trials, leave_subjects_out
    from noetik.utils.io import write_json
    from noetik.utils.progress import make_progress, track

    networks = [_neural(kind, updates, seed) for kind in _neural_kinds(neural)]
    episodes, chosen = _episodes(data, task, mapping)
    models = [*_models(episodes.design, model), *networks]
    config = HeldOutConfig(
        folds=folds,
        train_fraction=train_fraction,
        fit=_fit_config(restarts, seed),
        n_boot=boot,
        seed=seed,
    )
    runs = [(s, m) for s in ("leave_subjects_out", "later_trials") for m in models]
    held: dict[str, dict[str, Any]] = {"leave_subjects_out": {}, "later_trials": {}}
    with make_progress() as progress:
        for scheme, m in track(runs, len(runs), "Held-out fits", progress):
            run = leave_subjects_out if scheme == "leave_subjects_out" else later_trials
            held[scheme][m.name] = run(m, episodes, config)
    result = _evaluation(episodes, chosen, held, config, data, networks)
    if out is not None:
        write_json(out / RUN_FILES["evaluation"], result)
        typer.echo(f"wrote {out / RUN_FILES['evaluation']}", err=True)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    for scheme, entry in result["schemes"].items():
        _OUT.print(_evaluation_table(result, scheme, entry))
    for line in evaluation_lines(result):
        _OUT.print(line, markup=False, highlight=False)


def _evaluation(
    episodes: Any,
    mapping: Any,
    held: dict[str, dict[str, Any]],
    config: Any,
    data: Path,
    networks: list[Any] | None = None,
) -> dict[str, Any]:
    """JSON form of the held-out scores of every model and chance, with each model's paired
    difference from the scheme's best."""
    from noetik.evaluation.choices import score_predictions
    from noetik.evaluation.choices.compare import chance_predictions, paired_difference

    chance = chance_predictions(episodes)
    schemes: dict[str, Any] = {}
    for scheme, results in held.items():
        if not results:
            continue
        held_out = next(iter(results.values())).held_out
        predictions = {name: r.predictions for name, r in results.items()}
        predictions["chance"] = chance
        scores = {name: r.scores.as_dict() for name, r in results.items()}
        scores["chance"] = score_predictions(
            chance,
            episodes.design,
            held_out,
            n_boot=config.n_boot,
            level=config.level,
            seed=config.seed,
        ).as_dict()
        best = min(results, key=lambda name: scores[name]["nll"]["mean"])
        versus = {
            name: paired_difference(
                predictions[name],
                predictions[best],
                held_out,
                n_boot=config.n_boot,
                level=config.level,
                seed=config.seed,
            ).as_dict()
            for name in predictions
            if name != best
        }
        schemes[scheme] = {
            "models": scores,
            "best": best,
            "versus_best": versus,
            "params": {name: r.params.tolist() for name, r in results.items()},
            "seconds": {name: r.seconds for name, r in results.items()},
        }
    return {
        "file": str(data),
        "task": episodes.design.task,
        "n_subjects": episodes.n_subjects,
        "n_trials": int(episodes.n_trials.sum()),
        "chance": scores["chance"]["chance"] if schemes else None,
        "mapping": mapping.to_json(),
        "config": {
            "folds": config.folds,
            "train_fraction": config.train_fraction,
            "fit": asdict(config.fit),
            "n_boot": config.n_boot,
            "level": config.level,
            "seed": config.seed,
            "neural": {net.name: asdict(net.config) for net in networks or []},
        },
        "schemes": schemes,
    }


def _estimate(entry: dict[str, float], digits: int = 2) -> str:
    from noetik.utils.bootstrap import format_estimate

    if not math.isfinite(entry["mean"]):
        return "-"
    return format_estimate(entry["mean"], entry["low"], entry["high"], digits)


def _evaluation_table(result: dict[str, Any], scheme: str, entry: dict[str, Any]) -> Table:
    title = (
        f"{result['task']}, {scheme.replace('_', ' ')}: {result['n_subjects']} subjects "
        f"(95% intervals over subjects; chance {result['chance']:.3f})"
    )
    table = Table(
        "model",
        "normalised likelihood",
        "NLL / decision",
        "accuracy",
        f"vs {entry['best']}: likelihood ratio",
        title=title,
    )
    models = sorted(entry["models"], key=lambda name: entry["models"][name]["nll"]["mean"])
    for name in models:
        s = entry["models"][name]
        versus = entry["versus_best"].get(name)
        table.add_row(
            name,
            _estimate(s["normalised_likelihood"]),
            _estimate(s["nll"]),
            _estimate(s["accuracy"]),
            "best" if versus is None else _estimate(versus["likelihood_ratio"]),
        )
    return table


def evaluation_lines(result: dict[str, Any]) -> list[str]:
    """Which model wins each scheme, by how much over the runner-up, against chance."""
    lines = []
    for scheme, entry in result["schemes"].items():
        best = entry["best"]
        scores = entry["models"]
        others = [n for n in scores if n not in (best, "chance")]
        text = (
            f"{scheme.replace('_', ' ')}: {best} wins with normalised likelihood "
            f"{_estimate(scores[best]['normalised_likelihood'])} (chance {result['chance']:.3f})"
        )
        if others:
            second = min(others, key=lambda n: scores[n]["nll"]["mean"])
            ratio = entry["versus_best"][second]["likelihood_ratio"]
            text += f"; runner-up {second} at {_estimate(ratio, 2)} of its likelihood per decision"
        lines.append(text + ".")
    return lines


@choices_app.command("explain")
def explain(
    data: Path = DataArg,
    task: str | None = TaskOpt,
    mapping: Path | None = MappingOpt,
    subject: str = typer.Option(..., "--subject", help="Subject id as in the file."),
    trial: int = typer.Option(..., "--trial", help="Trial number as in the file (1-based)."),
    kind: str | None = typer.Option(
        None, "--model", help="gru or transformer (default: the saved model's, else gru)."
    ),
    model_dir: Path | None = typer.Option(
        None,
        "--model-dir",
        help="A saved model of choice, or a run folder of choices fit --neural (else train).",
    ),
    updates: int = UpdatesOpt,
    top: int = typer.Option(3, "--top", help="Earlier trials named in the text."),
    steps: int = typer.Option(64, "--steps", help="Integration steps of integrated gradients."),
    seed: int = SeedOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Why the neural model predicts SUBJECT's choice on TRIAL: integrated gradients over the
    earlier trials, the Transformer's attention, the subject's Rescorla-Wagner fit and plain
    words. Trains the network on every subject unless --model-dir gives a saved one."""
    from noetik.explain.choices import explain_choice

    if kind is not None and kind not in ("gru", "transformer"):
        raise ConfigError(f"--model must be gru or transformer, got {kind!r}")
    if top < 1 or steps < 2:
        raise ConfigError(f"--top must be >= 1 and --steps >= 2, got {top}, {steps}")
    episodes, _ = _episodes(data, task, mapping)
    row, index = _subject_trial(episodes, subject, trial)
    if model_dir is not None:
        network = _saved_network(model_dir, kind)
        source = str(model_dir)
    else:
        network = _neural(kind or "gru", updates, seed).fit(episodes)
        source = f"trained here ({len(network.log.losses)} updates)"
    picked = episodes.select([row])
    cognitive = _rw_view(picked)
    e = explain_choice(network, picked, 0, index, cognitive=cognitive, top=top, n_steps=steps)
    if as_json:
        typer.echo(json.dumps({"model": network.name, "source": source, **e.as_dict()}, indent=2))
        return
    typer.echo(e.text)
    entries = e.as_dict(top=max(top, 5))["top"]
    if not entries:
        return
    table = Table("earlier trial", "attribution", "share", title=f"{network.name} ({source})")
    for entry in entries:
        bar = "#" * max(1, round(20 * entry["share"]))
        table.add_row(entry["trial"], f"{entry['attribution']:+.3f}", f"{entry['share']:.0%} {bar}")
    _OUT.print(table)


def _subject_trial(episodes: Any, subject: str, trial: int) -> tuple[int, int]:
    """``(row, index)`` of subject id ``subject`` and its trial numbered ``trial``."""
    if subject not in episodes.subjects:
        shown = ", ".join(episodes.subjects[:5]) + (", ..." if episodes.n_subjects > 5 else "")
        raise ConfigError(f"no subject {subject!r} in the file (subjects: {shown})")
    row = episodes.subjects.index(subject)
    n = int(episodes.n_trials[row])
    numbers = [int(t) for t in episodes.trial[row, :n]]
    if trial not in numbers:
        raise ConfigError(
            f"subject {subject} has no trial {trial} (trials {numbers[0]}-{numbers[-1]})"
        )
    return row, numbers.index(trial)


def _saved_network(folder: Path, kind: str | None) -> Any:
    """The neural model saved in ``folder`` (a model folder, or a run folder's
    ``neural/KIND``), checked to be of ``kind`` when given."""
    from noetik.agents.choice_nets import CONFIG_FILE, NeuralChoiceModel

    if not (folder / CONFIG_FILE).is_file():
        saved = folder / NEURAL_DIR
        kinds = sorted(p.name for p in saved.iterdir() if p.is_dir()) if saved.is_dir() else []
        if not kinds:
            raise ConfigError(f"{folder}: no saved model of choice (run choices fit --neural)")
        pick = kind or ("gru" if "gru" in kinds else kinds[0])
        if pick not in kinds:
            raise ConfigError(f"{folder}: no saved {pick} model (saved: {', '.join(kinds)})")
        folder = saved / pick
    network = NeuralChoiceModel.load(folder)
    if kind is not None and network.name != kind:
        raise ConfigError(f"{folder} holds a {network.name} model, not {kind}")
    return network


@choices_app.command("analyse")
def analyse(
    data: Path = DataArg,
    task: str | None = TaskOpt,
    mapping: Path | None = MappingOpt,
    level: int = typer.Option(0, "--level", help="Choice level analysed (0: the first)."),
    bins: int = typer.Option(10, "--bins", help="Trial bins of the learning curves."),
    best_by: str = typer.Option(
        "data", "--best-by", help="Best option by the mean outcome of all subjects or each own."
    ),
    boot: int = BootOpt,
    seed: int = SeedOpt,
    out: Path | None = typer.Option(
        None, "--out", help="Folder for behaviour.json and behaviour.png."
    ),
    as_json: bool = JsonOpt,
) -> None:
    """Win-stay/lose-shift, learning curves, perseveration and sensitivity to gains versus
    losses (and the two-step stay analysis), each with a 95 % interval over subjects."""
    from noetik.analysis.choices import (
        ChoiceAnalysisConfig,
        analyse_choices,
        behaviour_figure,
        behaviour_lines,
    )
    from noetik.utils.io import atomic_path, write_json

    if best_by not in ("data", "subject"):
        raise ConfigError(f"--best-by must be data or subject, got {best_by!r}")
    episodes, _ = _episodes(data, task, mapping)
    config = ChoiceAnalysisConfig(
        level=level,
        bins=bins,
        best_by="data" if best_by == "data" else "subject",
        n_boot=boot,
        seed=seed,
    )
    report = analyse_choices(episodes, config).as_dict()
    if out is not None:
        write_json(out / RUN_FILES["behaviour"], report)
        with atomic_path(out / "behaviour.png") as tmp:
            behaviour_figure(report).savefig(tmp, format="png", dpi=90)
        typer.echo(f"wrote {out / RUN_FILES['behaviour']} and {out / 'behaviour.png'}", err=True)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    for line in behaviour_lines(report):
        typer.echo(f"* {line}")


#: Task environment of each preset task.
TASK_ENVS = {
    "bandit2arm": "noetik/Bandit2Arm-v0",
    "bandit4arm": "noetik/Bandit4Arm-v0",
    "igt": "noetik/IowaGambling-v0",
    "two-step": "noetik/TwoStep-v0",
}


@choices_app.command("simulate")
def simulate_file(
    out: Path = typer.Argument(..., help="Choice file to write."),
    task: str | None = TaskOpt,
    mapping: Path | None = MappingOpt,
    model: str = typer.Option("rw", "--model", help="Cognitive model of the participants."),
    env: str | None = typer.Option(
        None, "--env", help="Task environment id (default: the preset task's)."
    ),
    subjects: int = typer.Option(20, "--subjects", help="Simulated participants."),
    trials: int = typer.Option(100, "--trials", help="Trials per participant."),
    seed: int = typer.Option(0, "--seed", help="Seed of parameters, tasks and choices."),
) -> None:
    """Participants of MODEL, parameters drawn from their typical ranges, playing the task's
    environment, written in the layout the mapping reads."""
    from noetik.agents.cognitive import simulate
    from noetik.evaluation.choices import sample_parameters
    from noetik.utils.io import write_text

    chosen = _mapping(task, mapping)
    env_id = env or TASK_ENVS.get(chosen.task)
    if env_id is None:
        raise ConfigError(f"no environment known for task '{chosen.task}'; give --env")
    if subjects < 1 or trials < 1:
        raise ConfigError(f"--subjects and --trials must be >= 1, got {subjects}, {trials}")
    (m,) = _models(chosen.design(), [model])
    params = sample_parameters(m, subjects, seed)
    episodes = simulate(m, params, env_id, seed=seed, n_trials=trials)
    if episodes.design.n_options != chosen.n_options:
        raise ConfigError(
            f"{env_id} offers {episodes.design.n_options} options, the mapping {chosen.n_options}"
        )
    write_text(out, _choice_file(episodes, chosen))
    typer.echo(f"wrote {out}: {subjects} subjects x {trials} trials of {m.name} in {env_id}")


def _choice_file(episodes: Any, mapping: Any) -> str:
    """The text of a choice file holding ``episodes`` in ``mapping``'s columns."""
    sep = mapping.separator
    header = [mapping.subject]
    if mapping.trial is not None:
        header.append(mapping.trial)
    header += list(mapping.choices)
    header += [mapping.reward] if mapping.reward is not None else [mapping.gain, mapping.loss]
    values = list(mapping.option_values) if episodes.option_values is not None else []
    header += values
    lines = [sep.join(header)]
    for s, subject in enumerate(episodes.subjects):
        for t in range(int(episodes.n_trials[s])):
            row = [subject]
            if mapping.trial is not None:
                row.append(str(t + 1))
            row += [str(int(c) + mapping.choice_base) for c in episodes.choices[s, t]]
            outcome = list(episodes.outcomes[s, t])
            if mapping.reward is None and not mapping.losses_are_negative:
                outcome[1] = -outcome[1]
            row += [f"{o:g}" for o in outcome]
            if values:
                row += [f"{v:.5g}" for v in episodes.option_values[s, t]]
            lines.append(sep.join(row))
    return "\n".join(lines) + "\n"


@choices_app.command("tags")
def tags(
    data_dir: Path | None = typer.Argument(
        None, help="KuaiRand folder (default: the built-in synthetic dataset)."
    ),
    log: str = typer.Option("log_standard", "--log", help="log_standard or log_random."),
    cache: Path | None = typer.Option(None, "--cache", help="Cache folder of typed copies."),
    max_users: int | None = typer.Option(
        None, "--max-users", help="Use a seeded sample of at most this many users."
    ),
    boot: int = typer.Option(1_000, "--boot", help="Bootstrap resamples of test users."),
    seed: int = SeedOpt,
    out: Path | None = typer.Option(None, "--out", help="Folder for tags.json."),
    as_json: bool = JsonOpt,
) -> None:
    """Does a user's long view of a tag follow their recent outcomes on it the way a
    Rescorla-Wagner learner predicts? Four models on held-out users, against shuffled order."""
    from noetik.analysis.choices.kuairand_tags import (
        TagLearningConfig,
        tag_learning,
        tag_learning_lines,
    )
    from noetik.data.dataset import load_kuairand
    from noetik.utils.io import write_json

    if log not in ("log_standard", "log_random"):
        raise ConfigError(f"--log must be log_standard or log_random, got {log!r}")
    config = TagLearningConfig(
        log="log_random" if log == "log_random" else "log_standard",
        max_users=max_users,
        n_boot=boot,
        seed=seed,
    )
    result = tag_learning(load_kuairand(data_dir, cache_dir=cache), config).as_dict()
    if out is not None:
        write_json(out / "tags.json", result)
        typer.echo(f"wrote {out / 'tags.json'}", err=True)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    for line in tag_learning_lines(result):
        typer.echo(f"* {line}")
