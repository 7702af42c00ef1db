"""The package tree keeps its one direction of dependency: adapters -> agent, mind -> documents.

Read from the source (imports parsed, not run), so a new module is checked without a test of
its own.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def _modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _offending(folder: str, forbidden: tuple[str, ...]) -> list[str]:
    return [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _modules(folder)
        for name in sorted(_imports(path))
        if name.startswith(forbidden)
    ]


@pytest.mark.parametrize("folder", ["agent", "adapters"])
def test_nothing_inward_imports_the_wiring(folder: str) -> None:
    assert _offending(folder, ("bot",)) == []


def test_the_core_knows_no_platform() -> None:
    assert _offending("agent", ("adapters", "discord", "slack_bolt", "slack_sdk")) == []


def test_documents_know_nothing_of_the_mind() -> None:
    assert _offending("agent/documents", ("agent.mind", "agent.core")) == []


def test_adapters_see_the_core_only_through_its_facade() -> None:
    inner = ("agent.documents", "agent.mind", "agent.db", "agent.errors", "agent.values")
    assert _offending("adapters", inner) == []


def test_no_module_grows_past_four_hundred_lines() -> None:
    long = [
        f"{path.relative_to(ROOT)}: {lines} lines"
        for folder in ("agent", "adapters", "bot")
        for path in _modules(folder)
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > 400
    ]
    assert long == []
