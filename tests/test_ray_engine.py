"""Ray as the scale-out engine: the online lens sharded over Ray tasks equals the local run
exactly, on a local Ray instance and on a real two-node cluster on this machine
(``ray.cluster_utils.Cluster``: a head and a second node, one CPU each); a failed task is
reported by name. Ray starts slowly, so these run in their own CI step (``pytest -m ray``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# Ray reads this when first imported: its instances in this process stay on 127.0.0.1
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
ray = pytest.importorskip("ray")

from noetik.agents.algorithms.iql import IQLConfig  # noqa: E402
from noetik.agents.core.base import Agent, ProblemSpec  # noqa: E402
from noetik.agents.networks.encoders import EncoderConfig  # noqa: E402
from noetik.cli.main import main  # noqa: E402
from noetik.evaluation.online.sessions import evaluate_online, make_eval_envs  # noqa: E402
from noetik.utils.ray_engine import LOCAL_ONLY, ShardFailed, ray_session  # noqa: E402
from tests.conftest import REPO  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.ray]

KUAIRAND = "noetik/KuaiRand-v0"


def _agent(sim_dir: str) -> Agent:
    envs = make_eval_envs(KUAIRAND, 1, {"sim_dir": sim_dir})
    pool = np.asarray(envs.candidate_video_ids)
    encoder = EncoderConfig(kind="mlp", hidden=(16,))
    spec = ProblemSpec(len(pool), 128, None, pool)
    return IQLConfig(device="cpu", seed=5, encoder=encoder, item_embed_dim=8).create(spec)


def _evaluate(agent: Agent, sim_dir: str, engine: object = None) -> dict[str, dict[str, float]]:
    return evaluate_online(
        agent,
        KUAIRAND,
        45,
        {"sim_dir": sim_dir, "leave_model": "hazard"},
        11,
        seeds=(11, 12),
        deterministic=False,
        n_boot=200,
        block_users=8,
        engine=engine,  # type: ignore[arg-type]
    )


@pytest.mark.usefixtures("clean_ray")
def test_local_ray_equals_local_retries_and_names_a_failed_task(
    sim_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(LOCAL_ONLY, raising=False)
    agent = _agent(sim_dir)
    local = _evaluate(agent, sim_dir)
    with ray_session(None, num_cpus=2) as engine:
        assert os.environ[LOCAL_ONLY] == "0"  # the instance it started stays on 127.0.0.1
        assert engine.workers == 2
        assert engine.address.startswith("127.0.0.1:")
        assert _evaluate(agent, sim_dir, engine) == local
        # a task that raises stops the computation with one line naming it
        with pytest.raises(ShardFailed, match=r"'divide 2/3' failed: ZeroDivisionError"):
            engine.map(lambda a, b: a / b, 1, [1, 0, 2], sizes=[1, 1, 1], description="divide")
        assert engine.map(lambda a, b: a * b, 3, [1, 2], sizes=[1, 1], description="m") == [3, 6]
        # a worker that dies is retried: the task dies once, then succeeds
        marker = tmp_path / "died-once"

        def die_once(shared: int, shard: int) -> int:
            if not marker.exists():
                marker.touch()
                os._exit(1)
            return shared + shard

        assert engine.map(die_once, 10, [5], sizes=[1], description="flaky") == [15]
    marker.unlink()
    failed = pytest.raises(ShardFailed, match=r"'flaky 1/1' failed: .*after 0 retries")
    with ray_session(None, num_cpus=1, max_retries=0) as engine, failed:
        engine.map(die_once, 10, [5], sizes=[1], description="flaky")
    assert not ray.is_initialized()
    assert LOCAL_ONLY not in os.environ  # restored


def test_a_local_session_stays_on_loopback() -> None:
    """Without the variable set beforehand, the instance ray_session starts is on 127.0.0.1
    (it sets the variable before importing Ray), and the variable is unset again after."""
    code = (
        "import os\n"
        "from noetik.utils.ray_engine import LOCAL_ONLY, ray_session\n"
        "with ray_session(None, num_cpus=1) as engine:\n"
        "    assert os.environ[LOCAL_ONLY] == '0'\n"
        "    print(engine.address, engine.workers)\n"
        "assert LOCAL_ONLY not in os.environ\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in (LOCAL_ONLY, "PYTHONPATH")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**env, "PYTHONPATH": str(REPO / "src")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2_000:]
    address, workers = done.stdout.split()
    assert address.startswith("127.0.0.1:") and workers == "1"


def _train_popular(sim_dir: str, out: Path) -> Path:
    root = Path(sim_dir).parent
    argv = ["train", "popular", "--data", str(root / "data"), "--cache", str(root / "cache")]
    assert main([*argv, "--steps", "1", "--out", str(out)]) == 0
    return out


def _board(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    capsys.readouterr()
    assert main(argv) == 0
    return list(json.loads(capsys.readouterr().out))


@pytest.mark.usefixtures("clean_ray")
def test_evaluate_cli_with_ray_equals_without(
    sim_dir: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _train_popular(sim_dir, tmp_path / "popular")
    argv = ["evaluate", str(run), "--env-option", f"sim_dir={sim_dir}", "--no-ope", "--json"]
    argv += ["--users", "30", "--user-block", "7", "--seed", "2"]
    local = _board(argv, capsys)
    assert local[0]["online"]
    assert _board([*argv, "--ray"], capsys) == local
    assert not ray.is_initialized()


def test_two_node_cluster_equals_local(
    sim_dir: str,
    tmp_path: Path,
    two_node_cluster: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    agent = _agent(sim_dir)
    local = _evaluate(agent, sim_dir)
    run = _train_popular(sim_dir, tmp_path / "popular")
    argv = ["evaluate", str(run), "--env-option", f"sim_dir={sim_dir}", "--no-ope", "--json"]
    argv += ["--users", "30", "--user-block", "7"]
    board = _board(argv, capsys)
    with ray_session(two_node_cluster) as engine:
        assert engine.workers == 2
        assert _evaluate(agent, sim_dir, engine) == local
    assert not ray.is_initialized()
    assert _board([*argv, "--ray-address", two_node_cluster], capsys) == board
