"""The state in PostgreSQL, for installations that run several bot processes on one database.

A thin layer over asyncpg rather than an ORM: the stores' SQL is already written once for both
engines, with ``?`` placeholders that are numbered here (``$1``, ``$2``, ...), and asyncpg adds
~40 ms to a command's start-up where SQLAlchemy would add several times that, on commands whose
whole budget is 0.5 s (``bench/cli.py``). Connections come from a pool: every call borrows one,
so reads and transactions of different conversations run side by side on the server.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg  # type: ignore[import-untyped]

from agent.db import postgres_schema
from agent.db.protocol import Dialect, Row, Transaction
from agent.errors import StateUnavailable, shown_url

log = logging.getLogger("agent.db")

# Any number for pg_advisory_xact_lock, the same in every process: replicas starting together
# apply migrations one after another.
_MIGRATION_LOCK = 0x41524348  # "ARCH"
POOL_SIZE = 10
# A held conversation lock keeps its connection for the whole turn (model calls included), so
# locks have their own pool: turns waiting for a lock never starve the queries of the turns
# that hold one. It bounds the turns one process runs at once; more wait their turn.
LOCK_POOL_SIZE = 32

# The failures that mean the connection or the server is gone (or never answered), not that a
# statement is wrong. A connection the server ended while it sat in the pool (a restart, a
# proxy's idle timeout) shows as an administrator shutdown or as a protocol in a bad state.
_UNREACHABLE = (
    OSError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
)


@functools.lru_cache(maxsize=1024)
def numbered(sql: str) -> str:
    """``sql`` with its ``?`` placeholders written as PostgreSQL's ``$1``, ``$2``, ...

    A ``?`` inside a quoted literal or identifier is left alone.
    """
    out: list[str] = []
    count = 0
    quote: str | None = None
    for char in sql:
        if quote is not None:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "?":
            count += 1
            out.append(f"${count}")
            continue
        out.append(char)
    return "".join(out)


def _changed(status: str) -> int:
    """Rows changed, from a command tag such as ``UPDATE 3`` or ``INSERT 0 1``."""
    last = status.rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else 0


class PostgresDatabase:
    """The state database on a PostgreSQL server, through a pool of connections."""

    def __init__(self, pool: asyncpg.Pool, locks: asyncpg.Pool, where: str) -> None:
        self._pool = pool
        self._locks = locks
        self._where = where

    @property
    def dialect(self) -> Dialect:
        return "postgresql"

    async def fetchall(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        # A read is safe to repeat: once, on a fresh connection, when the pooled one turns out
        # to have been cut; a server that is really gone fails the second time too.
        try:
            return list(await self._pool.fetch(numbered(sql), *params))
        except _UNREACHABLE as exc:
            log.info("a pooled connection to %s was cut (%r); reading again", self._where, exc)
        return await self._run(sql, params)

    async def fetchone(self, sql: str, params: Sequence[object] = ()) -> Row | None:
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def write(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        # Outside a transaction block every statement commits on its own. Not repeated: a
        # statement cut off may or may not have committed.
        return await self._run(sql, params)

    async def _run(self, sql: str, params: Sequence[object]) -> list[Row]:
        try:
            return list(await self._pool.fetch(numbered(sql), *params))
        except _UNREACHABLE as exc:
            raise self._unreachable(exc) from exc

    async def ping(self) -> None:
        await self.fetchall("SELECT 1")

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                yield _PostgresTransaction(conn)
        except _UNREACHABLE as exc:
            raise self._unreachable(exc) from exc

    @asynccontextmanager
    async def exclusive(self, key: str) -> AsyncIterator[None]:
        """A session advisory lock on ``key`` for the block, across every process.

        PostgreSQL grants waiters in the order they asked. If this process dies, its
        connection closes and the server releases the lock; a connection that goes back to
        the pool is reset by asyncpg, which unlocks anything left held.
        """
        try:
            conn = await self._locks.acquire()
        except _UNREACHABLE as exc:
            raise self._unreachable(exc) from exc
        try:
            try:
                await conn.execute("SELECT pg_advisory_lock(hashtextextended($1, 0))", key)
            except _UNREACHABLE as exc:
                raise self._unreachable(exc) from exc
            try:
                yield
            finally:
                with contextlib.suppress(*_UNREACHABLE):
                    await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", key)
        finally:
            await self._locks.release(conn)

    def _unreachable(self, exc: BaseException) -> StateUnavailable:
        log.warning("the state database %s failed: %r", self._where, exc)
        return StateUnavailable(
            f"The state database (PostgreSQL at {self._where}) cannot be reached: check that"
            " the server runs, then try again."
        )


class _PostgresTransaction:
    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        return _changed(await self._conn.execute(numbered(sql), *params))

    async def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        await self._conn.executemany(numbered(sql), list(rows))

    async def fetchall(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        return list(await self._conn.fetch(numbered(sql), *params))


async def _apply_migrations(conn: Any) -> None:
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        version = await conn.fetchval("SELECT max(version) FROM schema_version") or 0
        for number, script in enumerate(postgres_schema.MIGRATIONS[version:], start=version + 1):
            log.info("applying PostgreSQL schema migration %d", number)
            await conn.execute(script)
            await conn.execute("INSERT INTO schema_version (version) VALUES ($1)", number)


@asynccontextmanager
async def open_postgres(url: str, *, pool_size: int = POOL_SIZE) -> AsyncIterator[PostgresDatabase]:
    """Connect a pool to the database at ``url`` and bring its schema up to date; a server
    that cannot be reached is a :class:`StateUnavailable` sentence naming it (never its
    password)."""
    where = shown_url(url)
    try:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=pool_size)
    except (*_UNREACHABLE, asyncpg.InvalidCatalogNameError, asyncpg.InvalidPasswordError) as exc:
        log.warning("cannot connect to the state database %s: %r", where, exc)
        raise StateUnavailable(
            f"The state database (PostgreSQL at {where}) cannot be reached: {_reason(exc)}."
            " Check [storage] database_url (or ARCHIVIST_STORAGE_DATABASE_URL)."
        ) from None
    try:
        async with pool.acquire() as conn:
            await _apply_migrations(conn)
        locks = await asyncpg.create_pool(url, min_size=0, max_size=LOCK_POOL_SIZE)
        try:
            yield PostgresDatabase(pool, locks, where)
        finally:
            await locks.close()
    finally:
        await pool.close()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return "the database does not exist"
    if isinstance(exc, asyncpg.InvalidPasswordError):
        return "the server refused the user name or password"
    if isinstance(exc, OSError):
        return exc.strerror or "the connection failed"
    return "the connection failed"
