"""What the stores ask of the state database, whichever engine holds it.

The stores write plain SQL with ``?`` placeholders in the subset SQLite and PostgreSQL share;
the few statements that differ (full-text search, JSON) are chosen by :attr:`Database.dialect`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Literal, Protocol

Dialect = Literal["sqlite", "postgresql"]


class Row(Protocol):
    """A result row, read by column position or name (sqlite3.Row and asyncpg.Record both)."""

    def __getitem__(self, key: int | str, /) -> Any: ...

    def keys(self) -> Iterable[str]: ...


class Transaction(Protocol):
    """Statements inside one write transaction."""

    async def execute(self, sql: str, params: Sequence[object] = ()) -> int:
        """Run one statement; return how many rows it changed."""
        ...

    async def executemany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        """Run one statement once per row of parameters."""
        ...

    async def fetchall(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Run a statement and return every row (a read that must see this transaction)."""
        ...


class Database(Protocol):
    """The state database: reads, lone writes and write transactions."""

    @property
    def dialect(self) -> Dialect: ...

    async def fetchall(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Run a query and return every row."""
        ...

    async def fetchone(self, sql: str, params: Sequence[object] = ()) -> Row | None:
        """Run a query and return its first row, if any."""
        ...

    async def write(self, sql: str, params: Sequence[object] = ()) -> list[Row]:
        """Run one statement as a transaction of its own; return any rows it ``RETURNING``s."""
        ...

    async def ping(self) -> None:
        """One trivial query, proving the database answers."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """A write transaction: committed when the block ends, rolled back on any error."""
        ...

    def exclusive(self, key: str) -> AbstractAsyncContextManager[None]:
        """Hold ``key`` for the block against every process sharing this database."""
        ...
