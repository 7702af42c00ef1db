"""Keyword search over passage text: SQLite FTS5 with BM25 ranking, or PostgreSQL's full-text
search.

Dense retrieval misses exact terms (option flags, function names, error codes); this index
finds them. It lives in the state database rather than in Milvus so that it works the same on
Milvus Lite and on every Milvus server version (BM25 arrived in Milvus 2.5), and it obeys the
same :class:`~agent.documents.archive.Scope` as the archive.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.db import Database, match_expression
from agent.db.text_search import PG_PASSAGES_CONFIG, query_words, tsquery_sql
from agent.values import Hit, Passage, Scope

_DELETE_BATCH = 5000
_COLUMNS = "p.id, p.source_id, p.file_id, p.document, p.page, p.last_page, p.chunk, p.text"
_INSERT = (
    "INSERT INTO passages (id, source_id, file_id, document, page, last_page, chunk, text)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# Re-inserting an id replaces the row. In SQLite, REPLACE deletes and inserts, which keeps the
# FTS5 table (fed by insert and delete triggers) right; an upsert would bypass it.
_REPLACE = {
    "sqlite": _INSERT.replace("INSERT", "INSERT OR REPLACE", 1),
    "postgresql": _INSERT + " ON CONFLICT (id) DO UPDATE SET source_id = excluded.source_id,"
    " file_id = excluded.file_id, document = excluded.document, page = excluded.page,"
    " last_page = excluded.last_page, chunk = excluded.chunk, text = excluded.text",
}


class KeywordIndex:
    """Passage text in the state database, searchable by words within a scope."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(self, passages: Sequence[Passage]) -> None:
        """Index passages (re-inserting an id replaces it)."""
        async with self._db.transaction() as conn:
            await conn.executemany(
                _REPLACE[self._db.dialect],
                [
                    (
                        p.id,
                        p.source_id,
                        p.file_id,
                        p.document,
                        p.page,
                        p.last_page,
                        p.chunk,
                        p.text,
                    )
                    for p in passages
                ],
            )

    async def search(self, query: str, scope: Scope, *, limit: int) -> list[Hit]:
        """The best matches within ``scope``, best first; scores are positive, higher better.

        SQLite ranks by BM25, PostgreSQL by ``ts_rank``; hybrid search fuses ranks, not scores.
        """
        if not scope.source_ids or limit <= 0:
            return []
        sources = ",".join("?" * len(scope.source_ids))
        hidden = ",".join("?" * len(scope.excluded_file_ids))
        # Only '?' placeholders and constants are interpolated below.
        within = f" AND p.source_id IN ({sources})" + (
            f" AND p.file_id NOT IN ({hidden})" if hidden else ""
        )
        if self._db.dialect == "postgresql":
            words = query_words(query)
            if not words:
                return []
            sql = (
                f"SELECT {_COLUMNS}, ts_rank(p.tsv, t.q) AS score"  # noqa: S608
                f" FROM passages p, (SELECT {tsquery_sql(len(words), PG_PASSAGES_CONFIG)} AS q) t"
                f" WHERE p.tsv @@ t.q{within} ORDER BY score DESC, p.id LIMIT ?"
            )
            params: list[object] = [*words]
        else:
            expression = match_expression(query)
            if expression is None:
                return []
            sql = (
                f"SELECT {_COLUMNS}, -bm25(passages_fts) AS score"  # noqa: S608
                " FROM passages_fts JOIN passages p ON p.id = passages_fts.rowid"
                f" WHERE passages_fts MATCH ?{within} ORDER BY bm25(passages_fts) LIMIT ?"
            )
            params = [expression]
        rows = await self._db.fetchall(
            sql, [*params, *scope.source_ids, *scope.excluded_file_ids, int(limit)]
        )
        return [
            Hit(
                id=row[0],
                source_id=row[1],
                file_id=row[2],
                document=row[3],
                page=row[4],
                last_page=row[5],
                chunk=row[6],
                text=row[7],
                score=float(row[8]),
            )
            for row in rows
        ]

    async def delete_source(self, source_id: int) -> None:
        """Remove a source's passages, in batches so other writers are not held up."""
        await self._delete("source_id", int(source_id))

    async def delete_file(self, file_id: int) -> None:
        """Remove one file's passages."""
        await self._delete("file_id", int(file_id))

    async def _delete(self, column: str, value: int) -> None:
        while True:
            async with self._db.transaction() as conn:
                changed = await conn.execute(
                    f"DELETE FROM passages WHERE id IN"  # noqa: S608 (column is ours)
                    f" (SELECT id FROM passages WHERE {column} = ? LIMIT ?)",
                    (value, _DELETE_BATCH),
                )
                if changed < _DELETE_BATCH:
                    return
