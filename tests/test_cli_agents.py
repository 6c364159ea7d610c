"""End to end through the CLI with tiny budgets: synth -> sim fit -> train -> act -> evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from noetik.cli.main import main

TINY_TRANSFORMER = {
    "batch_size": 32,
    "encoder": {"kind": "transformer", "d_model": 16, "n_heads": 2, "n_layers": 1},
}
TINY_MLP = {"batch_size": 32, "encoder": {"kind": "mlp", "hidden": [32, 32]}}


def test_train_act_evaluate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, cache, sim = tmp_path / "data", tmp_path / "cache", tmp_path / "sim"
    assert main(["data", "synth", str(data), "--users", "60", "--videos", "150"]) == 0
    heldout = tmp_path / "heldout.csv"
    assert (
        main(
            [
                "sim",
                "fit",
                str(data),
                "--cache",
                str(cache),
                "--out",
                str(sim),
                "--epochs",
                "1",
                "--holdout-log",
                str(heldout),
            ]
        )
        == 0
    )
    configs = {"iql": TINY_TRANSFORMER, "bc": TINY_MLP}
    for algo, fields in configs.items():
        (tmp_path / f"{algo}.json").write_text(json.dumps(fields))
        config = str(tmp_path / f"{algo}.json")
        argv = [
            "train",
            algo,
            "--data",
            str(data),
            "--cache",
            str(cache),
            "--steps",
            "4",
            "--out",
            str(tmp_path / algo),
            "--config",
            config,
        ]
        assert main(argv) == 0
        assert (tmp_path / algo / "model.safetensors").is_file()
        assert (tmp_path / algo / "metrics.csv").is_file()
    capsys.readouterr()
    assert main(["act", str(tmp_path / "iql"), "--user", "3", "--k", "4", "--json"]) == 0
    recs = json.loads(capsys.readouterr().out)
    assert recs[0]["user_id"] == 3
    scores = [item["score"] for item in recs[0]["items"]]
    assert len(scores) == 4 and scores == sorted(scores, reverse=True)
    runs = [str(tmp_path / algo) for algo in configs]
    argv = [
        "evaluate",
        *runs,
        "--env-option",
        f"sim_dir={sim}",
        "--users",
        "40",
        "--json",
        "--random-log",
        str(heldout),
        "--out",
        str(tmp_path / "board"),
    ]
    assert main(argv) == 0
    board = json.loads(capsys.readouterr().out)
    assert [entry["algo"] for entry in board] == ["iql", "bc", "reference", "reference"]
    assert [e["run"] for e in board[2:]] == ["reference:popularity", "reference:random"]
    for entry in board[:2]:  # every lens, every metric as {"mean", "low", "high"}
        for lens in ("online", "ope", "random_log"):
            assert entry[lens], lens
            for value in entry[lens].values():
                assert set(value) == {"mean", "low", "high"}
                assert value["low"] <= value["mean"] <= value["high"]
        assert 0.0 <= entry["random_log"]["click_auc"]["mean"] <= 1.0
        assert entry["ope"]["logged_value"]["mean"] > 0.0
    ret = board[0]["online"]["return"]
    assert ret["low"] <= ret["mean"] <= ret["high"]
    assert board[0]["online"]["length"]["mean"] == 10.0
    assert (tmp_path / "board" / "leaderboard.csv").read_text().startswith("run,algo,lens")


def test_unknown_algo_and_bad_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "sarsa", "--out", str(tmp_path / "x")]) == 2
    assert "unknown ALGO 'sarsa'" in capsys.readouterr().err
    assert main(["act", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_ope_check_prints_the_validation_table(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "evaluate",
        "--ope-check",
        "--env",
        "noetik/RECEnv-v0",
        "--ope-datasets",
        "2",
        "--ope-episodes",
        "100",
        "--json",
    ]
    assert main(argv) == 0
    rows = json.loads(capsys.readouterr().out)
    expected = {"IS", "WIS", "PDIS", "WPDIS", "DR", "DM", "MIPS", "SNMIPS"}
    assert {r["estimator"] for r in rows} == expected
    assert all(r["n_datasets"] == 2 and r["n_episodes"] == 100 for r in rows)
    assert all(r["true_value"] > 0 for r in rows)
    assert main(["evaluate", "--ope-check", "--env", "noetik/Nope-v0"]) == 2
    assert main(["evaluate"]) == 2
    assert "RUN_DIR" in capsys.readouterr().err


def test_analyse_prints_findings_and_writes_tables(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    assert main(["data", "synth", str(data), "--users", "60", "--videos", "150"]) == 0
    capsys.readouterr()
    argv = [
        "analyse",
        str(data),
        "--cache",
        str(tmp_path / "cache"),
        "--boot",
        "20",
        "--out",
        str(tmp_path / "out"),
    ]
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.startswith("* ") for line in lines)
    assert any("like" in line for line in lines)
    assert (tmp_path / "out" / "behaviour.md").read_text().startswith("### Behaviour")
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == [
        "attention.png",
        "emotion.png",
        "habits.png",
        "preferences.png",
    ]
    assert main(["analyse", str(data), "--log", "nope"]) == 2
