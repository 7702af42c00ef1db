"""The mind's tests: Milvus Lite and a fresh state database, SQLite and PostgreSQL (``core``
is in ../conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.db import Database, open_database
from tests.conftest import STATES


@pytest.fixture
def backend() -> str:
    """The mind does not depend on the Milvus backend: Lite is enough here."""
    return "lite"


@pytest.fixture(params=STATES)
def state(request: pytest.FixtureRequest) -> str:
    """The mind's stores and loop run on both state engines."""
    return str(request.param)


@pytest.fixture
async def db(state_location: str | Path) -> AsyncIterator[Database]:
    """A fresh state database with every migration applied."""
    async with open_database(state_location) as database:
        yield database
