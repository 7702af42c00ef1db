"""Keyword search over passage text: SQLite FTS5 with BM25 ranking.

Dense retrieval misses exact terms (option flags, function names, error codes); this index
finds them. It lives in the state file rather than in Milvus so that it works the same on
Milvus Lite and on every Milvus server version (BM25 arrived in Milvus 2.5), and it obeys the
same :class:`~agent.documents.archive.Scope` as the archive.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.db import Database, match_expression
from agent.values import Hit, Passage, Scope

_DELETE_BATCH = 5000


class KeywordIndex:
    """Passage text in SQLite, searchable by BM25 within a scope."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def insert(self, passages: Sequence[Passage]) -> None:
        """Index passages (re-inserting an id replaces it)."""
        async with self._db.transaction() as conn:
            await conn.executemany(
                "INSERT OR REPLACE INTO passages"
                " (id, source_id, file_id, document, page, last_page, chunk, text)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
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
        """The best BM25 matches within ``scope``, best first; scores are positive."""
        expression = match_expression(query)
        if expression is None or not scope.source_ids or limit <= 0:
            return []
        sources = ",".join("?" * len(scope.source_ids))
        hidden = ",".join("?" * len(scope.excluded_file_ids))
        rows = await self._db.fetchall(
            # Only '?' placeholders are interpolated below.
            "SELECT p.id, p.source_id, p.file_id, p.document, p.page, p.last_page, p.chunk,"  # noqa: S608
            " p.text, -bm25(passages_fts) AS score"
            " FROM passages_fts JOIN passages p ON p.id = passages_fts.rowid"
            f" WHERE passages_fts MATCH ? AND p.source_id IN ({sources})"
            + (f" AND p.file_id NOT IN ({hidden})" if hidden else "")
            + " ORDER BY bm25(passages_fts) LIMIT ?",
            [expression, *scope.source_ids, *scope.excluded_file_ids, int(limit)],
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
                cursor = await conn.execute(
                    f"DELETE FROM passages WHERE id IN"  # noqa: S608 (column is ours)
                    f" (SELECT id FROM passages WHERE {column} = ? LIMIT ?)",
                    (value, _DELETE_BATCH),
                )
                if cursor.rowcount < _DELETE_BATCH:
                    return
