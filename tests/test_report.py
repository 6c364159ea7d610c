"""The HTML report: one self-contained page with every section, escaped text, embedded plots,
numbers that match their sources, and (end to end) a clean render in headless Chromium.

One tiny run is built once for the module: synthetic KuaiRand (60 users, 150 videos), a
simulator fitted for 1 epoch, IQL with a History Transformer trained for 20 steps, a
leaderboard of 16 simulated users, and a trade-off folder in the format of
``scripts/tradeoff_sweep.py``.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import typer
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image
from typer.testing import CliRunner

from noetik.agents.algorithms.iql import IQLConfig
from noetik.agents.core.recommend import decision_history_len, sample_users
from noetik.agents.core.runs import train_run
from noetik.agents.core.task import DataSource, TaskConfig
from noetik.agents.networks.encoders import EncoderConfig
from noetik.cli.report import report
from noetik.data.dataset import load_kuairand
from noetik.data.synthetic import SynthConfig, synthesize
from noetik.errors import ConfigError, NoetikError
from noetik.evaluation.leaderboard import LeaderboardConfig, evaluate_runs, write_leaderboard
from noetik.evaluation.trust import PolicyArrays, TrustConfig, summarise, write_trust
from noetik.explain.explain_context import decision_contexts
from noetik.explain.explanation import explain_recommendation
from noetik.reports import SECTION_IDS, write_report
from noetik.reports import html as h
from noetik.reports.context import ReportInputs, RunData, Unavailable
from noetik.reports.extra_sections import pareto_front, tradeoff_section
from noetik.reports.model_sections import faithfulness_section, sample_decisions
from noetik.reports.report import SECTIONS, _build
from noetik.reports.run_sections import leaderboard_section, simulator_section
from noetik.simulators.kuairand import ResponseModelConfig, fit_response_model

INJECTED = "<script>alert('pwned')</script>"
USERS = 2
ENCODER = EncoderConfig(kind="transformer", d_model=16, n_heads=2, n_layers=2)
IMG = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="[^"]*">')
#: Plots of the report: training 1, simulator loss 1, 2 per explained user, faithfulness 1,
#: trade-off 1, behaviour 4 (attention, preferences, emotion, habits).
N_IMAGES = 1 + 1 + 2 * USERS + 1 + 1 + 4
#: Return vs attention entropy: (1.0, 2.0) and (0.8, 1.0) are the Pareto front, (0.7, 1.5) not.
TRADEOFF_ROWS: list[dict[str, Any]] = [
    {
        "term": INJECTED,
        "weight": 0.0,
        "return": {"mean": 1.0, "low": 0.9, "high": 1.1},
        "attention_entropy": 2.0,
    },
    {
        "term": INJECTED,
        "weight": 0.1,
        "return": {"mean": 0.8, "low": 0.7, "high": 0.9},
        "attention_entropy": 1.0,
    },
    {
        "term": INJECTED,
        "weight": 1.0,
        "return": {"mean": 0.7, "low": 0.6, "high": 0.8},
        "attention_entropy": 1.5,
    },
]


@dataclass(frozen=True)
class Built:
    root: Path
    run: Path
    sim: Path
    tradeoff: Path
    html: str
    path: Path


def _png(color: str) -> bytes:
    fig = Figure(figsize=(2, 1))
    FigureCanvasAgg(fig)
    fig.subplots().plot([0, 1], [0, 1], color=color)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def _trust(run: Path) -> dict[str, Any]:
    """A trust table of three policies, the run's among them, one named with markup."""
    policies = []
    for i, (name, folder) in enumerate(((INJECTED, "a"), ("iql", str(run)), ("b", "b"))):
        real = np.tile([1.0 + i, 0.5, 10.0, 10.0, 1.0, 0.8, 0.5, 0.4], (20, 1))
        returns = np.tile([1.0 + i, 0.5 + i], (30, 1))
        policies.append(PolicyArrays(name, folder, real, returns, ess=150.0))
    return summarise(policies, TrustConfig(n_boot=20))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp("report")
    synthesize(root / "data", SynthConfig.for_release("pure", users=60, videos=150, seed=0))
    ds = load_kuairand(root / "data", cache_dir=root / "cache")
    fit_response_model(ds, ResponseModelConfig(hidden=32, epochs=1, seed=0)).save(root / "sim")
    run = root / "runs" / "iql"
    source = TaskConfig(DataSource(str(root / "data"), str(root / "cache")))
    train_run(IQLConfig(batch_size=32, encoder=ENCODER, device="cpu"), source, run, 20)
    meta = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**meta, "note": INJECTED}))
    config = LeaderboardConfig(env_kwargs=(("sim_dir", str(root / "sim")),), n_users=16, ope=False)
    write_leaderboard(evaluate_runs([run], config), root / "runs")  # found beside the run
    write_trust(_trust(run), root / "runs")  # found beside the run
    tradeoff = root / "tradeoff"
    tradeoff.mkdir()
    (tradeoff / "results_attention_entropy.json").write_text(json.dumps(TRADEOFF_ROWS))
    (tradeoff / "tradeoff_attention_entropy.png").write_bytes(_png("tab:red"))
    path = write_report(run, sim_dir=root / "sim", tradeoff_dir=tradeoff, users=USERS, seed=0)
    return Built(root, run, root / "sim", tradeoff, path.read_text(), path)


