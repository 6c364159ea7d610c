"""The simulator's ranking of policies against unbiased real exposure (``noetik sim trust``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau

from noetik.cli.main import main
from noetik.data.dataset import load_kuairand
from noetik.data.synthetic import SynthConfig, synthesize
from noetik.errors import ConfigError
from noetik.evaluation.policy_scores import standardise_scores
from noetik.evaluation.trust import PolicyArrays, TrustConfig, kendall_tau, summarise
from noetik.simulators.kuairand import ResponseModelConfig, fit_response_model
from noetik.simulators.kuairand.ensemble import EnsembleConfig
from noetik.simulators.kuairand.examples import write_random_rows


def test_kendall_tau_matches_scipy_with_ties() -> None:
    gen = np.random.default_rng(0)
    for _ in range(50):
        a = gen.integers(0, 4, size=7).astype(float)
        b = gen.integers(0, 4, size=7).astype(float)
        expected = kendalltau(a, b).statistic
        got = kendall_tau(a, b)
        assert (np.isnan(expected) and np.isnan(got)) or got == pytest.approx(expected)
    assert kendall_tau(np.arange(5.0), np.arange(5.0)) == 1.0
    assert kendall_tau(np.arange(5.0), -np.arange(5.0)) == -1.0
    assert np.isnan(kendall_tau(np.ones(4), np.arange(4.0)))


def test_standardised_scores() -> None:
    scores = torch.tensor([[1.0, 2.0, 3.0, float("-inf")], [5.0, 5.0, 5.0, 5.0]])
    z = standardise_scores(scores)
    finite = z[0, :3]
    assert float(finite.mean()) == pytest.approx(0.0, abs=1e-12)
    assert float(finite.pow(2).mean()) == pytest.approx(1.0)
    assert z[0, 3] == float("-inf")
    assert torch.equal(z[1], torch.zeros(4, dtype=torch.float64))
    # scale and shift of the raw scores do not change the policy
    torch.testing.assert_close(standardise_scores(10 * scores[:1] + 3), z[:1])


def _policy(name: str, real_click: float, sim_return: float, n_users: int = 40) -> PolicyArrays:
    """Arrays whose real click rate and simulated return are exactly the given values."""
    real = np.zeros((n_users, 8))
    real[:, 2] = 10.0  # Σw
    real[:, 3] = 10.0  # rows
    real[:, 0] = 10.0 * real_click  # Σw·click
    real[:, 1] = 10.0 * real_click / 2  # Σw·reward
    real[:, 4] = 10.0 * (real_click + 0.01)  # simulated one-step click, plain
    real[:, 5] = 10.0 * (0.3 - real_click)  # pessimistic: the reversed order
    returns = np.column_stack([np.full(30, sim_return), np.full(30, -sim_return)])
    return PolicyArrays(name, name, real, returns, ess=400.0)


def test_summary_known_answers() -> None:
    policies = [_policy(f"p{i}", 0.1 + 0.02 * i, 1.0 + i) for i in range(4)]
    out = summarise(policies, TrustConfig(n_boot=50))
    agree = out["agreement"]
    assert agree["return_plain"]["mean"] == pytest.approx(1.0)
    assert agree["return_pessimistic"]["mean"] == pytest.approx(-1.0)
    assert agree["click_plain"]["mean"] == pytest.approx(1.0)
    assert agree["click_pessimistic"]["mean"] == pytest.approx(-1.0)
    assert agree["click_gap_plain"]["mean"] == pytest.approx(0.01)
    row = out["policies"][2]
    assert row["real_click"]["mean"] == pytest.approx(0.14)
    assert row["sim_click"]["mean"] == pytest.approx(0.15)
    assert row["sim_return"]["mean"] == pytest.approx(3.0)
    assert out["n_real_rows"] == 400
    with pytest.raises(ConfigError, match="three"):
        summarise(policies[:2], TrustConfig(n_boot=10))


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="kappa"):
        TrustConfig(kappa=-1.0)
    with pytest.raises(ConfigError, match="draws"):
        TrustConfig(draws=0)
    with pytest.raises(ConfigError, match="pessimism"):
        TrustConfig(env_options=(("pessimism", 2.0),))


def test_cli_trust_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """End to end, as a user runs it from another folder: a simulator with an ensemble, three
    runs, the held-out random log; then the refusal of a simulator without an ensemble."""
    synthesize(tmp_path / "data", SynthConfig.for_release("pure", users=80, videos=200, seed=2))
    ds = load_kuairand(tmp_path / "data", cache_dir=tmp_path / "cache")
    config = ResponseModelConfig(hidden=32, epochs=1, fit_uncorrected=False, random_users=0.6)
    sim = fit_response_model(
        ds, config, device=torch.device("cpu"), ensemble=EnsembleConfig(members=2)
    )
    sim.save(tmp_path / "sim")
    write_random_rows(ds, np.asarray(sim.meta["heldout_random_users"]), tmp_path / "held.csv")
    work = tmp_path / "elsewhere"
    work.mkdir()
    monkeypatch.chdir(work)
    for algo, steps in (("random", "1"), ("popular", "1"), ("bc", "5")):
        train = ["train", algo, "--data", str(tmp_path / "data"), "--out", algo]
        assert main([*train, "--steps", steps, "--cache", str(tmp_path / "cache")]) == 0
    args = ["sim", "trust", str(tmp_path / "sim"), "random", "popular", "bc", "--log"]
    args += [str(tmp_path / "held.csv"), "--users", "40", "--n-boot", "50", "--draws", "2"]
    assert main([*args, "--out", "trust"]) == 0
    assert "click_plain" in capsys.readouterr().out
    result = json.loads((work / "trust" / "trust.json").read_text())
    assert [r["policy"] for r in result["policies"]] == ["random", "popular", "bc"]
    for row in result["policies"]:
        assert 0.0 < row["ess"] <= result["n_real_rows"]
        assert 0.0 <= row["real_click"]["mean"] <= 1.0
        # the pessimistic rate is the members' mean minus kappa times their spread
        assert row["pess_click"]["mean"] <= row["sim_click"]["mean"] + 0.05
    assert set(result["agreement"]) >= {"return_plain", "click_pessimistic", "click_gap_plain"}
    assert "| random |" in (work / "trust" / "trust.md").read_text()
    # a rerun reuses each policy's saved figures (same run, simulator, log and config)
    assert sorted(p.name for p in (work / "trust" / "policies").glob("*.json")) == [
        "bc.json",
        "popular.json",
        "random.json",
    ]
    assert main([*args, "--out", "trust"]) == 0
    assert json.loads((work / "trust" / "trust.json").read_text()) == result
    (tmp_path / "sim" / "members.safetensors").unlink()
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "noetik sim ensemble" in err and len(err.strip().splitlines()) == 1
