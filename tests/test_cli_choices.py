"""``noetik choices`` as a user runs it: from a temporary working folder, on simulated and
real files, with one-line errors for bad mappings and unknown columns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from noetik.agents.cognitive import RescorlaWagner, simulate
from noetik.cli.main import main

TASKS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "decision-tasks"


def _bandit_file(path: Path, subjects: int = 8, trials: int = 60) -> Path:
    """A two-armed bandit file in hBayesDM's layout, played by Rescorla-Wagner learners."""
    params = np.column_stack([np.linspace(0.2, 0.6, subjects), np.linspace(2.0, 6.0, subjects)])
    episodes = simulate(RescorlaWagner(), params, "noetik/Bandit2Arm-v0", n_trials=trials, seed=0)
    lines = ["subjID\ttrial\tchoice\toutcome"]
    for s in range(subjects):
        for t in range(trials):
            c, o = episodes.choices[s, t, 0] + 1, episodes.outcomes[s, t, 0]
            lines.append(f"{s + 1}\t{t + 1}\t{c}\t{o:g}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    _bandit_file(tmp_path / "bandit.txt")
    return tmp_path


def test_info_fit_evaluate_analyse(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["choices", "info", "bandit.txt", "--task", "bandit2arm", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["subjects"] == 8 and info["trials"] == 480 and info["n_options"] == [2]
    assert info["outcomes"]["reward"]["positive"] + info["outcomes"]["reward"]["negative"] == 1.0

    fit = ["choices", "fit", "bandit.txt", "--task", "bandit2arm", "--out", "run"]
    fit += ["--model", "rw", "--model", "wsls", "--restarts", "2", "--recovery", "6"]
    assert main([*fit, "--recovery-trials", "40", "--boot", "200"]) == 0
    out = capsys.readouterr().out
    assert "ΔAIC" in out and "recovery of rw" in out
    run = workdir / "run"
    assert sorted(p.name for p in run.iterdir()) == [
        "behaviour.json",
        "choices.json",
        "fits.json",
        "recovery.json",
    ]
    config = json.loads((run / "choices.json").read_text())
    assert config["kind"] == "choices" and config["models"] == ["rw", "wsls"]
    fits = json.loads((run / "fits.json").read_text())
    assert np.array(fits["models"]["rw"]["subjects"]["params"]).shape == (8, 2)
    assert fits["best"]["subjects_aic"] in ("rw", "wsls")
    recovery = json.loads((run / "recovery.json").read_text())
    assert np.array(recovery["rw"]["true"]).shape == (6, 2)

    evaluate = ["choices", "evaluate", "bandit.txt", "--task", "bandit2arm", "--model", "rw"]
    evaluate += ["--model", "wsls", "--restarts", "2", "--boot", "200", "--out", "run"]
    assert main([*evaluate, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for scheme in ("leave_subjects_out", "later_trials"):
        models = result["schemes"][scheme]["models"]
        assert set(models) == {"rw", "wsls", "chance"}
        for scores in models.values():
            for figure in ("nll", "normalised_likelihood", "accuracy"):
                assert set(scores[figure]) == {"mean", "low", "high"}
        assert models["chance"]["normalised_likelihood"]["mean"] == pytest.approx(0.5)
    lso = result["schemes"]["leave_subjects_out"]
    assert lso["best"] == "rw"  # the generating model predicts new subjects best
    assert lso["models"]["rw"]["normalised_likelihood"]["low"] > 0.5
    assert (workdir / "run" / "evaluation.json").is_file()
    assert main([*evaluate[:-2], "--folds", "3"]) == 0
    assert "rw wins" in capsys.readouterr().out

    assert main(["choices", "analyse", "bandit.txt", "--task", "bandit2arm", "--out", "an"]) == 0
    assert "Win-stay" in capsys.readouterr().out
    assert (workdir / "an" / "behaviour.png").read_bytes().startswith(b"\x89PNG")


def test_neural_fit_evaluate_and_explain(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A user trains the GRU into a run folder, evaluates it beside RW held out, and asks why
    it predicts subject 3's trial 40, from the saved network and from a freshly trained one."""
    base = ["bandit.txt", "--task", "bandit2arm", "--model", "rw", "--restarts", "1"]
    base += ["--boot", "100", "--neural", "gru", "--updates", "30"]
    assert main(["choices", "fit", *base, "--out", "run", "--recovery", "0", "--json"]) == 0
    fits = json.loads(capsys.readouterr().out)["fits"]
    gru = fits["neural"]["gru"]
    assert gru["folder"] == "neural/gru" and 0 < gru["nll_per_decision"] < 1.0
    assert 0 < gru["updates"] <= 30 and gru["best_update"] <= gru["updates"]
    run = workdir / "run"
    assert {p.name for p in (run / "neural" / "gru").iterdir()} == {
        "choice_model.json",
        "weights.safetensors",
    }
    explained = json.loads((run / "explanations.json").read_text())["gru"]
    assert [e["subject"] for e in explained] == ["1", "2", "3"]
    assert all(e["trial"] == 60 and e["cognitive"]["model"] == "rw" for e in explained)
    assert json.loads((run / "choices.json").read_text())["neural"]["gru"]["updates"] == 30

    assert main(["choices", "evaluate", *base, "--folds", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["config"]["neural"]["gru"]["kind"] == "gru"
    for scheme in ("leave_subjects_out", "later_trials"):
        models = result["schemes"][scheme]["models"]
        assert set(models) == {"rw", "gru", "chance"}
        for figure in ("nll", "normalised_likelihood", "accuracy"):
            entry = models["gru"][figure]
            assert set(entry) == {"mean", "low", "high"}
            assert entry["low"] <= entry["mean"] <= entry["high"]

    explain = ["choices", "explain", "bandit.txt", "--task", "bandit2arm", "--subject", "3"]
    assert main([*explain, "--trial", "40", "--model-dir", "run", "--json"]) == 0
    e = json.loads(capsys.readouterr().out)
    assert e["model"] == "gru" and e["source"] == "run" and e["trial"] == 40
    assert e["text"].startswith("Subject 3, trial 40: the gru model predicts option ")
    assert "Most of it came from trial " in e["text"] and "The fitted rw model" in e["text"]
    assert len(e["attribution"]["per_trial"]) == 39 and e["attention"] is None
    assert sum(e["attribution"]["shares"]) == pytest.approx(1.0)
    # the same network loaded from its own folder explains the same way
    assert main([*explain, "--trial", "40", "--model-dir", "run/neural/gru", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == e["text"]

    trained = [*explain, "--trial", "5", "--model", "transformer", "--updates", "10"]
    assert main(trained) == 0
    out = capsys.readouterr().out
    assert "Subject 3, trial 5: the transformer model predicts" in out
    assert "The transformer attended most to trial" in out and "earlier trial" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--subject", "99", "--trial", "3"], "no subject '99' in the file"),
        (["--subject", "3", "--trial", "61"], "subject 3 has no trial 61 (trials 1-60)"),
        (["--subject", "3", "--trial", "0"], "has no trial 0"),
        (["--subject", "3", "--trial", "2", "--model", "lstm"], "gru or transformer"),
        (["--subject", "3", "--trial", "2", "--model-dir", "nowhere"], "no saved model"),
    ],
)
def test_explain_errors_are_one_line(
    workdir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    base = ["choices", "explain", "bandit.txt", "--task", "bandit2arm", "--updates", "2"]
    assert main([*base, *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_custom_mapping_file(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (workdir / "bandit.txt").read_text().replace("\t", ",").replace("outcome", "payoff")
    (workdir / "prl.csv").write_text(text)
    (workdir / "prl.toml").write_text(
        'task = "reversal"\ntrial = "trial"\nreward = "payoff"\nseparator = ","\n'
    )
    assert main(["choices", "analyse", "prl.csv", "--mapping", "prl.toml", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["task"] == "reversal" and report["n_subjects"] == 8


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--task", "bandit2arm", "--mapping", "m.toml"], "exactly one of --task"),
        ([], "exactly one of --task"),
        (["--task", "bandit9arm"], "unknown task preset 'bandit9arm'"),
        (["--mapping", "bad.toml"], "not valid TOML"),
        (["--mapping", "typo.toml"], "typo.toml"),
        (["--mapping", "column.toml"], "'payoff'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    workdir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    (workdir / "bad.toml").write_text('task = "x"\nreward = \n')
    (workdir / "typo.toml").write_text('task = "x"\nreward = "outcome"\nrewrd = 1\n')
    (workdir / "column.toml").write_text('task = "x"\nreward = "payoff"\n')
    assert main(["choices", "info", "bandit.txt", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_other_errors(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["bandit.txt", "--task", "bandit2arm"]
    assert main(["choices", "info", "nope.txt", "--task", "bandit2arm"]) == 2
    assert main(["choices", "evaluate", *base, "--model", "hybrid"]) == 2
    assert main(["choices", "evaluate", *base, "--model", "nope"]) == 2
    assert main(["choices", "fit", *base, "--out", "r", "--recovery", "2"]) == 2
    assert main(["choices", "analyse", *base, "--level", "1"]) == 2
    assert main(["choices", "evaluate", *base, "--neural", "lstm"]) == 2
    assert main(["choices", "fit", *base, "--out", "r", "--neural", "gru,gru"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 7 and all(e.startswith("error: ") for e in errors)
    assert "does not apply to task 'bandit2arm'" in errors[1]
    assert not (workdir / "r").exists()


def test_tags_on_synthetic_kuairand(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    synth = ["data", "synth", "kr", "--users", "40", "--videos", "120", "--seed", "1"]
    assert main(synth) == 0
    capsys.readouterr()
    argv = ["choices", "tags", "kr", "--cache", "cache", "--boot", "100", "--out", "t"]
    assert main([*argv, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["delta"]["tag_rw - tag_base_rate"]) == {"mean", "low", "high"}
    assert (workdir / "t" / "tags.json").is_file()
    assert main(["choices", "tags", "kr", "--cache", "cache", "--log", "nope"]) == 2


def test_real_two_armed_bandit_through_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    path = TASKS / "bandit2arm_exampleData.txt"
    if not path.is_file():
        pytest.skip(f"hBayesDM example data not found at {TASKS}")
    argv = ["choices", "evaluate", str(path), "--task", "bandit2arm", "--model", "rw"]
    assert main([*argv, "--model", "wsls", "--restarts", "2", "--boot", "300", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    lso = result["schemes"]["leave_subjects_out"]["models"]
    assert lso["rw"]["normalised_likelihood"]["low"] > 0.5  # beats chance on new subjects
    assert lso["rw"]["nll"]["mean"] < lso["wsls"]["nll"]["mean"]


@pytest.mark.parametrize(
    ("task", "model"),
    [
        ("bandit2arm", "rw"),
        ("bandit4arm", "rw_gain_loss"),
        ("igt", "pvl_delta"),
        ("two-step", "hybrid"),
    ],
)
def test_simulated_files_read_back_through_the_preset(
    workdir: Path, capsys: pytest.CaptureFixture[str], task: str, model: str
) -> None:
    argv = ["choices", "simulate", "sim.txt", "--task", task, "--model", model]
    assert main([*argv, "--subjects", "3", "--trials", "25"]) == 0
    capsys.readouterr()
    assert main(["choices", "info", "sim.txt", "--task", task, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["subjects"] == 3 and info["trials"] == 75
    assert bool(info["extras"]["option_values"]) == (task == "two-step")


def test_simulate_needs_an_environment_for_a_custom_task(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "m.toml").write_text('task = "mine"\nreward = "outcome"\n')
    assert main(["choices", "simulate", "x.txt", "--mapping", "m.toml"]) == 2
    assert "give --env" in capsys.readouterr().err
    argv = ["choices", "simulate", "x.txt", "--mapping", "m.toml", "--env"]
    assert main([*argv, "noetik/ReversalLearning-v0", "--trials", "20"]) == 0
    assert main(["choices", "info", "x.txt", "--mapping", "m.toml"]) == 0
