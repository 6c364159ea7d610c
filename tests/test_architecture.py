"""The layout enforces the pipeline: each stage imports only from earlier stages."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "noetik"

#: Stage rank of each top-level sub-package or module; a module may import equal or lower ranks.
STAGES: dict[str, int] = {
    "errors": 0,
    "utils": 0,
    "data": 1,
    "simulators": 2,
    "envs": 2,
    "agents": 3,
    "evaluation": 4,
    "explain": 5,
    "analysis": 6,
    "reports": 6,
    "cli": 7,
    "__main__": 8,
}

MODULES = sorted(SRC.rglob("*.py"))


def _stage(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


def _noetik_imports(tree: ast.AST) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("noetik."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("noetik.")}
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(SRC)))
def test_imports_follow_stage_order(path: Path) -> None:
    stage = _stage(path)
    if stage == "__init__":
        return
    assert stage in STAGES, f"{stage} is not a known stage; add it to STAGES"
    for target in _noetik_imports(ast.parse(path.read_text())):
        assert STAGES[target] <= STAGES[stage], f"{stage} must not import noetik.{target}"


def test_agents_do_not_read_the_simulators() -> None:
    """Agents learn from data or an environment's interface, never from a simulator's insides."""
    for path in (SRC / "agents").rglob("*.py"):
        text = path.read_text()
        assert "noetik.simulators" not in text, f"{path.relative_to(SRC)} imports the simulators"


def test_no_hand_packed_lines() -> None:
    """Code is formatted as ruff formats it: no ``# fmt: skip`` anywhere in the sources."""
    marker = "fmt" + ": skip"
    for path in MODULES:
        assert marker not in path.read_text(), f"{path.relative_to(SRC)} has {marker}"


def test_main_module_has_no_logic() -> None:
    tree = ast.parse((SRC / "__main__.py").read_text())
    assert not [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
