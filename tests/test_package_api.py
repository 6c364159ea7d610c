"""The top-level API promised by the README: ``import noetik`` registers the environments."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def _fresh_python(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter that imports this checkout's ``noetik``."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_import_noetik_registers_every_environment() -> None:
    done = _fresh_python(
        "import noetik, gymnasium; gymnasium.make('noetik/KuaiRand-v0')\n"
        "from noetik.envs import ENV_IDS\n"
        "assert all(i in gymnasium.registry for i in ENV_IDS), ENV_IDS\n"
    )
    assert done.returncode == 0, done.stderr


def test_import_noetik_stays_cheap() -> None:
    """Registering loads no environment module (entry points are strings) and no torch."""
    done = _fresh_python(
        "import sys, noetik\n"
        "heavy = [m for m in ('torch', 'noetik.envs.kuairand_env', 'noetik.simulators')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    assert done.returncode == 0, done.stderr


def test_explain_attribute_is_the_function_as_the_readme_calls_it() -> None:
    import numpy as np
    import torch

    import noetik.explain
    from noetik.agents import ProblemSpec
    from noetik.agents.algorithms.iql import IQLConfig
    from noetik.agents.networks.encoders import EncoderConfig, History
    from noetik.explain.attributions import Attribution

    assert callable(noetik.explain.attribute)
    encoder = EncoderConfig(kind="transformer", d_model=8, n_heads=2, n_layers=1, history_len=3)
    agent = IQLConfig(encoder=encoder, device="cpu").create(ProblemSpec(n_actions=5, obs_dim=128))
    g = torch.Generator().manual_seed(0)
    obs = torch.randn(2, 128, generator=g)
    mask = torch.ones(2, 3, dtype=torch.bool)
    history = History(
        torch.randint(0, 5, (2, 3), generator=g),
        torch.rand(2, 3, 12, generator=g),
        torch.rand(2, 3, generator=g) * 100,
        mask,
    )
    for method, target in (("integrated_gradients", "q"), ("saliency", "logp")):
        a = noetik.explain.attribute(agent, obs, history, method=method, target=target)
        assert isinstance(a, Attribution) and a.target_kind == target
        assert a.history is not None and np.abs(a.history).sum() > 0  # the history is read
