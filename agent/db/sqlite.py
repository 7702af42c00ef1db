"""The state in a SQLite file: connections, transactions and migrations.

Migrations (:mod:`agent.db.sqlite_schema`) are applied in order at start-up, each in one
transaction, and the schema version is kept in ``PRAGMA user_version``.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import aiosqlite

from agent.db import sqlite_schema
from agent.db.failures import make_data_folder, unwritable
from agent.db.protocol import Dialect, Row

if TYPE_CHECKING:
    from agent.db.protocol import Transaction

log = logging.getLogger("agent.db")

# Read-only connections beside the writer, each with its own thread (SQLite releases the GIL
# while it works). bench/turns.py measured 1, 2 and 4 alike on 2 cores; more than one keeps a
# long query (a large keyword search) from holding up other conversations' small reads.
READERS = 4


async def _apply_migrations(conn: aiosqlite.Connection) -> None:
    async with conn.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    version = int(row[0]) if row else 0
    for number, script in enumerate(sqlite_schema.MIGRATIONS[version:], start=version + 1):
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


class SqliteDatabase:
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
            raise ValueError("a SqliteDatabase needs at least one reader connection")
        self._conn = writer
        self._lock = asyncio.Lock()
        self._no_transaction = asyncio.Event()
        self._no_transaction.set()
        self._readers = [_Reader(conn) for conn in readers]

    @property
    def dialect(self) -> Dialect:
        return "sqlite"

    async def fetchall(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Run a query and return every row."""
        reader = min(self._readers, key=lambda r: r.queued)
        reader.queued += 1
        try:
            return list(await reader.conn.execute_fetchall(sql, params))
        finally:
            reader.queued -= 1

    async def fetchone(self, sql: str, params: Sequence[object] = ()) -> Row | None:
        """Run a query and return its first row, if any (for queries of one row)."""
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def write(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
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

    @asynccontextmanager
    async def exclusive(self, key: str) -> AsyncIterator[None]:
        # One process owns a SQLite state file (the bot, or a command beside it that does not
        # run turns), and its own queues already keep a conversation's turns apart.
        yield

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """Run the block in one write transaction: committed on success, rolled back on error.

        A cancellation anywhere, even during BEGIN or COMMIT (which aiosqlite still runs in
        its thread), ends in a rollback, so the connection is never left inside a transaction.
        """
        async with self._lock:
            self._no_transaction.clear()
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                yield _SqliteTransaction(self._conn)
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


class _SqliteTransaction:
    def __init__(self, conn: aiosqlite.Connection) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        async with self._conn.execute(sql, params) as cursor:
            return int(cursor.rowcount)

    async def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        await self._conn.executemany(sql, rows)

    async def fetchall(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        return list(await self._conn.execute_fetchall(sql, params))


@asynccontextmanager
async def open_sqlite(path: Path, *, readers: int = READERS) -> AsyncIterator[SqliteDatabase]:
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
        yield SqliteDatabase(writer, pool)


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
