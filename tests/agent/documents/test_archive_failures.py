"""A store that fails while serving: the sentence, which may reach a channel, names no address.

The operator still finds the URI (or the Lite file) and the cause in the log line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from pymilvus import MilvusClient

from agent.documents.archive import UNAVAILABLE
from agent.documents.loads import FileInput
from agent.errors import ArchiveUnavailable
from bot.app import open_library
from tests import pdfs
from tests.agent.documents.helpers import SCOPE
from tests.conftest import make_settings
from tests.milvus_server import MilvusServerProcess, free_port

QUERY = "Where are the notes kept?"


@pytest.fixture
def milvus_server(tmp_path: Path) -> Iterator[MilvusServerProcess]:
    """A server of this test's own, which it may stop."""
    server = MilvusServerProcess(tmp_path / "milvus", free_port())
    server.start(timeout=180)
    try:
        yield server
    finally:
        server.stop()


async def test_a_server_that_stops_is_one_sentence_without_its_address(
    tmp_path: Path,
    model_cache: Path,
    clean_env: None,
    milvus_server: MilvusServerProcess,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_settings(tmp_path / "data", model_cache, milvus_server.uri)
    settings = settings.model_copy(
        update={"milvus": settings.milvus.model_copy(update={"timeout": 3.0})}
    )
    notes = pdfs.make_pdf(tmp_path / "notes.pdf", ["The notes are kept in the archive room."])
    async with open_library(settings) as library:
        await library.load(SCOPE, "notes", [FileInput(notes)], created_by="t")
        milvus_server.stop()
        with caplog.at_level(logging.WARNING), pytest.raises(ArchiveUnavailable) as caught:
            await library.search_sources(SCOPE, ["notes"], QUERY)
    assert str(caught.value) == UNAVAILABLE
    port = str(milvus_server.port)
    assert port not in str(caught.value)
    logged = [r.getMessage() for r in caplog.records if r.name == "agent.documents.archive"]
    assert any(milvus_server.uri in line and "Fail connecting" in line for line in logged), logged


async def test_a_lite_failure_while_serving_is_neither_a_path_nor_blamed_on_another_process(
    tmp_path: Path, model_cache: Path, clean_env: None, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path / "data", model_cache)
    notes = pdfs.make_pdf(tmp_path / "notes.pdf", ["The notes are kept in the archive room."])
    async with open_library(settings) as library:
        await library.load(SCOPE, "notes", [FileInput(notes)], created_by="t")
        # Someone drops the collection behind the bot's back (this process holds the file).
        lite = MilvusClient(str(settings.milvus_uri))
        for collection in cast("list[str]", lite.list_collections()):
            lite.drop_collection(collection)
        with caplog.at_level(logging.WARNING), pytest.raises(ArchiveUnavailable) as caught:
            await library.search_sources(SCOPE, ["notes"], QUERY)
    assert str(caught.value) == UNAVAILABLE
    logged = [r.getMessage() for r in caplog.records if r.name == "agent.documents.archive"]
    assert any(str(settings.milvus_uri) in line for line in logged), logged
