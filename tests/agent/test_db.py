"""SQLite state: user text reaches FTS5 only as quoted phrases."""

from __future__ import annotations

from agent.db import match_expression


def test_match_expression_quotes_every_word() -> None:
    assert match_expression('say "hi" -O2') == '"say" OR """hi""" OR "-O2"'
    assert match_expression("  -- ** ") is None
