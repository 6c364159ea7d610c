"""Sweeps (``noetik sweep``, :mod:`noetik.analysis.sweeps`) in this process: the config and
its grid, one-line errors for bad input, a two-trial sweep without Ray (nothing imports it),
reuse of finished trials, failed trials named, the Pareto front and atomic results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from noetik.analysis.sweeps import SweepConfig, SweepFailed, load_sweep_config, plan_trials
from noetik.analysis.sweeps import results as results_module
from noetik.analysis.sweeps import trial as trial_module
from noetik.analysis.sweeps.pareto import pareto_front
from noetik.analysis.sweeps.results import RESULT_FILES, markdown_table
from noetik.analysis.sweeps.runner import run_sweep
from noetik.cli.main import main
from noetik.errors import ConfigError
from noetik.reports.extra_sections import tradeoff_section
from tests.conftest import REPO

#: A tiny sweep: two weights, tiny Transformer, few updates, few users and decisions.
TINY = """
data = "{data}"
simulator = "{sim}"
steps = 8
weights = [0.0, 1.0]

[agent]
batch_size = 16
item_embed_dim = 8
encoder = {{ kind = "transformer", d_model = 8, n_heads = 2, n_layers = 1, history_len = 4 }}

[measure]
users = 12
decisions = 8
ig_steps = 4
faithfulness_bootstrap = 10
"""


def tiny_config(tmp_path: Path, sim_dir: str, extra: str = "", name: str = "tiny.toml") -> Path:
    """A tiny sweep config file beside ``tmp_path`` using the session's tiny simulator."""
    text = TINY.format(data=Path(sim_dir).parent / "data", sim=sim_dir) + extra
    path = tmp_path / name
    path.write_text(text)
    return path


def test_config_resolves_paths_and_spans_the_grid(tmp_path: Path) -> None:
    (tmp_path / "cfg").mkdir()
    path = tmp_path / "cfg" / "grid.toml"
    path.write_text(
        'data = "../data"\nsimulator = "sim"\nseeds = [0, 1]\nweights = [0.0, 0.5]\n'
        '[agent]\nencoder = { kind = "transformer" }\n'
        '[grid]\ntemperature = [3.0, 10.0]\n"encoder.n_layers" = [1, 2]\n'
    )
    config = load_sweep_config(path)
    assert config.data == str((tmp_path / "data").resolve())
    assert config.simulator == str((tmp_path / "cfg" / "sim").resolve())
    trials = plan_trials(config, "/sim")
    assert len(trials) == 2 * 2 * 2 * 2
    names = {t.name for t in trials}
    assert "attention_entropy-0.5_temperature-10_n_layers-2_seed-1" in names
    for t in trials:
        agent = t.agent_config()
        assert agent.seed == t.seed
        assert agent.interpretability.attention_entropy == t.weight
        assert agent.temperature == t.params["temperature"]  # type: ignore[attr-defined]
        assert agent.encoder.n_layers == t.params["encoder.n_layers"]
        assert agent.encoder.kind == "transformer"
    # the same config as JSON gives the same trials
    as_json = tmp_path / "cfg" / "grid.json"
    as_json.write_text(json.dumps({**config.to_json(), "simulator": "sim"}))
    assert plan_trials(load_sweep_config(as_json), "/sim") == trials


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('data = "d"\nsteps = "many"', r"bad.toml: field 'steps' must be int, got 'many'"),
        ('data = "d"\nsteep = 3', r"bad.toml: SweepConfig has no field 'steep'"),
        ('data = "d"\nweights = []', r"bad.toml: field 'weights' must be a non-empty list"),
        ('data = "d"\nterm = "sparsity"', r"bad.toml: field 'term' must be one of"),
        ('data = "d"\n[agent]\nseed = 3', r"bad.toml: the seed is not an agent field"),
        ('data = "d"\n[grid]\nlr = 0.1', r"bad.toml: field 'grid.lr' must be a non-empty list"),
        ("data = [", r"bad.toml: not valid TOML"),
    ],
)
def test_a_bad_config_is_one_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_sweep_config(path)


