"""Sweeps as Ray Tune trials (``noetik sweep --ray``): every trial's metrics equal the local
sweep's, on a local Ray instance and on a real two-node cluster on this machine
(``ray.cluster_utils.Cluster``: a head and a second node, one CPU each); a failed trial is
named in one line. Ray starts slowly, so these run in their own CI step (``pytest -m ray``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

# Ray reads this when first imported: its instances in this process stay on 127.0.0.1
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
ray = pytest.importorskip("ray")

from noetik.analysis.sweeps import load_sweep_config, run_sweep  # noqa: E402
from noetik.cli.main import main  # noqa: E402
from tests.test_sweep import tiny_config  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.ray]


def _metrics(out: Path) -> dict[str, Any]:
    """Each trial's metrics (everything but the seconds) from a sweep folder's results."""
    rows = json.loads((out / "results.json").read_text())
    return {r["trial"]: {k: v for k, v in r.items() if not k.endswith("_s")} for r in rows}


@pytest.mark.usefixtures("clean_ray")
def test_local_ray_sweep_equals_local_and_names_a_failed_trial(
    tmp_path: Path, sim_dir: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tiny_config(tmp_path, sim_dir)
    assert main(["sweep", str(config), "--out", str(tmp_path / "local")]) == 0
    local = _metrics(tmp_path / "local")
    assert len(local) == 2
    argv = ["sweep", str(config), "--out", str(tmp_path / "ray"), "--ray", "--cpus", "2"]
    assert main(argv) == 0
    assert _metrics(tmp_path / "ray") == local
    assert not ray.is_initialized()
    runs = sorted(p.name for p in (tmp_path / "ray" / "trials").iterdir() if p.is_dir())
    assert runs == sorted(local)
    assert all((tmp_path / "ray" / "tune" / name).is_dir() for name in local)  # Tune's files
    # a trial that fails in its Tune trial is named in one line; the other one finishes
    capsys.readouterr()
    broken = tmp_path / "broken" / "trials" / "attention_entropy-1_seed-0"
    broken.mkdir(parents=True)
    (broken / "stray.txt").write_text("not a run")
    argv = ["sweep", str(config), "--out", str(tmp_path / "broken"), "--ray", "--cpus", "2"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: trial 'attention_entropy-1_seed-0' failed: ")
    assert "holds files but no trial record" in err and "1 of 2 trials failed" in err
    record = tmp_path / "broken" / "trials" / "attention_entropy-0_seed-0.json"
    assert json.loads(record.read_text())["outcome"]["metrics"] == {
        k: v for k, v in local["attention_entropy-0_seed-0"].items() if k in _METRIC_KEYS
    }


#: Keys of a trial's metrics (the rest of a results row says which trial it is).
_METRIC_KEYS = (
    "return",
    "is_click_rate",
    "attention_entropy",
    "ig_top3_share",
    "agreement_spearman",
    "ig_delta_abs_mean",
    "deletion_auc",
    "random_deletion_auc",
    "insertion_auc",
    "random_insertion_auc",
)


def test_four_trials_on_a_two_node_cluster_equal_local(
    tmp_path: Path, sim_dir: str, two_node_cluster: str
) -> None:
    path = tiny_config(tmp_path, sim_dir)
    path.write_text(path.read_text().replace("steps = 8", "steps = 8\nseeds = [0, 1]"))
    config = load_sweep_config(path)
    run_sweep(config, tmp_path / "local")
    local = _metrics(tmp_path / "local")
    assert len(local) == 4
    result = run_sweep(config, tmp_path / "cluster", ray_address=two_node_cluster)
    assert not ray.is_initialized()
    assert [o["trial"] for o in result.outcomes] == list(local)
    assert _metrics(tmp_path / "cluster") == local
    assert (tmp_path / "cluster" / "pareto.png").is_file()
