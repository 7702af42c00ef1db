"""The state database: SQLite by default, PostgreSQL when several processes share it.

The stores see only :class:`Database`; :func:`open_database` picks the engine from where the
state lives: a file path for SQLite, a ``postgresql://`` URL for PostgreSQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from agent.db.meta import instance_id
from agent.db.protocol import Database, Dialect, Row, Transaction
from agent.db.sqlite import open_sqlite
from agent.db.text_search import match_expression

__all__ = [
    "Database",
    "Dialect",
    "Row",
    "Transaction",
    "instance_id",
    "is_postgres_url",
    "match_expression",
    "open_database",
]


def is_postgres_url(location: str | Path) -> bool:
    """Whether ``location`` names a PostgreSQL database rather than a SQLite file."""
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


@asynccontextmanager
async def open_database(location: str | Path) -> AsyncIterator[Database]:
    """Open the state database at ``location`` (a SQLite path or a PostgreSQL URL), with its
    schema up to date."""
    if is_postgres_url(location):
        # Imported here: installations on SQLite never load asyncpg.
        from agent.db.postgres import open_postgres

        async with open_postgres(str(location)) as pg:
            yield pg
    else:
        async with open_sqlite(Path(location)) as sqlite:
            yield sqlite
