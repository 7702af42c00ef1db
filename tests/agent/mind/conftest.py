"""The mind's tests: Milvus Lite and a fresh SQLite file (``core`` is in ../conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.db import Database, open_database


@pytest.fixture
def backend() -> str:
    """The mind does not depend on the Milvus backend: Lite is enough here."""
    return "lite"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh state file with every migration applied."""
    async with open_database(tmp_path / "archivist.db") as database:
        yield database