def _section(html: str, section_id: str) -> str:
    match = re.search(rf'<section id="{section_id}">(.*?)</section>', html, re.S)
    assert match is not None, section_id
    return match.group(1)


def test_every_section_with_its_plots(built: Built) -> None:
    assert built.path == built.run / "report.html"
    ids = re.findall(r'<section id="([a-z]+)">\n<h2>[^<]+</h2>', built.html)
    assert ids == list(SECTION_IDS) == [s[0] for s in SECTIONS]
    assert "not available" not in built.html
    images = IMG.findall(built.html)
    assert len(images) == built.html.count("<img ") == N_IMAGES
    for data in images:
        with Image.open(io.BytesIO(base64.b64decode(data))) as im:
            assert im.format == "PNG" and min(im.size) > 50
    per_section = {s: len(IMG.findall(_section(built.html, s))) for s in SECTION_IDS}
    assert per_section == {
        "config": 0,
        "training": 1,
        "leaderboard": 0,
        "simulator": 1,
        "explanations": 2 * USERS,
        "faithfulness": 1,
        "trust": 0,
        "tradeoff": 1,
        "behaviour": 4,
    }


def test_self_contained_and_escaped(built: Built) -> None:
    html = built.html
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    assert "http://" not in html and "https://" not in html
    assert "<link" not in html and "@import" not in html and "url(" not in html
    assert re.findall(r"<script[^>]*>", html) == ["<script>"]  # the one inline script
    assert html.count(h.IMAGE_SCRIPT) == 1
    assert INJECTED not in html
    escaped = h.esc(INJECTED)
    assert escaped == "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;"
    assert escaped in _section(html, "config")  # run.json's injected value
    assert escaped in _section(html, "tradeoff")  # the trade-off term
    assert escaped in _section(html, "trust")  # a policy's name


def test_numbers_match_their_sources(built: Built) -> None:
    html = built.html
    # run configuration and training curves
    config = _section(html, "config")
    assert "<tr><td>algo</td><td>iql</td></tr>" in config
    assert '<tr><td>steps</td><td class="num">20</td></tr>' in config
    assert "<td>config.encoder.kind</td><td>transformer</td>" in config
    tau = json.loads((built.run / "config.json").read_text())["config"]["tau"]
    assert f"<td>config.tau</td><td>{tau!r}</td>" in config  # exact, not rounded
    assert "20 logged points up to step 20 (metrics.csv)." in _section(html, "training")
    # leaderboard: the run's cells are the intervals of leaderboard.json
    entry = json.loads((built.root / "runs" / "leaderboard.json").read_text())[0]
    board = _section(html, "leaderboard")
    assert "iql (iql) [this run]" in board
    for metric in ("return", "is_click_rate", "coverage"):
        cell = h.interval(entry["online"][metric])
        assert f"<td>{metric}</td><td>{cell}</td>" in board
    # simulator: provenance of simulator.json and the held-out validation table
    meta = json.loads((built.sim / "simulator.json").read_text())["meta"]
    sim = _section(html, "simulator")
    held = len(meta["heldout_random_users"])
    assert f'<td>random-log users held out</td><td class="num">{held}</td>' in sim
    assert f"of {held} held-out users" in sim
    assert sim.count("<td>auc</td>") == 8 and "<td>rmse</td>" in sim  # 8 binary heads


