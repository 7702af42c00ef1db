"""The source registry in SQLite: sources, their files, attachments, and pending cleanups.

A source belongs to one scope (``global``, ``discord:<guild>``, ``slack:<team>``). Callers in
a scope see that scope's sources and the ``global`` ones; a name resolves to the caller's own
source first. Every name is turned into an integer id here, so nothing downstream (Milvus
filters in particular) ever handles user text.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from agent.db import Database, Row
from agent.documents.names import GLOBAL_SCOPE as GLOBAL_SCOPE
from agent.documents.names import check_scope, check_source_name, sees
from agent.errors import EmbeddingMismatch, SourceNotFound, SourceNotVisible, quoted_name
from agent.values import Scope

Status = Literal["loading", "ready", "failed"]

_SOURCE_COLUMNS = """
    s.id, s.scope, s.name, s.status, s.error, s.embedding_model, s.embedding_dim,
    s.created_by, s.created_at,
    COUNT(f.id) AS files,
    COALESCE(SUM(f.pages), 0) AS pages,
    COALESCE(SUM(f.passages), 0) AS passages
"""
_SOURCE_FROM = """
    FROM sources s LEFT JOIN source_files f ON f.source_id = s.id AND f.status = 'ready'
"""


@dataclass(frozen=True)
class Source:
    """A named collection of documents; counts cover its ready files only."""

    id: int
    scope: str
    name: str
    status: Status
    error: str | None
    embedding_model: str
    embedding_dim: int
    created_by: str
    created_at: str
    files: int
    pages: int
    passages: int


@dataclass(frozen=True)
class SourceFile:
    """One loaded (or loading, or failed) file of a source."""

    id: int
    source_id: int
    name: str
    sha256: str
    size: int
    pages: int
    passages: int
    status: Status
    error: str | None
    origin: str | None
    loaded_by: str
    loaded_at: str
    owner: str | None
    heartbeat: float | None


def _source(row: Row) -> Source:
    return Source(**{key: row[key] for key in row.keys()})  # noqa: SIM118 (Row is not a dict)


def _file(row: Row) -> SourceFile:
    return SourceFile(**{key: row[key] for key in row.keys()})  # noqa: SIM118


class SourceRegistry:
    """Reads and writes source state; every multi-row change is one transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def resolve(self, scope: str, name: str) -> Source:
        """The source called ``name`` visible from ``scope`` (own scope first, then global).

        Raises :class:`SourceNotFound` with a message that repeats no raw control characters.
        """
        rows = await self._db.fetchall(
            f"SELECT {_SOURCE_COLUMNS} {_SOURCE_FROM}"
            " WHERE s.name = ? AND s.scope IN (?, ?) GROUP BY s.id"
            " ORDER BY s.scope = ? DESC",
            (name, scope, GLOBAL_SCOPE, scope),
        )
        if not rows:
            raise _not_found(name)
        return _source(rows[0])

    async def get(self, source_id: int) -> Source | None:
        """The source with this id, or None."""
        row = await self._db.fetchone(
            f"SELECT {_SOURCE_COLUMNS} {_SOURCE_FROM} WHERE s.id = ? GROUP BY s.id",
            (int(source_id),),
        )
        return _source(row) if row else None

    async def visible(self, scope: str | None = None) -> list[Source]:
        """Sources visible from ``scope`` (its own and global), or every source if None."""
        where, params = (
            ("", ()) if scope is None else ("WHERE s.scope IN (?, ?)", (scope, GLOBAL_SCOPE))
        )
        rows = await self._db.fetchall(
            f"SELECT {_SOURCE_COLUMNS} {_SOURCE_FROM} {where}"
            " GROUP BY s.id ORDER BY s.scope, s.name",
            params,
        )
        return [_source(row) for row in rows]

    async def files(self, source_id: int) -> list[SourceFile]:
        """Every file row of a source, oldest first."""
        rows = await self._db.fetchall(
            "SELECT * FROM source_files WHERE source_id = ? ORDER BY id", (int(source_id),)
        )
        return [_file(row) for row in rows]

    async def open_for_loading(
        self, scope: str, name: str, *, model: str, dim: int, created_by: str
    ) -> Source:
        """Get or create the source a load writes into.

        A new source starts as ``loading`` and is invisible to searches until a file is ready.
        Raises :class:`EmbeddingMismatch` if the source was embedded with another model, and
        :class:`~agent.documents.names.InvalidName` for a name or scope that cannot be used.
        """
        check_scope(scope)
        check_source_name(name)
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO sources (scope, name, status, embedding_model, embedding_dim,"
                " created_by) VALUES (?, ?, 'loading', ?, ?, ?)"
                " ON CONFLICT (scope, name) DO NOTHING",
                (scope, name, model, int(dim), created_by),
            )
            # A source whose only loads failed gets another chance.
            await conn.execute(
                "UPDATE sources SET status = 'loading', error = NULL"
                " WHERE scope = ? AND name = ? AND status = 'failed'",
                (scope, name),
            )
        source = await self.resolve_exact(scope, name)
        if (source.embedding_model, source.embedding_dim) != (model, dim):
            raise EmbeddingMismatch(mismatch_message(source, model, dim))
        return source

    async def resolve_exact(self, scope: str, name: str) -> Source:
        """The source called ``name`` in exactly ``scope`` (no fallback to global)."""
        row = await self._db.fetchone(
            f"SELECT {_SOURCE_COLUMNS} {_SOURCE_FROM}"
            " WHERE s.scope = ? AND s.name = ? GROUP BY s.id",
            (scope, name),
        )
        if row is None:
            raise _not_found(name)
        return _source(row)

    async def find_file(self, source_id: int, sha256: str) -> SourceFile | None:
        """The loading or ready file of this source with this content hash, if any."""
        row = await self._db.fetchone(
            "SELECT * FROM source_files WHERE source_id = ? AND sha256 = ? AND status != 'failed'",
            (int(source_id), sha256),
        )
        return _file(row) if row else None

    async def origins(self, file_ids: Iterable[int]) -> dict[int, str]:
        """Where each of these files came from (an upload's link), for those that say."""
        ids = sorted({int(i) for i in file_ids})
        if not ids:
            return {}
        rows = await self._db.fetchall(
            "SELECT id, origin FROM source_files"  # noqa: S608 (placeholders only)
            f" WHERE origin IS NOT NULL AND id IN ({', '.join('?' * len(ids))})",
            ids,
        )
        return {int(row["id"]): str(row["origin"]) for row in rows}

    async def add_file(
        self,
        source_id: int,
        *,
        name: str,
        sha256: str,
        size: int,
        loaded_by: str,
        owner: str,
        origin: str | None = None,
        refused: str | None = None,
    ) -> SourceFile | None:
        """Register a file as ``loading``; None if the same content is already in the source.
        With ``refused`` (why), record a file refused before anything was stored as failed."""
        values = (int(source_id), name, sha256, int(size), "failed" if refused else "loading")
        rows = await self._db.write(
            "INSERT INTO source_files (source_id, name, sha256, size, status, error, origin,"
            " loaded_by, owner, heartbeat) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING RETURNING *",
            (*values, refused, origin, loaded_by, owner, time.time()),
        )
        return _file(rows[0]) if rows else None

    async def heartbeat(self, file_id: int) -> bool:
        """Record that the load of a file is still at work; False if the file is gone
        (its source was deleted meanwhile)."""
        rows = await self._db.write(
            "UPDATE source_files SET heartbeat = ? WHERE id = ? AND status = 'loading'"
            " RETURNING id",
            (time.time(), int(file_id)),
        )
        return bool(rows)

    async def finish_file(self, file_id: int, *, pages: int, passages: int) -> bool:
        """Mark a loading file ready, and its source with it (visible) in one transaction.

        False if the file is no longer loading (its source was deleted meanwhile).
        """
        async with self._db.transaction() as conn:
            changed = await conn.execute(
                "UPDATE source_files SET status = 'ready', error = NULL, pages = ?, passages = ?"
                " WHERE id = ? AND status = 'loading'",
                (int(pages), int(passages), int(file_id)),
            )
            if not changed:
                return False
            await conn.execute(
                "UPDATE sources SET status = 'ready', error = NULL"
                " WHERE id = (SELECT source_id FROM source_files WHERE id = ?)",
                (int(file_id),),
            )
            return True

    async def fail_file(self, file: SourceFile, error: str) -> None:
        """Mark a file failed and queue removal of whatever of it reached the stores.

        The removal is queued even if the file's row is gone (its source deleted meanwhile).
        A source with no ready or loading file left is marked failed with the same reason.
        """
        async with self._db.transaction() as conn:
            await conn.execute(
                "UPDATE source_files SET status = 'failed', error = ? WHERE id = ?",
                (error, int(file.id)),
            )
            await conn.execute(
                "INSERT INTO archive_cleanup (source_id, file_id, reason)"
                " VALUES (?, ?, 'failed load')",
                (int(file.source_id), int(file.id)),
            )
            await conn.execute(
                "UPDATE sources SET status = 'failed', error = ?"
                " WHERE id = ? AND NOT EXISTS (SELECT 1 FROM source_files f"
                "   WHERE f.source_id = sources.id AND f.status IN ('ready', 'loading'))",
                (error, int(file.source_id)),
            )

    async def discard_if_empty(self, source_id: int) -> bool:
        """Delete a source that has no file loaded or loading (a load that left nothing).

        Checked and done in one statement, so a concurrent load into the same source keeps it.
        """
        async with self._db.transaction() as conn:
            changed = await conn.execute(
                "DELETE FROM sources WHERE id = ? AND NOT EXISTS (SELECT 1 FROM source_files f"
                " WHERE f.source_id = sources.id AND f.status IN ('ready', 'loading'))",
                (int(source_id),),
            )
            if not changed:
                return False
            await conn.execute(
                "INSERT INTO archive_cleanup (source_id, reason) VALUES (?, 'empty source')",
                (int(source_id),),
            )
            return True

    async def delete(self, source_id: int) -> None:
        """Remove a source, its files and attachments; queue removal of its passages."""
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT INTO archive_cleanup (source_id, reason) VALUES (?, 'source deleted')",
                (int(source_id),),
            )
            await conn.execute("DELETE FROM sources WHERE id = ?", (int(source_id),))

    async def pending_cleanups(self) -> list[tuple[int, int, int | None]]:
        """Queued archive deletions as (cleanup id, source id, file id or None)."""
        rows = await self._db.fetchall(
            "SELECT id, source_id, file_id FROM archive_cleanup ORDER BY id"
        )
        return [(row[0], row[1], row[2]) for row in rows]

    async def cleanup_done(self, cleanup_id: int) -> None:
        """Forget a queued deletion once Milvus has carried it out."""
        async with self._db.transaction() as conn:
            await conn.execute("DELETE FROM archive_cleanup WHERE id = ?", (int(cleanup_id),))

    async def interrupted_files(self) -> list[SourceFile]:
        """Files left ``loading`` by a process that died mid-load."""
        rows = await self._db.fetchall("SELECT * FROM source_files WHERE status = 'loading'")
        return [_file(row) for row in rows]

    async def attach(self, agent_key: str, source_id: int, *, attached_by: str) -> bool:
        """Link a source to an agent; True if newly linked, False if it already was.

        Raises :class:`SourceNotVisible` for another workspace's source: its agent would read
        it, but nobody in the conversation could see or detach it.
        """
        source = await self.get(source_id)
        if source is not None and not sees(agent_key, source.scope):
            raise SourceNotVisible(
                f"Source {quoted_name(source.name)} belongs to the workspace {source.scope},"
                f" which the conversation {quoted_name(agent_key)} cannot see: attach a global"
                " source or one of its own workspace."
            )
        async with self._db.transaction() as conn:
            changed = await conn.execute(
                "INSERT INTO attachments (agent_key, source_id, attached_by) VALUES (?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (agent_key, int(source_id), attached_by),
            )
            return bool(changed)

    async def detach(self, agent_key: str, source_id: int) -> bool:
        """Unlink a source from an agent; True if a link was removed."""
        async with self._db.transaction() as conn:
            changed = await conn.execute(
                "DELETE FROM attachments WHERE agent_key = ? AND source_id = ?",
                (agent_key, int(source_id)),
            )
            return bool(changed)

    async def attached(self, agent_key: str) -> list[Source]:
        """Sources linked to an agent, by name."""
        rows = await self._db.fetchall(
            f"SELECT {_SOURCE_COLUMNS} {_SOURCE_FROM}"
            " JOIN attachments a ON a.source_id = s.id WHERE a.agent_key = ?"
            " GROUP BY s.id ORDER BY s.name",
            (agent_key,),
        )
        return [_source(row) for row in rows]

    async def read_scope(self, source_ids: Sequence[int]) -> Scope:
        """Narrow ``source_ids`` to ready sources, hiding their files still loading or removed.

        One query, so the ready sources and their hidden files come from one snapshot. Only
        ``?`` placeholders are interpolated into the SQL below.
        """
        ids = [int(i) for i in source_ids]
        if not ids:
            return Scope((), ())
        marks = ",".join("?" * len(ids))
        rows = await self._db.fetchall(
            # Each row is a ready source (file NULL) or a file hidden from one (source NULL).
            "WITH ready AS"  # noqa: S608
            f" (SELECT id FROM sources WHERE status = 'ready' AND id IN ({marks}))"
            " SELECT id AS source, NULL AS file FROM ready"
            " UNION ALL SELECT NULL, id FROM source_files"
            "   WHERE status = 'loading' AND source_id IN (SELECT id FROM ready)"
            " UNION ALL SELECT NULL, file_id FROM archive_cleanup"
            "   WHERE file_id IS NOT NULL AND source_id IN (SELECT id FROM ready)",
            ids,
        )
        ready = sorted(int(row["source"]) for row in rows if row["source"] is not None)
        if not ready:
            return Scope((), ())
        hidden = {int(row["file"]) for row in rows if row["file"] is not None}
        return Scope(tuple(ready), tuple(sorted(hidden)))


def _not_found(name: str) -> SourceNotFound:
    return SourceNotFound(f"No such source: {quoted_name(name)}. List sources to see the names.")


def mismatch_message(source: Source, model: str, dim: int | None) -> str:
    """The sentence explaining that a source's embedding model differs from the configured one."""
    return (
        f"Source {quoted_name(source.name)} was embedded with {source.embedding_model}"
        f" ({source.embedding_dim} dimensions) but the configured model is {model}"
        f"{'' if dim is None else f' ({dim})'}:"
        " load it into a new source, or switch the embedding model back."
    )
