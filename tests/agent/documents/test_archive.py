"""The Milvus archive as a library sees it: on Milvus Lite and on a real Milvus server."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.documents.loads import FileInput
from agent.errors import ArchiveUnavailable
from bot.app import open_library
from bot.config import Settings
from tests import pdfs
from tests.agent.documents.helpers import SCOPE


async def test_an_unreachable_milvus_server_is_one_sentence_naming_it(
    settings: Settings,
) -> None:
    down = settings.model_copy(
        update={
            "milvus": settings.milvus.model_copy(
                update={"uri": "http://127.0.0.1:9", "timeout": 2.0}
            )
        }
    )
    with pytest.raises(ArchiveUnavailable, match=r"Milvus at http://127\.0\.0\.1:9 is unreachable"):
        async with open_library(down):
            pass


async def test_installations_sharing_one_milvus_never_mix(
    settings: Settings, backend: str, tmp_path: Path
) -> None:
    uri = settings.milvus.uri if backend == "server" else str(tmp_path / "shared" / "milvus.db")

    def installation(name: str) -> Settings:
        return settings.model_copy(
            update={
                "storage": settings.storage.model_copy(update={"data_dir": tmp_path / name}),
                "milvus": settings.milvus.model_copy(update={"uri": uri}),
            }
        )

    ours = pdfs.make_pdf(tmp_path / "ours.pdf", ["Our deployment keeps its own notes."])
    theirs = pdfs.make_pdf(tmp_path / "theirs.pdf", ["Their deployment keeps other notes."])
    async with open_library(installation("a")) as a, open_library(installation("b")) as b:
        await a.load(SCOPE, "notes", [FileInput(ours)], created_by="t")
        await b.load(SCOPE, "notes", [FileInput(theirs)], created_by="t")
        [in_a], [in_b] = await a.sources(), await b.sources()
        assert in_a.id == in_b.id  # ids are per state file ...
        found = await a.search_sources(SCOPE, ["notes"], "deployment notes", top_k=10)
        assert {r.document for r in found.results} == {"ours.pdf"}  # ... yet nothing mixes
