"""A run records its whole task and every command honours it; run folders you can trust.

Everything goes through the CLI as a user would: from another working directory, with damaged
and mistyped files, with concurrent writers and with an interrupt.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from noetik.agents.core.runs import read_run, run_lock, task_transitions
from noetik.agents.core.task import DataSource, EnvTask, TaskConfig, parse_reward
from noetik.cli.main import main
from noetik.data.rewards import RewardConfig
from noetik.errors import ConfigError

TINY_MLP = {"batch_size": 32, "encoder": {"kind": "mlp", "hidden": [32, 32]}}
LIKE = "is_like=1"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``project/data`` (synthetic KuaiRand), ``project/sim`` (fitted on it), ``project/other``
    and ``project/other_sim`` (other data), ``project/mlp.json`` (a tiny agent config), and
    ``project/runs/like``: BC trained on ``data`` with reward ``is_like``, simulator recorded,
    trained from ``project`` as the working directory with relative paths."""
    root = tmp_path_factory.mktemp("project")
    for name, seed in (("data", "0"), ("other", "1")):
        argv = ["data", "synth", str(root / name), "--users", "60", "--videos", "150"]
        assert main([*argv, "--seed", seed]) == 0
    for data, sim in (("data", "sim"), ("other", "other_sim")):
        argv = ["sim", "fit", str(root / data), "--out", str(root / sim), "--epochs", "1"]
        assert main(argv) == 0
    (root / "mlp.json").write_text(json.dumps(TINY_MLP))
    cwd = Path.cwd()
    os.chdir(root)
    try:
        argv = ["train", "bc", "--data", "data", "--steps", "6", "--out", "runs/like"]
        assert main([*argv, "--config", "mlp.json", "--reward", LIKE, "--sim", "sim"]) == 0
    finally:
        os.chdir(cwd)
    return root


def _train(project: Path, out: Path, *extra: str) -> int:
    argv = ["train", "bc", "--data", str(project / "data"), "--steps", "4", "--out", str(out)]
    return main([*argv, "--config", str(project / "mlp.json"), *extra])


def test_the_run_records_its_task_resolved(project: Path) -> None:
    run = project / "runs" / "like"
    task = json.loads((run / "task.json").read_text())
    assert task["reward"]["weights"] == {"is_like": 1.0}
    assert task["data"]["folder"] == str((project / "data").resolve())
    assert task["simulator"] == str((project / "sim").resolve())
    assert task["data"]["release"] == "pure"
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "done" and meta["steps_done"] == 6 and meta["algo"] == "bc"
    _, loaded = read_run(run)
    assert loaded.reward == RewardConfig((("is_like", 1.0),))


def test_evaluate_and_explain_use_the_tasks_reward_and_simulator(
    project: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # another working directory
    run = project / "runs" / "like"
    capsys.readouterr()
    assert main(["evaluate", str(run), "--users", "20", "--json"]) == 0
    entry = json.loads(capsys.readouterr().out)[0]
    # online lens: the simulator recorded in the task, the task's reward
    assert f"sim_dir={(project / 'sim').resolve()}" in entry["online_env"]
    assert "reward 1*is_like" in entry["online_env"]
    assert entry["online"]["return"]["mean"] == pytest.approx(
        entry["online"]["is_like_rate"]["mean"] * entry["online"]["length"]["mean"], rel=1e-6
    )
    # ope lens: the test split's logged value under reward is_like, not the default reward
    task = read_run(run)[1]
    test = task_transitions(task, "test")
    assert np.array_equal(test.reward, test.signals[:, 1])  # is_like is signal 1
    default = task_transitions(TaskConfig(task.data), "test")
    assert not np.array_equal(default.reward, test.reward)
    assert entry["ope"]["logged_value"]["mean"] <= 1.0 / (1.0 - 0.99)
    assert entry["task"].endswith("reward 1*is_like")
    # explain states what the agent was trained to maximise
    assert main(["explain", str(run), "--sample", "1", "--json"]) == 0
    explained = json.loads(capsys.readouterr().out)
    assert explained[0]["task_reward"] == "1*is_like"


def test_the_online_lens_never_falls_back_to_other_data(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "nosim"
    assert _train(project, out) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out), "--users", "10", "--no-ope", "--json"]) == 0
    entry = json.loads(capsys.readouterr().out)[0]
    assert entry["online"] == {}
    assert "noetik sim fit" in entry["notes"]["online"]
    argv = ["evaluate", str(out), "--users", "10", "--no-ope", "--json"]
    assert main([*argv, "--env-option", f"sim_dir={project / 'other_sim'}"]) == 0
    entry = json.loads(capsys.readouterr().out)[0]
    assert entry["online"] == {} and "was fitted on" in entry["notes"]["online"]
    assert main([*argv, "--env-option", f"sim_dir={project / 'sim'}"]) == 0
    entry = json.loads(capsys.readouterr().out)[0]
    assert entry["online"]["return"]["mean"] > 0  # the simulator fitted on the run's data
    assert main(["evaluate", str(out), "--users", "10", "--no-ope"]) == 0
    assert "no online lens" in capsys.readouterr().out


