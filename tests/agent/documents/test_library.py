"""The library end to end on real SQLite, real Milvus (Lite and server) and the real model."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from pathlib import Path

import pytest

from agent.documents.embed import Vectors
from agent.documents.library import Library
from agent.documents.loads import FileInput, Progress
from agent.errors import ArchiveUnavailable, EmbeddingMismatch, SourceNotFound
from agent.values import Scope
from bot.app import open_library
from bot.config import Settings
from tests import pdfs
from tests.agent.documents.test_registry import INJECTIONS

SCOPE = "global"


async def _passages_in_archive(library: Library, source_id: int) -> int:
    return await library.archive.count(Scope((source_id,)))


async def test_load_list_search_with_the_right_page_then_delete(
    library: Library, tmp_path: Path
) -> None:
    manual = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 12)
    report = await library.load(SCOPE, "manual", [FileInput(manual)], created_by="test")
    assert report.failed == []
    assert report.summary().startswith("Loaded ")
    assert "from 12 pages (1 file) into source 'manual'" in report.summary()

    [source] = await library.sources()
    assert (source.name, source.status, source.files, source.pages) == ("manual", "ready", 1, 12)
    assert source.passages == report.loaded[0].passages > 0
    assert await _passages_in_archive(library, source.id) == source.passages

    for page in (3, 7, 12):
        found = await library.search_sources(SCOPE, ["manual"], pdfs.manual_marker(page), top_k=5)
        best = found.results[0]
        assert best.page == page, best
        assert pdfs.manual_marker(page) in best.text
        assert (best.document, best.source) == ("manual.pdf", "manual")
        assert found.total == source.passages

    await library.delete(SCOPE, "manual")
    assert await library.sources() == []
    assert await _passages_in_archive(library, source.id) == 0
    with pytest.raises(SourceNotFound):
        await library.search_sources(SCOPE, ["manual"], "frequency")


async def test_paging_reports_the_true_total(library: Library, tmp_path: Path) -> None:
    manual = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 6)
    await library.load(SCOPE, "manual", [FileInput(manual)], created_by="test")
    first = await library.search_sources(SCOPE, ["manual"], "calibration", top_k=2, page=0)
    second = await library.search_sources(SCOPE, ["manual"], "calibration", top_k=2, page=1)
    [source] = await library.sources()
    assert first.total == second.total == source.passages >= 6
    assert first.pages == math.ceil(first.total / 2)
    assert [r.rank for r in second.results] == [3, 4]
    assert not {r.chunk for r in first.results} & {r.chunk for r in second.results}


async def test_paging_embeds_the_query_once(
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manual = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 6)
    await library.load(SCOPE, "manual", [FileInput(manual)], created_by="test")
    embedder = library._embedder
    embedded: list[str] = []
    embed = embedder.embed

    async def counted(texts: Sequence[str]) -> Vectors:
        embedded.extend(texts)
        return await embed(texts)

    monkeypatch.setattr(embedder, "embed", counted)
    pages = [
        await library.search_sources(SCOPE, ["manual"], "calibration", top_k=2, page=page)
        for page in (0, 1, 0)
    ]
    assert embedded == ["calibration"]
    assert pages[0] == pages[2] and pages[0].results != pages[1].results
    await library.search_sources(SCOPE, ["manual"], "frequency", top_k=2, mode="dense")
    assert embedded == ["calibration", "frequency"]


async def test_workspaces_are_isolated(library: Library, tmp_path: Path) -> None:
    one = pdfs.make_pdf(tmp_path / "one.pdf", ["The password of guild one is heliotrope."])
    two = pdfs.make_pdf(tmp_path / "two.pdf", ["The password of guild two is marmalade."])
    await library.load("discord:1", "guide", [FileInput(one)], created_by="test")
    await library.load("discord:2", "guide", [FileInput(two)], created_by="test")

    await library.attach("discord:1:10", "discord:1", "guide", by="test")
    found = await library.search_attached("discord:1:10", "what is the password?", top_k=10)
    assert [r.document for r in found.results] == ["one.pdf"]

    with pytest.raises(SourceNotFound):
        await library.attach("discord:3:30", "discord:3", "guide", by="test")
    nothing = await library.search_attached("discord:3:30", "what is the password?")
    assert nothing.results == [] and nothing.total == 0


async def test_an_agent_searches_only_what_is_attached(library: Library, tmp_path: Path) -> None:
    a = pdfs.make_pdf(tmp_path / "a.pdf", ["Apples grow on trees in the orchard."])
    b = pdfs.make_pdf(tmp_path / "b.pdf", ["Bananas grow on large herbaceous plants."])
    await library.load(SCOPE, "a", [FileInput(a)], created_by="test")
    await library.load(SCOPE, "b", [FileInput(b)], created_by="test")
    key = "console:local:default"
    source, new = await library.attach(key, SCOPE, "a", by="test")
    assert new and source.name == "a"
    assert (await library.attach(key, SCOPE, "a", by="test"))[1] is False
    found = await library.search_attached(key, "what grows on plants?", top_k=10)
    assert {r.source for r in found.results} == {"a"}
    await library.detach(key, SCOPE, "a")
    assert (await library.search_attached(key, "what grows?")).results == []


@pytest.mark.parametrize("name", INJECTIONS)
async def test_crafted_source_names_find_nothing(
    library: Library, tmp_path: Path, name: str
) -> None:
    secret = pdfs.make_pdf(tmp_path / "secret.pdf", ["Another workspace's secret plan."])
    await library.load("slack:T2", "secret", [FileInput(secret)], created_by="test")
    with pytest.raises(SourceNotFound, match="No such source"):
        await library.search_sources("slack:T1", [name], "secret plan")
    with pytest.raises(SourceNotFound, match="No such source"):
        await library.attach("slack:T1:C1", "slack:T1", name, by="test")


BAD_FILES = {
    "html.pdf": (pdfs.make_html_as_pdf, "HTML page"),
    "empty.pdf": (pdfs.make_empty, "empty"),
    "truncated.pdf": (pdfs.make_truncated_pdf, "damaged"),
    "garbage.pdf": (pdfs.make_garbage_pdf, "damaged"),
    "locked.pdf": (pdfs.make_encrypted_pdf, "password"),
    "scan.pdf": (pdfs.make_scanned_pdf, "no extractable text"),
    "bomb.pdf": (pdfs.make_bomb_pdf, "when decompressed"),
}


@pytest.mark.parametrize("filename", sorted(BAD_FILES))
async def test_a_bad_file_leaves_nothing_behind(
    library: Library, tmp_path: Path, filename: str
) -> None:
    make, reason = BAD_FILES[filename]
    report = await library.load(
        SCOPE, "bad", [FileInput(make(tmp_path / filename))], created_by="t"
    )
    [result] = report.failed
    assert result.error is not None
    assert f"'{filename}'" in result.error and reason in result.error
    assert report.source is None
    assert await library.sources() == []


async def test_one_bad_file_in_a_folder_does_not_stop_the_rest(
    library: Library, tmp_path: Path
) -> None:
    good = pdfs.make_pdf(tmp_path / "good.pdf", ["Good content about turbines."])
    bad = pdfs.make_html_as_pdf(tmp_path / "bad.pdf")
    other = pdfs.make_pdf(tmp_path / "other.pdf", ["Other content about gearboxes."])
    report = await library.load(
        SCOPE, "docs", [FileInput(good), FileInput(bad), FileInput(other)], created_by="test"
    )
    assert [f.name for f in report.loaded] == ["good.pdf", "other.pdf"]
    assert [f.name for f in report.failed] == ["bad.pdf"]
    assert report.source is not None and report.source.files == 2
    _, files = await library.source(SCOPE, "docs")
    assert [f.status for f in files] == ["ready", "ready"]


async def test_loading_the_same_file_twice_is_a_no_op(library: Library, tmp_path: Path) -> None:
    path = pdfs.make_pdf(tmp_path / "a.pdf", ["Idempotent loading matters."])
    first = await library.load(SCOPE, "a", [FileInput(path)], created_by="test")
    again = await library.load(SCOPE, "a", [FileInput(path, name="renamed.pdf")], created_by="test")
    assert [f.status for f in again.files] == ["duplicate"]
    assert "already" in again.summary()
    assert again.source is not None and first.source is not None
    assert again.source.passages == first.source.passages
    assert await _passages_in_archive(library, first.source.id) == first.source.passages


async def test_progress_is_reported_per_range_of_pages(library: Library, tmp_path: Path) -> None:
    manual = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 40)
    seen: list[Progress] = []
    await library.load(SCOPE, "m", [FileInput(manual)], created_by="test", progress=seen.append)
    assert [p.pages_done for p in seen] == [16, 32, 40]
    assert all(p.pages_total == 40 and p.document == "manual.pdf" for p in seen)
    assert seen[-1].passages_done > seen[0].passages_done > 0


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


async def test_a_source_from_another_embedding_model_is_refused(library: Library) -> None:
    await library.registry.open_for_loading(
        SCOPE, "old", model="text-embedding-3-small", dim=1536, created_by="test"
    )
    with pytest.raises(EmbeddingMismatch, match="text-embedding-3-small"):
        await library.attach("console:local:default", SCOPE, "old", by="test")


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


async def test_hostile_file_names_are_stored_and_shown_safely(
    library: Library, tmp_path: Path
) -> None:
    path = pdfs.make_pdf(tmp_path / "plain.pdf", ["Names are user input too."])
    hostile = "../../etc/\x1b[31mevil\n'quoted' \"name\"" + "x" * 500 + ".pdf"
    report = await library.load(SCOPE, "names", [FileInput(path, name=hostile)], created_by="t")
    [loaded] = report.loaded
    assert "/" not in loaded.name and "\x1b" not in loaded.name and "\n" not in loaded.name
    assert len(loaded.name) <= 100
    found = await library.search_sources(SCOPE, ["names"], "user input")
    assert found.results[0].document == loaded.name


async def test_configured_limits_refuse_large_files(settings: Settings, tmp_path: Path) -> None:
    small = settings.model_copy(
        update={"ingest": settings.ingest.model_copy(update={"max_pages": 2, "max_file_mb": 0.5})}
    )
    three_pages = pdfs.make_pdf(tmp_path / "three.pdf", ["one", "two", "three"])
    big = pdfs.make_pdf(tmp_path / "big.pdf", [" ".join(["filler"] * 4000)] * 2)
    big.write_bytes(big.read_bytes() + b"%" + b"0" * 600_000)  # padding after %%EOF
    async with open_library(small) as library:
        report = await library.load(
            SCOPE, "x", [FileInput(three_pages), FileInput(big)], created_by="t"
        )
    errors = [f.error or "" for f in report.failed]
    assert "3 pages" in errors[0] and "2" in errors[0]
    assert "'big.pdf'" in errors[1] and "MB" in errors[1]


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


async def test_a_parser_that_takes_too_long_is_stopped(settings: Settings, tmp_path: Path) -> None:
    impatient = settings.model_copy(
        update={"ingest": settings.ingest.model_copy(update={"parse_timeout": 0.001})}
    )
    # Many pages: each parsing task (16 pages) takes far longer than the 1 ms allowed.
    slow = pdfs.make_manual_pdf(tmp_path / "slow.pdf", 64)
    async with open_library(impatient) as library:
        report = await library.load(SCOPE, "x", [FileInput(slow)], created_by="t")
        [failed] = report.failed
        assert failed.error is not None and "'slow.pdf' took more than" in failed.error
        assert await library.sources() == []


async def test_two_loads_of_the_same_file_into_a_new_source_keep_it(
    library: Library, tmp_path: Path
) -> None:
    path = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 20)
    first, second = await asyncio.gather(
        library.load(SCOPE, "guide", [FileInput(path)], created_by="a"),
        library.load(SCOPE, "guide", [FileInput(path)], created_by="b"),
    )
    assert sorted(f.status for f in first.files + second.files) == ["duplicate", "loaded"]
    [source] = await library.sources()
    assert source.status == "ready" and source.passages > 0
    assert await _passages_in_archive(library, source.id) == source.passages


async def test_deleting_a_source_while_it_loads_leaves_no_passages(
    library: Library, tmp_path: Path
) -> None:
    path = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 40)
    deleted = asyncio.Event()

    def delete_midway(progress: Progress) -> None:
        if not deleted.is_set():
            deleted.set()
            asyncio.get_running_loop().create_task(library.delete(SCOPE, "guide"))

    report = await library.load(
        SCOPE, "guide", [FileInput(path)], created_by="t", progress=delete_midway
    )
    [failed] = report.failed
    assert failed.error is not None and "was deleted while 'manual.pdf' was loading" in failed.error
    assert await library.sources() == []
    assert await library.registry.pending_cleanups() == []
    assert await _passages_in_archive(library, 1) == 0
