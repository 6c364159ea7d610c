"""Every Python example of README.md and docs/*.md runs as written.

Each ```` ```python ```` block runs on its own in a fresh interpreter, in an empty working
directory, with this checkout's ``src`` on the path and the user's cache
(``$NOETIK_CACHE_DIR``, default ``~/.cache/noetik``), where the built-in synthetic dataset and
its default simulator are generated on first use and then reused. A block that needs the
reader's own files is marked directly above its fence with
``<!-- example: skip (the reason) -->``; a block too slow for the default suite with
``<!-- example: slow -->``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO

#: The documents whose examples are run.
DOCUMENTS: tuple[Path, ...] = (REPO / "README.md", *sorted((REPO / "docs").glob("*.md")))
#: Seconds one example may take before it counts as broken.
TIMEOUT_S = 120
_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.S | re.M)
_MARK = re.compile(r"<!--\s*example:\s*(.*?)\s*-->")


@dataclass(frozen=True)
class Example:
    """One ```` ```python ```` block of a document."""

    document: Path
    """The Markdown file holding it."""
    line: int
    """1-based line of its opening fence."""
    code: str
    """The block's text, as written."""
    mark: str
    """The ``<!-- example: ... -->`` comment directly above the fence ("" without one)."""

    @property
    def name(self) -> str:
        """``file:line``, the test id."""
        return f"{self.document.relative_to(REPO)}:{self.line}"


def examples(document: Path) -> list[Example]:
    """Every ```` ```python ```` block of ``document``, in order."""
    text = document.read_text(encoding="utf-8")
    found = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()]
        above = before.split("\n")[-2].strip() if "\n" in before else ""  # the line above
        mark = _MARK.fullmatch(above)
        found.append(
            Example(
                document,
                before.count("\n") + 1,
                match.group(1),
                mark.group(1) if mark else "",
            )
        )
    return found


def _param(example: Example) -> object:
    marks: list[pytest.MarkDecorator] = []
    if example.mark.startswith("skip"):
        marks.append(pytest.mark.skip(reason=f"{example.name}: {example.mark}"))
    elif example.mark.startswith("slow"):
        marks.append(pytest.mark.slow)
    return pytest.param(example, id=example.name, marks=marks)


ALL = [e for document in DOCUMENTS for e in examples(document)]


def test_examples_are_found() -> None:
    """The extraction sees the blocks (an empty list would make the test below vacuous)."""
    names = {e.name.split(":")[0] for e in ALL}
    assert {"README.md", "docs/agents.md", "docs/environments.md"} <= names
    assert all(e.code.strip() for e in ALL)
    readme = examples(REPO / "README.md")
    assert [e.mark for e in readme][1] == "custom-user-model"


def test_marks_are_read_from_the_line_above(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "# T\n\n```python\na = 1\n```\n\n<!-- example: skip (needs your own data) -->\n"
        "```python\nb = 2\n```\n<!-- example: slow -->\n\n```python\nc = 3\n```\n"
        "```bash\nnoetik --help\n```\n"
    )
    found = examples(doc)
    assert [(e.line, e.code, e.mark) for e in found] == [
        (3, "a = 1\n", ""),
        (8, "b = 2\n", "skip (needs your own data)"),
        (13, "c = 3\n", ""),  # a blank line between comment and fence: no mark
    ]


@pytest.mark.parametrize("example", [_param(e) for e in ALL])
def test_example_runs(example: Example, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(example.code, encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONSTARTUP", None)
    try:
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{example.name}: still running after {TIMEOUT_S} s")
    assert done.returncode == 0, f"{example.name} failed:\n{done.stderr[-3000:]}"
