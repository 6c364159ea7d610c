"""``noetik report RUN`` on a choices run folder: model comparison, recovery plots and
behaviour render; missing files say how to produce them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from noetik.cli.main import main
from noetik.errors import ConfigError
from noetik.reports.choices import CHOICE_SECTION_IDS, write_choices_report
from tests.test_cli_choices import _bandit_file


def test_report_of_a_choices_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    _bandit_file(tmp_path / "bandit.txt", subjects=6, trials=40)
    base = ["bandit.txt", "--task", "bandit2arm", "--model", "rw", "--model", "wsls"]
    base += ["--restarts", "1", "--boot", "100"]
    assert main(["choices", "fit", *base, "--out", "run", "--recovery", "5"]) == 0
    assert main(["report", "run"]) == 0
    html = (tmp_path / "run" / "report.html").read_text()
    for section in CHOICE_SECTION_IDS:
        assert f'<section id="{section}">' in html
    assert "not available" not in html.split('id="comparison"')[1].split("</section>")[0]
    assert "ΔAIC" in html and "Pearson r" in html and "Win-stay" in html
    assert len(re.findall(r'<img src="data:image/png;base64,', html)) == 2
    assert "noetik choices evaluate" in html  # says how to add the held-out scores
    assert main(["choices", "evaluate", *base, "--out", "run"]) == 0
    (tmp_path / "run" / "recovery.json").unlink()
    out = write_choices_report(tmp_path / "run", tmp_path / "other.html")
    html = out.read_text()
    assert "Held out, leave subjects out" in html and "likelihood ratio to" in html
    assert "not available: no recovery.json" in html
    capsys.readouterr()
    with pytest.raises(ConfigError, match="not a choices run folder"):
        write_choices_report(tmp_path)
    (tmp_path / "run" / "choices.json").write_text("{nope")
    assert main(["report", "run"]) == 2
    assert "damaged" in capsys.readouterr().err


def test_report_with_neural_models_and_explained_choices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """choices fit --neural: the comparison lists the networks (in sample, then held out) and
    the explained choices show plain words with attribution bars."""
    monkeypatch.chdir(tmp_path)
    _bandit_file(tmp_path / "bandit.txt", subjects=5, trials=30)
    base = ["bandit.txt", "--task", "bandit2arm", "--model", "rw", "--restarts", "1"]
    base += ["--boot", "100", "--neural", "gru", "--updates", "20"]
    fit = ["choices", "fit", *base, "--out", "run", "--recovery", "0", "--explain", "2"]
    assert main(fit) == 0
    assert main(["choices", "evaluate", *base, "--folds", "2", "--out", "run"]) == 0
    assert main(["report", "run"]) == 0
    html = (tmp_path / "run" / "report.html").read_text()
    comparison = html.split('id="comparison"')[1].split("</section>")[0]
    assert "Neural models of choice" in comparison and "neural/gru" in comparison
    assert comparison.count("<td>gru</td>") == 3  # in sample, and in both held-out tables
    explained = html.split('id="explanations"')[1].split("</section>")[0]
    assert "not available" not in explained
    assert "Subject 1, trial 30: the gru model predicts option" in explained
    assert "Subject 2, trial 30" in explained and "The fitted rw model" in explained
    assert len(re.findall(r'<img src="data:image/png;base64,', explained)) == 2
    (tmp_path / "run" / "explanations.json").unlink()
    html = write_choices_report(tmp_path / "run").read_text()
    assert "not available: no explanations.json" in html