def test_explanations_are_those_of_the_agent(built: Built) -> None:
    data = RunData(ReportInputs.read(built.run))
    transitions = data.transitions()
    ids = sample_users(transitions, USERS, 0)
    k = decision_history_len(data.agent())
    contexts = decision_contexts(data.dataset(), transitions, ids, k)
    section = _section(built.html, "explanations")
    assert section.count('<div class="explanation">') == USERS
    for ctx in contexts:
        e = explain_recommendation(data.agent(), ctx, k_runner_ups=3)
        assert f"User {ctx.user_id}: video {e.recommended.item.video_id}" in section
        assert h.esc(e.text) in section
        for c in e.runner_ups:  # each runner-up row with its probability and margin
            assert (
                f'<td class="num">{c.rank}</td><td class="num">{c.item.video_id:,}</td>' in section
            )
            assert f'<td class="num">{h.fmt(c.margin)}</td>' in section


def test_faithfulness_and_tradeoff_tables(built: Built) -> None:
    faith = _section(built.html, "faithfulness")
    rows = re.findall(r"<tr><td>([a-z_]+)</td>", faith)
    assert rows == [
        "integrated_gradients",
        "saliency",
        "input_x_gradient",
        "attention_rollout",
        "random",
    ]
    assert faith.count("deletion AUC") >= 4 and "32 decisions of the standard log (seed 0)" in faith
    # same seed, same section (random orderings, bootstrap intervals and the plot's bytes)
    data = RunData(ReportInputs.read(built.run, seed=0))
    assert faith.endswith(faithfulness_section(data) + "\n")
    trade = _section(built.html, "tradeoff")
    flags = re.findall(r"<td>(yes|)</td></tr>", trade)
    assert flags == ["yes", "yes", ""]
    assert f"<td>{h.interval(TRADEOFF_ROWS[1]['return'], 3)}</td>" in trade
    np.testing.assert_array_equal(
        pareto_front(np.array([1.0, 0.8, 0.7, 1.0]), np.array([2.0, 1.0, 1.5, 2.5])),
        [True, True, False, False],
    )


def test_sample_decisions_follow_the_seed(built: Built) -> None:
    def rows(seed: int) -> np.ndarray:
        data = RunData(ReportInputs.read(built.run, seed=seed))
        obs, history, r = sample_decisions(data, 8)
        assert obs.shape == (8, 128) and history is not None
        assert (history.mask.sum(1) >= 2).all()
        torch.testing.assert_close(obs, torch.as_tensor(data.transitions().obs[r]).float())
        return r

    first = rows(0)
    np.testing.assert_array_equal(first, rows(0))
    assert not np.array_equal(first, rows(1))


def test_missing_inputs_say_why(built: Built, tmp_path: Path) -> None:
    lone = tmp_path / "a" / "b" / "run"
    shutil.copytree(built.run, lone)
    data = RunData(ReportInputs.read(lone))
    for builder, reason in (
        (lambda d: leaderboard_section(d.inputs), "no leaderboard.json in or beside the run"),
        (lambda d: simulator_section(d.inputs), "no simulator folder"),
        (tradeoff_section, "no trade-off folder given; run noetik sweep CONFIG --out "),
    ):
        with pytest.raises(Unavailable, match=re.escape(reason)):
            builder(data)
        section = _build("x", "X", builder, data)
        assert section.body.startswith(f'<p class="unavailable">not available: {h.esc(reason)}')
    broken = _build("x", "X", lambda d: str(1 / 0), data)
    assert "not available: failed with ZeroDivisionError: division by zero" in broken.body
    with pytest.raises(ConfigError, match="not a run folder"):
        write_report(tmp_path)
    with pytest.raises(ConfigError, match="users must be >= 1"):
        write_report(lone, users=0)


