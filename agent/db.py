"""The SQLite state file: connection set-up and versioned migrations.

Migrations are applied in order at start-up, each in one transaction, and the schema
version is kept in ``PRAGMA user_version``. Append new migrations; never edit old ones.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import sqlite3
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from agent.db_failures import make_data_folder, unwritable

log = logging.getLogger(__name__)

# Whitespace-separated query words become FTS5 phrases; the index's own tokenizer then splits
# each phrase the way it split the text ("-fgnu-tm" -> "fgnu tm", adjacent).
_WORD = re.compile(r"\S+")
_HAS_TOKEN = re.compile(r"\w")
_MAX_TERMS = 32

# Read-only connections beside the writer, each with its own thread (SQLite releases the GIL
# while it works). bench/turns.py measured 1, 2 and 4 alike on 2 cores; more than one keeps a
# long query (a large keyword search) from holding up other conversations' small reads.
READERS = 4

MIGRATIONS: tuple[str, ...] = (
    # 1: sources, their files, agent attachments, and passages awaiting deletion in Milvus.
    # AUTOINCREMENT: ids are never reused, so passages whose deletion is still pending can
    # never be mistaken for a newer source's.
    """
    CREATE TABLE sources (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        scope           TEXT NOT NULL,
        name            TEXT NOT NULL,
        status          TEXT NOT NULL CHECK (status IN ('loading', 'ready', 'failed')),
        error           TEXT,
        embedding_model TEXT NOT NULL,
        embedding_dim   INTEGER NOT NULL,
        created_by      TEXT NOT NULL,
        created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        UNIQUE (scope, name)
    );
    CREATE TABLE source_files (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
        name      TEXT NOT NULL,
        sha256    TEXT NOT NULL,
        size      INTEGER NOT NULL,
        pages     INTEGER NOT NULL DEFAULT 0,
        passages  INTEGER NOT NULL DEFAULT 0,
        status    TEXT NOT NULL CHECK (status IN ('loading', 'ready', 'failed')),
        error     TEXT,
        origin    TEXT,
        loaded_by TEXT NOT NULL,
        loaded_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        -- host:pid of the loading process and its last sign of life, to tell a load that
        -- is still running elsewhere from one whose process died.
        owner     TEXT,
        heartbeat REAL
    );
    CREATE UNIQUE INDEX source_files_ready_hash
        ON source_files (source_id, sha256) WHERE status != 'failed';
    CREATE INDEX source_files_status ON source_files (status);
    CREATE TABLE attachments (
        agent_key   TEXT NOT NULL,
        source_id   INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
        attached_by TEXT NOT NULL,
        attached_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        PRIMARY KEY (agent_key, source_id)
    );
    CREATE INDEX attachments_source ON attachments (source_id);
    CREATE TABLE archive_cleanup (
        id        INTEGER PRIMARY KEY,
        source_id INTEGER NOT NULL,
        file_id   INTEGER,
        reason    TEXT NOT NULL,
        queued_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    """,
    # 2: passage text with a full-text index, for keyword (BM25) search beside Milvus.
    # id is the passage's Milvus primary key; rows are hidden and removed the same way as
    # passages in Milvus (by the scope filter, then by the cleanup queue).
    """
    CREATE TABLE passages (
        id        INTEGER PRIMARY KEY,
        source_id INTEGER NOT NULL,
        file_id   INTEGER NOT NULL,
        document  TEXT NOT NULL,
        page      INTEGER NOT NULL,
        last_page INTEGER NOT NULL,
        chunk     INTEGER NOT NULL,
        text      TEXT NOT NULL
    );
    CREATE INDEX passages_source ON passages (source_id);
    CREATE INDEX passages_file ON passages (file_id);
    CREATE VIRTUAL TABLE passages_fts USING fts5(
        text, content = 'passages', content_rowid = 'id',
        tokenize = 'unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER passages_insert AFTER INSERT ON passages BEGIN
        INSERT INTO passages_fts (rowid, text) VALUES (new.id, new.text);
    END;
    CREATE TRIGGER passages_delete AFTER DELETE ON passages BEGIN
        INSERT INTO passages_fts (passages_fts, rowid, text) VALUES ('delete', old.id, old.text);
    END;
    """,
    # 3: facts about this installation, such as the id that names its Milvus collections.
    """
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 4: one agent per conversation key: its core memory blocks, and every message it has
    # seen or sent (recall memory). Evicted messages keep their rows with in_context = 0, so
    # the whole conversation stays searchable; FTS5 indexes message text for that search.
    """
    CREATE TABLE agents (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        key          TEXT NOT NULL UNIQUE,
        persona_name TEXT,
        human_name   TEXT,
        summary      TEXT NOT NULL DEFAULT '',
        created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        updated_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    -- initial is the text the block was created with: what a full reset restores.
    CREATE TABLE memory_blocks (
        agent_id   INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
        label      TEXT NOT NULL CHECK (label IN ('persona', 'human')),
        value      TEXT NOT NULL,
        initial    TEXT NOT NULL,
        char_limit INTEGER NOT NULL CHECK (char_limit > 0),
        PRIMARY KEY (agent_id, label),
        CHECK (length(value) <= char_limit)
    );
    CREATE TABLE messages (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        agent_id     INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
        role         TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
        speaker_id   TEXT,
        speaker_name TEXT,
        content      TEXT,
        tool_calls   TEXT,
        tool_call_id TEXT,
        name         TEXT,
        in_context   INTEGER NOT NULL DEFAULT 1 CHECK (in_context IN (0, 1)),
        created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    CREATE INDEX messages_agent ON messages (agent_id, id);
    CREATE INDEX messages_agent_time ON messages (agent_id, created_at);
    -- The prompt is rebuilt from in-context rows every step; long conversations are mostly
    -- evicted rows, which this index skips.
    CREATE INDEX messages_in_context ON messages (agent_id, id) WHERE in_context = 1;
    CREATE VIRTUAL TABLE messages_fts USING fts5(
        content, content = 'messages', content_rowid = 'id',
        tokenize = 'unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER messages_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
    END;
    CREATE TRIGGER messages_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content)
            VALUES ('delete', old.id, old.content);
    END;
    -- OF content: eviction (in_context) updates must not rewrite the index.
    CREATE TRIGGER messages_update AFTER UPDATE OF content ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content)
            VALUES ('delete', old.id, old.content);
        INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
    END;
    """,
    # 5: platform events already handled (Slack event ids, mentions, shared files), so an
    # event re-delivered after a restart is not answered twice.
    """
    CREATE TABLE deliveries (
        key TEXT PRIMARY KEY,
        seen_at REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX deliveries_seen ON deliveries (seen_at);
    """,
    # 6: an agent's notes source (scope 'agent:<key>', name 'notes') is attached to its agent
    # like any source, instead of being found by its name.
    """
    INSERT OR IGNORE INTO attachments (agent_key, source_id, attached_by)
        SELECT substr(scope, 7), id, substr(scope, 7) FROM sources
        WHERE scope LIKE 'agent:%' AND name = 'notes';
    """,
    # 7: citation handles per agent, so a handle names one passage for the whole conversation.
    """
    CREATE TABLE citations (
        agent_id   INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
        handle     INTEGER NOT NULL,
        passage_id INTEGER NOT NULL,
        document   TEXT NOT NULL,
        page       INTEGER NOT NULL,
        last_page  INTEGER NOT NULL,
        source     TEXT NOT NULL,
        origin     TEXT,
        PRIMARY KEY (agent_id, handle),
        UNIQUE (agent_id, passage_id)
    );
    """,
)


def match_expression(query: str) -> str | None:
    """An FTS5 query that ORs the words of ``query`` as quoted phrases; None if no words.

    Quoting every word (with ``"`` doubled) means no user text is read as FTS5 syntax.
    """
    words = [w for w in _WORD.findall(query) if _HAS_TOKEN.search(w)][:_MAX_TERMS]
    if not words:
        return None
    return " OR ".join('"' + w.replace('"', '""') + '"' for w in words)


async def _apply_migrations(conn: aiosqlite.Connection) -> None:
    async with conn.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    version = int(row[0]) if row else 0
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        log.info("applying schema migration %d", number)
        # executescript would COMMIT first; run statement by statement inside one transaction.
        await conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(script):
                await conn.execute(statement)
            await conn.execute(f"PRAGMA user_version = {int(number)}")
            await conn.commit()
        except BaseException:
            await conn.rollback()
            raise


def _statements(script: str) -> list[str]:
    """Split a migration script into complete statements (triggers contain ';' too)."""
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements


@dataclass
class _Reader:
    conn: aiosqlite.Connection
    queued: int = 0  # calls sent to its thread and not yet answered


class Database:
    """The state file: one connection for writes and a few read-only ones for reads.

    Each call is one round trip to a connection's thread (the main cost of a small query), and
    calls wait on nothing else when they need not: under many concurrent conversations, every
    hand-over of a lock or a pooled connection costs a turn of a busy event loop.

    Reads go to the reader with the fewest calls in hand. WAL lets readers run beside the writer
    and each other, so a read never queues behind a write, and it sees everything committed
    before it began. Writes share the one writer connection, whose thread runs them in order.
    Transactions take turns under a lock; a lone statement (:meth:`write`) only waits while one
    is open, never for those queued behind it.
    """

    def __init__(
        self, writer: aiosqlite.Connection, readers: Sequence[aiosqlite.Connection]
    ) -> None:
        if not readers:
            raise ValueError("a Database needs at least one reader connection")
        self._conn = writer
        self._lock = asyncio.Lock()
        self._no_transaction = asyncio.Event()
        self._no_transaction.set()
        self._readers = [_Reader(conn) for conn in readers]

    async def fetchall(self, sql: str, params: Sequence[object] = ()) -> list[aiosqlite.Row]:
        """Run a query and return every row."""
        reader = min(self._readers, key=lambda r: r.queued)
        reader.queued += 1
        try:
            return list(await reader.conn.execute_fetchall(sql, params))
        finally:
            reader.queued -= 1

    async def fetchone(self, sql: str, params: Sequence[object] = ()) -> aiosqlite.Row | None:
        """Run a query and return its first row, if any (for queries of one row)."""
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def write(self, sql: str, params: Sequence[object] = ()) -> list[aiosqlite.Row]:
        """Run one statement as a transaction of its own; return any rows it ``RETURNING``s.

        SQLite runs a lone statement atomically and commits it before this returns, in one
        round trip where :meth:`transaction` takes three.
        """
        while not self._no_transaction.is_set():
            await self._no_transaction.wait()
        # The statement reaches the writer's queue before this coroutine yields, so any
        # transaction opened from now on sends its BEGIN after it.
        try:
            return list(await self._conn.execute_fetchall(sql, params))
        except sqlite3.OperationalError as exc:
            raise unwritable(exc)  # noqa: B904 (it is exc itself, or chained to it)

    async def ping(self) -> None:
        """One trivial query: proves the file is open and not locked out by a long write.

        It runs on the writer, behind this process's own transactions, as every write does.
        """
        async with self._lock:
            await self._conn.execute_fetchall("SELECT 1")

    async def instance_id(self) -> str:
        """A random id made once per state file.

        Milvus collections are named with it, so two installations sharing one Milvus server
        never mix passages, whose ids are only unique within one state file.
        """
        async with self.transaction() as conn:
            await conn.execute(
                "INSERT INTO meta (key, value) VALUES ('instance_id', ?) ON CONFLICT DO NOTHING",
                (secrets.token_hex(4),),
            )
        row = await self.fetchone("SELECT value FROM meta WHERE key = 'instance_id'")
        assert row is not None
        return str(row[0])

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Run the block in one write transaction: committed on success, rolled back on error.

        A cancellation anywhere, even during BEGIN or COMMIT (which aiosqlite still runs in
        its thread), ends in a rollback, so the connection is never left inside a transaction.
        """
        async with self._lock:
            self._no_transaction.clear()
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                yield self._conn
                await self._conn.commit()
            except BaseException as exc:
                # Queued behind whatever is still running in aiosqlite's thread (a cancelled
                # BEGIN included); sqlite3 makes it a no-op when no transaction is open.
                await asyncio.shield(self._conn.rollback())
                raise unwritable(exc)  # noqa: B904 (it is exc itself, or chained to it)
            finally:
                # Statements waiting in write() resume before the next transaction's BEGIN:
                # they were woken first.
                self._no_transaction.set()


@asynccontextmanager
async def open_database(path: Path, *, readers: int = READERS) -> AsyncIterator[Database]:
    """Open (creating if needed) the state file in WAL mode with migrations applied, with
    ``readers`` read-only connections beside the writer; a folder it cannot make is a
    :class:`StateUnavailable` sentence."""
    make_data_folder(path.parent)
    async with AsyncExitStack() as stack:
        writer = await stack.enter_async_context(_connect(path))
        await writer.execute("PRAGMA journal_mode = WAL")
        # In WAL mode NORMAL is still safe against corruption and against a killed process;
        # only a power cut can lose the last commits. FULL would fsync every message.
        await writer.execute("PRAGMA synchronous = NORMAL")
        await writer.execute("PRAGMA foreign_keys = ON")
        await _apply_migrations(writer)
        pool = []
        for _ in range(readers):
            reader = await stack.enter_async_context(_connect(path))
            # A read-only connection by contract: a write sent here by mistake fails loudly
            # instead of racing the writer's lock.
            await reader.execute("PRAGMA query_only = ON")
            pool.append(reader)
        yield Database(writer, pool)


@asynccontextmanager
async def _connect(path: Path) -> AsyncIterator[aiosqlite.Connection]:
    # isolation_level=None: we issue BEGIN ourselves so multi-row changes are explicit.
    conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        conn.row_factory = aiosqlite.Row
        await conn.execute("PRAGMA busy_timeout = 5000")
        yield conn
    finally:
        await conn.close()