def test_runs_of_different_tasks_say_so(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    default = tmp_path / "default"
    assert _train(project, default, "--sim", str(project / "sim")) == 0
    capsys.readouterr()
    runs = [str(project / "runs" / "like"), str(default)]
    assert main(["evaluate", *runs, "--users", "10", "--no-ope"]) == 0
    out = capsys.readouterr().out
    assert "different tasks" in out
    assert "reward 1*is_like" in out and "reward 0.5*is_click + 0.5*watch_ratio" in out


def test_a_moved_project_keeps_working(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    moved = tmp_path / "moved"
    (moved / "runs").mkdir(parents=True)
    for name in ("data", "sim"):
        (moved / name).symlink_to(project / name)  # the data travels with the runs
    run = moved / "runs" / "like"
    subprocess.run(["cp", "-r", str(project / "runs" / "like"), str(run)], check=True)
    task = json.loads((run / "task.json").read_text())
    task["data"]["folder"] = "/nonexistent/data"  # as if the old location were gone
    task["simulator"] = "/nonexistent/sim"
    (run / "task.json").write_text(json.dumps(task))
    _, loaded = read_run(run)
    assert loaded.data.folder == str((moved / "data").resolve())
    assert main(["act", str(run), "--user", "3", "--k", "2", "--json"]) == 0


def test_train_reward_and_task_flags_are_validated(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(project, tmp_path / "a", "--reward", "is_clik=1") == 2
    err = capsys.readouterr().err
    assert "unknown signal 'is_clik'" in err and "watch_ratio" in err  # lists the valid names
    assert _train(project, tmp_path / "b", "--reward", "is_like") == 2
    assert "SIGNAL=WEIGHT" in capsys.readouterr().err
    task = tmp_path / "task.json"
    task.write_text(json.dumps({"reward": {"weights": {"is_like": "high"}}}))
    assert _train(project, tmp_path / "c", "--task", str(task)) == 2
    assert f"{task}: field 'reward.weights[0][1]' must be a number" in capsys.readouterr().err
    task.write_text(json.dumps({"reward": {"weights": {"long_view": 2.0}}, "train_rows": "all"}))
    assert _train(project, tmp_path / "d", "--task", str(task)) == 0
    _, loaded = read_run(tmp_path / "d")
    assert loaded.reward.as_dict() == {"long_view": 2.0} and loaded.train_rows == "all"
    assert parse_reward("is_click=0.5, watch_ratio=0.5") == RewardConfig()
    with pytest.raises(ConfigError, match="has its own reward"):
        TaskConfig(reward=parse_reward(LIKE), env=EnvTask("noetik/RECEnv-v0"))


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"lr": "fast"}, "'lr' must be a number"),
        ({"batch_size": "256"}, "'batch_size' must be int"),
        ({"encoder": {"hidden": 256}}, "'encoder.hidden' must be a list of int"),
        ({"encoder": {"kind": "rnn"}}, "'encoder.kind' must be one of"),
        ({"lr": 1e-3, "nope": 1}, "no field 'nope'"),
    ],
)
def test_mistyped_config_file_is_one_line(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], fields: dict, field: str
) -> None:
    config = tmp_path / "bad.json"
    config.write_text(json.dumps(fields))
    argv = ["train", "bc", "--data", str(project / "data"), "--out", str(tmp_path / "r")]
    assert main([*argv, "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert str(config) in err and field in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())


def _copy_run(project: Path, tmp_path: Path) -> Path:
    run = tmp_path / "copy"
    subprocess.run(["cp", "-r", str(project / "runs" / "like"), str(run)], check=True)
    return run


@pytest.mark.parametrize(
    "case",
    [
        ("config.json", lambda t: t.replace('"lr": 0.0003', '"lr": "fast"'), "field 'lr'"),
        ("run.json", lambda t: t[: len(t) // 2], "damaged run file"),
        ("run.json", lambda t: t.replace('"algo": "bc"', '"algo": 7'), "field 'algo'"),
        ("task.json", lambda t: t.replace('"mode": "session"', '"mode": 3'), "episodes.mode"),
        ("model.safetensors", None, "damaged or truncated safetensors"),
    ],
)
def test_damaged_run_files_are_one_line_errors(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: tuple[str, Any, str]
) -> None:
    name, damage, message = case
    run = _copy_run(project, tmp_path)
    path = run / name
    if damage is None:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # truncated
    else:
        path.write_text(damage(path.read_text()))
    for argv in (["act", str(run), "--user", "3"], ["report", str(run)], ["explain", str(run)]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and str(path) in err and "Traceback" not in err, (argv, err)
    assert not (run / "report.html").exists()


def test_a_truncated_checkpoint_stops_resume(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _copy_run(project, tmp_path)
    state = run / "checkpoint" / "train_state.safetensors"
    state.write_bytes(state.read_bytes()[:100])
    argv = ["train", "bc", "--data", str(project / "data"), "--steps", "8", "--out", str(run)]
    argv += ["--config", str(project / "mlp.json"), "--reward", LIKE, "--sim", str(project / "sim")]
    assert main([*argv, "--resume"]) == 2
    err = capsys.readouterr().err
    assert str(state) in err and "truncated" in err


def test_train_refuses_an_existing_run_unless_told(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert _train(project, out) == 0
    before = (out / "model.safetensors").read_bytes()
    assert main(["train", "dqn", "--data", str(project / "data"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--overwrite" in err and "--resume" in err
    assert (out / "model.safetensors").read_bytes() == before
    (out / "report.html").write_text("<html></html>")  # noetik report's default output
    assert _train(project, out, "--overwrite", "--seed", "3") == 0
    assert json.loads((out / "config.json").read_text())["config"]["seed"] == 3
    assert not (out / "report.html").exists()
    assert _train(project, out, "--resume", "--reward", LIKE) == 2
    assert "another task" in capsys.readouterr().err
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    assert _train(project, other, "--overwrite") == 2
    assert "notes.txt" in capsys.readouterr().err and (other / "notes.txt").is_file()


def test_a_second_writer_is_refused(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "busy"
    with run_lock(out):
        assert _train(project, out) == 2
        assert f"pid {os.getpid()}" in capsys.readouterr().err
    assert not (out / "run.json").exists()
    assert _train(project, out) == 0  # the lock is released


def test_resume_without_a_checkpoint_says_so(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _copy_run(project, tmp_path)
    subprocess.run(["rm", "-r", str(run / "checkpoint")], check=True)
    assert _train(project, run, "--resume", "--reward", LIKE, "--sim", str(project / "sim")) == 2
    assert "no checkpoint yet" in capsys.readouterr().err


def test_interrupt_saves_a_checkpoint_and_says_how_to_resume(project: Path, tmp_path: Path) -> None:
    out = tmp_path / "long"
    argv = [sys.executable, "-m", "noetik", "train", "bc", "--data", str(project / "data")]
    argv += ["--config", str(project / "mlp.json"), "--steps", "1000000", "--out", str(out)]
    env = {**os.environ, "NOETIK_PROGRESS_INTERVAL": "0"}
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    for line in proc.stderr:  # wait until updates run
        if "BCAgent (updates): " in line and "/1,000,000" in line and not line.count(": 0/"):
            break
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    err = proc.stderr.read()
    assert proc.wait(timeout=120) == 130
    assert "interrupted after update" in err and "--resume" in err and "Traceback" not in err
    meta = json.loads((out / "run.json").read_text())
    assert meta["status"] == "interrupted" and meta["steps_done"] >= 1
    trainer = json.loads((out / "checkpoint" / "trainer.json").read_text())
    assert trainer["step"] == meta["steps_done"]
    resume = ["train", "bc", "--data", str(project / "data"), "--out", str(out), "--resume"]
    steps = str(meta["steps_done"] + 2)
    assert main([*resume, "--config", str(project / "mlp.json"), "--steps", steps]) == 0
    assert json.loads((out / "run.json").read_text())["status"] == "done"


def test_negative_user_is_refused(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("act", "explain"):
        assert main([command, str(project / "runs" / "like"), "--user", "-7"]) == 2
        assert "non-negative user id, got -7" in capsys.readouterr().err


def test_long_steps_print_timed_lines_in_logs(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOETIK_PROGRESS_INTERVAL", "0")
    run = str(project / "runs" / "like")
    assert main(["evaluate", run, "--users", "10", "--no-ope", "--json"]) == 0
    err = capsys.readouterr().err  # stderr is not a terminal here
    assert "Evaluating runs: 1/1 (100%)" in err and "elapsed" in err
    assert "like: online lens: 1/1 (100%)" in err


def test_train_help_says_what_steps_count(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "gradient updates" in text and "rollout iterations" in text


def test_task_json_round_trip(tmp_path: Path) -> None:
    task = TaskConfig(DataSource(str(tmp_path)), reward=parse_reward("is_like=1,is_hate=-2"))
    assert TaskConfig.from_json(task.to_json(), "x") == task
    assert TaskConfig.from_json(json.loads(json.dumps(task.to_json(tmp_path))), "x") == task


def test_the_leaderboard_table_never_prints_a_mean_outside_its_interval() -> None:
    from rich.console import Console

    from noetik.cli.evaluate import _table

    coverage = {"mean": 0.0075, "low": 0.0075, "high": 0.0075}  # was "0.007 [0.008, 0.008]"
    narrow = {"mean": 0.00755, "low": 0.0075, "high": 0.0076}
    entry = {"run": "r", "algo": "bc", "online": {"coverage": coverage, "return": narrow}}
    console = Console(width=200, record=True)
    console.print(_table([entry], "t"))
    text = console.export_text()
    assert "│ 0.0075 " in text  # a degenerate interval (a count, a diagnostic) prints its value
    printed = re.search(r"([0-9.]+) \[([0-9.]+), ([0-9.]+)\]", text)
    assert printed is not None
    mean, low, high = (float(x) for x in printed.groups())
    assert low <= mean <= high


def test_online_training_shows_iterations_and_env_steps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOETIK_PROGRESS_INTERVAL", "0")
    config = tmp_path / "ppo.json"
    config.write_text(json.dumps({"n_steps": 4, "batch_size": 16, "encoder": {"hidden": [16]}}))
    argv = ["train", "ppo", "--env", "noetik/RECEnv-v0", "--num-envs", "8", "--steps", "2"]
    assert main([*argv, "--config", str(config), "--out", str(tmp_path / "ppo")]) == 0
    err = capsys.readouterr().err
    assert "PPOAgent (rollout iterations): 2/2 (100%)" in err
    assert "64 env steps" in err  # 2 iterations x 4 steps x 8 users
    task = json.loads((tmp_path / "ppo" / "task.json").read_text())
    assert task["env"]["id"] == "noetik/RECEnv-v0" and task["env"]["num_envs"] == 8


def test_an_online_run_is_evaluated_where_it_learned(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "ppo.json"
    config.write_text(json.dumps({"n_steps": 2, "batch_size": 16, "encoder": {"hidden": [16]}}))
    out = tmp_path / "ppo"
    argv = ["train", "ppo", "--env", "noetik/KuaiRand-v0", "--num-envs", "8", "--steps", "1"]
    argv += ["--env-option", f"sim_dir={project / 'sim'}", "--reward", LIKE]
    assert main([*argv, "--config", str(config), "--out", str(out)]) == 0
    capsys.readouterr()
    evaluate = ["evaluate", str(out), "--users", "10", "--json"]
    assert main(evaluate) == 0
    entry = json.loads(capsys.readouterr().out)[0]
    assert "reward 1*is_like" in entry["online_env"] and entry["online"]["return"]
    assert entry["ope"] == {}  # learned in a simulator: no logged test split
    assert main([*evaluate, "--env-option", f"sim_dir={project / 'other_sim'}"]) == 0
    entry = json.loads(capsys.readouterr().out)[0]
    assert entry["online"] == {} and "another environment" in entry["notes"]["online"]


def test_decision_states_summarise_the_tasks_window_and_hold_the_encoders(project: Path) -> None:
    from noetik.agents.core.recommend import user_states, window_states
    from noetik.agents.core.runs import task_dataset

    task = TaskConfig(DataSource(str(project / "data")))
    ds = task_dataset(task)
    t = task_transitions(task, None, ds)
    ids = np.unique(t.user_id)[:3]
    mixed = window_states(ds, t, ids, 10, 4)
    assert np.array_equal(mixed.obs, user_states(ds, t, ids, 10).obs)  # as in training
    for got, want in zip(mixed.history, user_states(ds, t, ids, 4).history, strict=True):
        assert np.array_equal(got, want)
    assert mixed.history[0].shape == (3, 4)
    assert not np.array_equal(mixed.obs, user_states(ds, t, ids, 4).obs)


def test_a_silent_long_step_still_prints_in_logs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from noetik.utils.progress import make_progress

    monkeypatch.setenv("NOETIK_PROGRESS_INTERVAL", "1")
    with make_progress() as progress:  # stderr is not a terminal under pytest
        task = progress.add_task("one lens", total=1)
        time.sleep(2.5)  # no update of its own meanwhile
        progress.update(task, completed=1)
    lines = capsys.readouterr().err.splitlines()
    assert any(line.startswith("one lens: 0/1 (0%)") for line in lines)  # the heartbeat
    assert lines[-1].startswith("one lens: 1/1 (100%)")