def test_html_helpers_known_answers() -> None:
    assert h.fmt(None) == "-" and h.fmt(float("nan")) == "-" and h.fmt(1234) == "1,234"
    assert h.fmt(0.5) == "0.5000" and h.fmt(2.5e-05) == "2.5e-05" and h.fmt(True) == "True"
    assert h.interval({"mean": 1.0, "low": 0.5, "high": 1.5}) == "1.00 [0.50, 1.50]"
    coverage = {"mean": 0.0075, "low": 0.0075, "high": 0.0075}  # was "0.007 [0.008, 0.008]"
    assert h.interval(coverage) == "0.007500 [0.007500, 0.007500]"
    assert h.table(["a<"], [[1.5], ["<b>"]]) == (
        '<table>\n<tr><th>a&lt;</th></tr>\n<tr><td class="num">1.5000</td></tr>\n'
        "<tr><td>&lt;b&gt;</td></tr>\n</table>"
    )
    with pytest.raises(ValueError, match="PNG"):
        h.img(b"<svg/>", "x")
    png = _png("black")
    assert h.img(png, 'a"b') == (
        f'<img src="data:image/png;base64,{base64.b64encode(png).decode()}" alt="a&quot;b">'
    )


def test_cli_passes_its_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []

    def fake(run_dir: Path, out: Path | None, **kwargs: Any) -> Path:
        calls.append({"run_dir": run_dir, "out": out, **kwargs})
        return tmp_path / "r.html"

    monkeypatch.setattr("noetik.reports.write_report", fake)
    app = typer.Typer()
    app.command()(report)
    args = [str(tmp_path), "--sim", str(tmp_path), "--users", "5", "--out", "x.html"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(tmp_path / "r.html")
    expected = {
        "run_dir": tmp_path,
        "out": Path("x.html"),
        "leaderboard": None,
        "sim_dir": tmp_path,
        "tradeoff_dir": None,
        "trust": None,
        "users": 5,
        "seed": 0,
    }
    assert calls == [expected]
    bad_args = (
        (["--users", "0"], "--users must be >= 1"),
        (["--tradeoff", "no"], "--tradeoff: no"),
        (["--trust", "no"], "--trust: no"),
    )
    for bad, message in bad_args:
        result = CliRunner().invoke(app, [str(tmp_path), *bad])
        assert isinstance(result.exception, NoetikError)
        assert message in str(result.exception)


def _chromium() -> str | None:
    return next((p for n in ("chromium", "chromium-browser") if (p := shutil.which(n))), None)


@pytest.mark.skipif(_chromium() is None, reason="no chromium binary on PATH")
def test_renders_in_headless_chromium(built: Built, tmp_path: Path) -> None:
    browser = _chromium()
    assert browser is not None
    url = built.path.resolve().as_uri()
    base = [
        browser,
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    shot = tmp_path / "report.png"
    run = subprocess.run(
        [*base, f"--screenshot={shot}", "--window-size=1280,4000", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    with Image.open(shot) as im:
        assert im.size == (1280, 4000)
        pixels = np.asarray(im.convert("L"), dtype=np.float64)
    assert pixels.std() > 20.0  # text, tables and plots, not a blank page
    assert (pixels < 128).mean() > 0.01  # dark pixels: text and lines
    dom = subprocess.run(
        [*base, "--dump-dom", url], capture_output=True, text=True, timeout=120, check=False
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    for log in (run.stderr, dom.stderr):
        console = [line for line in log.splitlines() if "CONSOLE" in line or "Uncaught" in line]
        assert console == []
    body = re.search(r"<body[^>]*>", dom.stdout)
    assert body is not None
    assert f'data-images-loaded="{N_IMAGES}"' in body.group(0)
    assert f'data-images-total="{N_IMAGES}"' in body.group(0)
    assert re.findall(r'<section id="([a-z]+)">', dom.stdout) == list(SECTION_IDS)
