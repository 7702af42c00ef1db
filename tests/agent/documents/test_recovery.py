"""Recovery after a failed load: real SQLite, real Milvus (Lite and server) and the real model."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import time
from pathlib import Path

from agent.documents.library import Library
from agent.documents.loads import FileInput, Progress
from agent.documents.recovery import STALE_AFTER_SECONDS, recover
from bot.app import open_library
from bot.config import Settings
from tests import pdfs
from tests.agent.documents.helpers import SCOPE, _passages_in_archive


async def test_milvus_failing_mid_load_rolls_back_and_cleans_up_at_next_start(
    settings: Settings, tmp_path: Path
) -> None:
    manual = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 40)
    async with open_library(settings) as library:
        existing = pdfs.make_pdf(tmp_path / "keep.pdf", ["This source must survive."])
        await library.load(SCOPE, "docs", [FileInput(existing)], created_by="test")
        before = (await library.source(SCOPE, "docs"))[0]

        def pull_the_plug(progress: Progress) -> None:
            # The real client, closed under the loader's feet: the next insert fails.
            library.archive._client.close()  # type: ignore[attr-defined]

        report = await library.load(
            SCOPE, "docs", [FileInput(manual)], created_by="test", progress=pull_the_plug
        )
        [failed] = report.failed
        assert failed.error is not None and "Milvus" in failed.error
        after, files = await library.source(SCOPE, "docs")
        assert after.status == "ready" and after.passages == before.passages
        assert [f.status for f in files] == ["ready", "failed"]
        assert len(await library.registry.pending_cleanups()) == 1
    async with open_library(settings) as library:
        assert await library.registry.pending_cleanups() == []
        assert await _passages_in_archive(library, after.id) == before.passages
        found = await library.search_sources(SCOPE, ["docs"], pdfs.manual_marker(3), top_k=50)
        assert {r.document for r in found.results} == {"keep.pdf"}


async def test_an_interrupted_first_load_leaves_no_source_as_a_failed_one_does(
    library: Library, tmp_path: Path
) -> None:
    """Both end the same way: a source exists once something of it has loaded. A killed
    load of a source that has files keeps the source, its file listed as interrupted."""
    kept = pdfs.make_pdf(tmp_path / "keep.pdf", ["This source keeps its ready file."])
    await library.load(SCOPE, "kept", [FileInput(kept)], created_by="test")
    registry = library.registry
    model = (await library.source(SCOPE, "kept"))[0]
    dead = await asyncio.create_subprocess_exec("true")
    await dead.wait()
    owner = f"{socket.gethostname()}:{dead.pid}"
    for name in ("fresh", "kept"):
        source = await registry.open_for_loading(
            SCOPE, name, model=model.embedding_model, dim=model.embedding_dim, created_by="test"
        )
        row = await registry.add_file(
            source.id, name="big.pdf", sha256="f" * 64, size=1, loaded_by="test", owner=owner
        )
        assert row is not None
    assert await library.start() == 2
    assert [s.name for s in await library.sources(SCOPE)] == ["kept"]
    source, files = await library.source(SCOPE, "kept")
    assert source.status == "ready"
    assert [(f.name, f.status) for f in files] == [("keep.pdf", "ready"), ("big.pdf", "failed")]
    assert files[1].error is not None and "interrupted" in files[1].error
    assert await registry.pending_cleanups() == []


async def test_a_load_whose_pid_was_reused_is_rolled_back_once_its_heartbeat_is_stale(
    settings: Settings, tmp_path: Path
) -> None:
    """Issue 13, item 11: the owner's pid belongs to a live process again (here our parent),
    so only the heartbeat tells the load is dead; a running bot finds it without a restart."""
    async with open_library(settings) as library:
        kept = pdfs.make_pdf(tmp_path / "keep.pdf", ["This source keeps its ready file."])
        await library.load(SCOPE, "docs", [FileInput(kept)], created_by="test")
        model = (await library.source(SCOPE, "docs"))[0]
        registry = library.registry
        source = await registry.open_for_loading(
            SCOPE, "docs", model=model.embedding_model, dim=model.embedding_dim, created_by="t"
        )
        rows = {}
        for name, owner in [
            ("reused.pdf", f"{socket.gethostname()}:{os.getppid()}"),
            ("ours.pdf", f"{socket.gethostname()}:{os.getpid()}"),
        ]:
            row = await registry.add_file(
                source.id, name=name, sha256=name * 4, size=1, loaded_by="t", owner=owner
            )
            assert row is not None
            rows[name] = row.id
        # Fresh heartbeats: a live pid (ours, or a process that reused one) is a live load.
        assert await recover(registry, [], at_start=False) == 0
        assert [f.status for f in (await library.source(SCOPE, "docs"))[1]] == [
            "ready",
            "loading",
            "loading",
        ]
        stale = time.time() - STALE_AFTER_SECONDS - 60
        with sqlite3.connect(settings.storage.sqlite_path) as conn:
            conn.execute("UPDATE source_files SET heartbeat = ?", (stale,))
        assert await recover(registry, [], at_start=False) == 2
        files = (await library.source(SCOPE, "docs"))[1]
    assert [(f.name, f.status) for f in files] == [
        ("keep.pdf", "ready"),
        ("reused.pdf", "failed"),
        ("ours.pdf", "failed"),
    ]
