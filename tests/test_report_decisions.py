"""The report, ``noetik act`` and ``noetik explain`` show the same decision for the same user:
the same video, score and probability, for an MLP agent as much as for a Transformer agent
(all three build a user's decision state with ``recommend.decision_states``' window)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from noetik.cli.main import main
from noetik.reports import html as h

ENCODERS = {
    "mlp": {"kind": "mlp", "hidden": [32, 32]},
    "transformer": {"kind": "transformer", "d_model": 16, "n_heads": 2, "n_layers": 1},
}
USERS = 3
#: One explained decision of the report: its heading and the first row of its candidate table.
DECISION = re.compile(
    r"<h3>User (\d+): video ([\d,]+)</h3>\n"
    r'<div class="explanation">(.*?)</div>\n'
    r"<table>.*?</tr>\n<tr>"
    r'<td class="num">1</td><td class="num">([\d,]+)</td><td>[^<]*</td><td class="num">[^<]*</td>'
    r'<td class="num">([^<]*)</td><td class="num">([^<]*)</td>',
    re.S,
)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("decisions")
    assert main(["data", "synth", str(root / "data"), "--users", "60", "--videos", "120"]) == 0
    return root


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> object:
    capsys.readouterr()
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("encoder", list(ENCODERS))
def test_report_act_and_explain_agree(
    encoder: str, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run, cache = data / encoder, data / "cache"
    config = data / f"{encoder}.json"
    config.write_text(json.dumps({"batch_size": 32, "encoder": ENCODERS[encoder]}))
    argv = ["train", "bc", "--data", str(data / "data"), "--cache", str(cache), "--steps", "20"]
    assert main([*argv, "--out", str(run), "--config", str(config)]) == 0
    page = data / f"{encoder}.html"
    assert main(["report", str(run), "--users", str(USERS), "--out", str(page)]) == 0
    section = re.search(r'<section id="explanations">(.*?)</section>', page.read_text(), re.S)
    assert section is not None
    shown = DECISION.findall(section.group(1))
    assert len(shown) == USERS, section.group(1)[:2000]
    users = [str(int(u)) for u, *_ in shown]
    picks: list[str] = [arg for u in users for arg in ("--user", u)]
    recs = _json(capsys, ["act", str(run), *picks, "--k", "1", "--json"])
    explained = _json(capsys, ["explain", str(run), *picks, "--json"])
    assert isinstance(recs, list) and isinstance(explained, list)
    for (user, video, text, first, score, probability), rec, e in zip(
        shown, recs, explained, strict=True
    ):
        top = rec["items"][0]
        best = e["recommended"]
        assert int(user) == rec["user_id"] == e["user_id"]
        assert int(video.replace(",", "")) == top["video_id"] == best["item"]["video_id"]
        assert int(first.replace(",", "")) == top["video_id"]
        assert score == h.fmt(top["score"]) == h.fmt(best["score"])
        assert probability == h.fmt(best["probability"])
        assert text == h.esc(e["text"]).replace("\n", "<br>")  # its percentages too
