"""Plain words from a person as full-text queries, in each engine's form.

A query is the OR of its words, each matched as a phrase, so that no user text is ever read as
query syntax: quoted for SQLite FTS5, bound as parameters for PostgreSQL.
"""

from __future__ import annotations

import re

# Whitespace-separated query words become phrases; the index's own tokenizer then splits each
# phrase the way it split the text ("-fgnu-tm" -> "fgnu tm", adjacent).
_WORD = re.compile(r"\S+")
_HAS_TOKEN = re.compile(r"\w")
_MAX_TERMS = 32

# PostgreSQL's text search configuration for conversations: no stemming and no stop words,
# like FTS5's unicode61 (names and words as people wrote them).
PG_CONFIG = "simple"
# ... and for document passages: English stemming and stop words. ts_rank has no inverse
# document frequency, so with "simple" the commonest words of a question ("how", "the") ranked
# passages: keyword recall@5 0.569 on the development set against SQLite BM25's 0.695;
# "english" gives 0.723 (docs/benchmarks.md "Keyword search in PostgreSQL").
PG_PASSAGES_CONFIG = "english"


def query_words(query: str) -> list[str]:
    """The words of ``query`` that hold something to match, at most 32."""
    return [w for w in _WORD.findall(query) if _HAS_TOKEN.search(w)][:_MAX_TERMS]


def match_expression(query: str) -> str | None:
    """An FTS5 query that ORs the words of ``query`` as quoted phrases; None if no words.

    Quoting every word (with ``"`` doubled) means no user text is read as FTS5 syntax.
    """
    words = query_words(query)
    if not words:
        return None
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in words)


def tsquery_sql(words: int, config: str = PG_CONFIG) -> str:
    """A PostgreSQL tsquery expression ORing ``words`` phrases, each a ``?`` parameter."""
    phrase = f"phraseto_tsquery('{config}', ?)"
    return "(" + " || ".join([phrase] * words) + ")"
