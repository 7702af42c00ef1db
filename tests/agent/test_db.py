"""State SQL: user text reaches FTS5 only as quoted phrases and PostgreSQL only as parameters."""

from __future__ import annotations

from agent.db import match_expression
from agent.db.postgres import numbered
from agent.db.text_search import query_words, tsquery_sql


def test_match_expression_quotes_every_word() -> None:
    assert match_expression('say "hi" -O2') == '"say" OR """hi""" OR "-O2"'
    assert match_expression("  -- ** ") is None


def test_placeholders_are_numbered_for_postgresql_outside_quotes() -> None:
    sql = "SELECT '?', \"a?b\" FROM t WHERE x = ? AND y IN (?, ?) AND z = 'it''s ?'"
    assert numbered(sql) == (
        "SELECT '?', \"a?b\" FROM t WHERE x = $1 AND y IN ($2, $3) AND z = 'it''s ?'"
    )


def test_postgresql_queries_take_each_word_as_a_parameter() -> None:
    assert query_words('say "hi" -O2 --') == ["say", '"hi"', "-O2"]
    assert tsquery_sql(2) == ("(phraseto_tsquery('simple', ?) || phraseto_tsquery('simple', ?))")