def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    tmp_path: Path, sim_dir: str, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    # a grid value the algorithm refuses: named by file and trial, found before any writing
    config = tiny_config(tmp_path, sim_dir, "[grid]\nexpectile = [0.5, 1.5]\n")
    assert main(["sweep", str(config), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith(f"error: {config}: trial 'attention_entropy-0_expectile-1.5_seed-0'")
    assert "expectile must be in (0, 1)" in err
    missing = tmp_path / "nowhere.toml"
    assert main(["sweep", str(missing), "--out", str(out)]) == 2
    assert "nowhere.toml: cannot read sweep config" in capsys.readouterr().err
    no_data = tmp_path / "no-data.toml"
    no_data.write_text('data = "absent"\n')
    assert main(["sweep", str(no_data), "--out", str(out)]) == 2
    assert "field 'data': no such folder" in capsys.readouterr().err
    assert not out.exists()


def test_local_sweep_imports_no_ray_and_writes_one_table(tmp_path: Path, sim_dir: str) -> None:
    config = tiny_config(tmp_path, sim_dir)
    out = tmp_path / "sweep"
    code = (
        "import sys\nfrom noetik.cli.main import main\n"
        f"status = main(['sweep', {str(config)!r}, '--out', {str(out)!r}])\n"
        "assert status == 0, status\n"
        "assert 'ray' not in sys.modules, 'the local sweep imported Ray'\n"
        # every trial is finished: --ray reuses them all and starts no Ray
        f"assert main(['sweep', {str(config)!r}, '--out', {str(out)!r}, '--ray']) == 0\n"
        "assert 'ray' not in sys.modules, 'a finished sweep started Ray'\n"
    )
    env = {"PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| attention_entropy weight | return |" in done.stdout
    for name in (*RESULT_FILES, "sweep.json"):
        assert (out / name).is_file(), name
    rows = json.loads((out / "results.json").read_text())
    assert [r["weight"] for r in rows] == [0.0, 1.0]
    for r in rows:
        run = out / r["run"]
        assert (run / "run.json").is_file() and (run / "metrics.csv").is_file()
        assert (run / "config.json").is_file() and (run / "task.json").is_file()
        assert json.loads((run / "run.json").read_text())["status"] == "done"
        assert r["return"]["low"] <= r["return"]["mean"] <= r["return"]["high"]
        assert 0 < r["attention_entropy"] <= np.log(4) + 1e-6
        assert 0 < r["ig_top3_share"] <= 1
        assert r["deletion_auc"] is not None
    # a rerun reuses the finished trials: nothing is trained again, the results are the same
    stamps = {r["run"]: (out / r["run"] / "model.safetensors").stat().st_mtime_ns for r in rows}
    again = run_sweep(load_sweep_config(config), out)
    for row, outcome in zip(rows, again.outcomes, strict=True):
        assert outcome["metrics"] == {k: row[k] for k in outcome["metrics"]}
    assert stamps == {
        r["run"]: (out / r["run"] / "model.safetensors").stat().st_mtime_ns for r in rows
    }
    # ... and a changed config does not reuse them: the trial is named with the reason
    changed = tiny_config(tmp_path, sim_dir, name="changed.toml").read_text()
    (tmp_path / "changed.toml").write_text(changed.replace("steps = 8", "steps = 9"))
    with pytest.raises(SweepFailed, match=r"trial 'attention_entropy-0_seed-0' failed: .*records"):
        run_sweep(load_sweep_config(tmp_path / "changed.toml"), out)


def test_failed_trials_are_named_in_one_line(
    tmp_path: Path,
    sim_dir: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(trial_module, "train_run", broken)
    out = tmp_path / "out"
    assert main(["sweep", str(tiny_config(tmp_path, sim_dir)), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "trial 'attention_entropy-0_seed-0' failed: RuntimeError: boom (traceback: " in err
    assert "trial 'attention_entropy-1_seed-0' failed: RuntimeError: boom" in err
    assert "2 of 2 trials failed" in err
    assert "second line" in (out / "trials" / "attention_entropy-0_seed-0.error.txt").read_text()
    assert not any((out / name).exists() for name in RESULT_FILES)


def test_pareto_front_known_answer() -> None:
    ret = np.array([1.0, 0.8, 0.7, 1.0, 0.9])
    cost = np.array([2.0, 1.0, 1.5, 2.5, 1.0])
    # 0: best return at lowest cost of the best; 1 and 4 tie on cost, 4 has more return
    assert pareto_front(ret, cost).tolist() == [True, False, False, False, True]
    rows = [
        {
            "trial": f"t{i}",
            "term": "attention_entropy",
            "weight": float(i),
            "seed": 0,
            "return": {"mean": r, "low": r - 0.1, "high": r + 0.1},
            "attention_entropy": c,
            "ig_top3_share": 0.5,
            "agreement_spearman": 0.1,
            **dict.fromkeys(
                ("deletion_auc", "random_deletion_auc", "insertion_auc", "random_insertion_auc")
            ),
        }
        for i, (r, c) in enumerate(zip(ret, cost, strict=True))
    ]
    table = markdown_table(rows, [])
    marked = [line.endswith("| yes |") for line in table.splitlines()[2:]]
    assert marked == [True, False, False, False, True]
    assert "seed" not in table.splitlines()[0]  # one seed: no column for it


def test_results_are_written_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = SweepConfig(data=str(tmp_path), weights=(0.0, 1.0))
    trials = plan_trials(config, "/sim")
    metrics = {
        "return": {"mean": 1.0, "low": 0.5, "high": 1.5},
        "attention_entropy": 1.0,
        "ig_top3_share": 0.5,
        "agreement_spearman": 0.2,
        **dict.fromkeys(
            ("deletion_auc", "random_deletion_auc", "insertion_auc", "random_insertion_auc")
        ),
    }
    outcomes = [
        {"trial": t.name, "metrics": metrics, "train_s": 1.0, "eval_s": 1.0} for t in trials
    ]
    paths = results_module.write_results(tmp_path, trials, outcomes, "title")
    before = {p.name: p.read_bytes() for p in paths}
    assert (tmp_path / "results.csv").read_text().splitlines()[0].startswith("trial,term,weight")
    # noetik report --tradeoff reads the sweep folder: one table (not the CSV again), the plot
    section = tradeoff_section(SimpleNamespace(inputs=SimpleNamespace(tradeoff_dir=tmp_path)))
    assert "results.json" in section and "results.csv" not in section
    assert section.count("<table") == 1 and section.count("<img") == 1
    assert "Pareto (return vs entropy)" in section

    def failing_plot(*args: object) -> bytes:
        raise RuntimeError("plot failed")

    monkeypatch.setattr(results_module, "pareto_png", failing_plot)
    with pytest.raises(RuntimeError, match="plot failed"):
        results_module.write_results(tmp_path, trials, outcomes[::-1], "title")
    assert {p.name: p.read_bytes() for p in paths} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(before)  # no temporary left


def test_the_example_config_is_valid() -> None:
    config = load_sweep_config(REPO / "examples" / "sweep.toml")
    assert config.data == str((REPO / "results" / "agents" / "data").resolve())
    trials = plan_trials(config, "/sim")
    assert len(trials) == len(config.seeds) * len(config.weights) * 2
    assert {t.agent_config().encoder.kind for t in trials} == {"transformer"}
