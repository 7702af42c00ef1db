"""Loading into the library end to end: bad files, duplicates, progress, limits, races.

Real SQLite, real Milvus (Lite and server) and the real model; the loads run in
``agent/documents/loader.py``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent.documents.library import Library
from agent.documents.loads import FileInput, Progress, named_apart
from bot.app import open_library
from bot.config import Settings
from tests import pdfs
from tests.agent.documents.helpers import SCOPE, _passages_in_archive

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
    # The refused file is listed too, with why (issue 13, item 13).
    assert [(f.name, f.status) for f in files] == [
        ("good.pdf", "ready"),
        ("bad.pdf", "failed"),
        ("other.pdf", "ready"),
    ]
    assert files[1].error == report.failed[0].error


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


async def test_a_page_of_too_much_text_or_a_file_of_too_many_passages_is_refused(
    settings: Settings, tmp_path: Path
) -> None:
    # Issue 13, item 11: a one-page file with megabytes of text kept a load busy for hours.
    capped = settings.model_copy(
        update={
            "ingest": settings.ingest.model_copy(
                update={"max_page_chars": 2000, "max_file_passages": 3}
            )
        }
    )
    dense = pdfs.make_pdf(tmp_path / "dense.pdf", ["short page", "word " * 500])
    long = pdfs.make_manual_pdf(tmp_path / "long.pdf", 12)
    fine = pdfs.make_pdf(tmp_path / "fine.pdf", ["A page of ordinary length."])
    async with open_library(capped) as library:
        report = await library.load(
            SCOPE, "x", [FileInput(dense), FileInput(long), FileInput(fine)], created_by="t"
        )
        assert [f.name for f in report.loaded] == ["fine.pdf"]
        dense_error, long_error = (f.error or "" for f in report.failed)
        assert "'dense.pdf' has 2,499 characters of text on page 2" in dense_error
        assert "2,000" in dense_error
        assert "'long.pdf' makes more than 3 passages" in long_error
        [source] = await library.sources()
        assert source.files == 1 and await _passages_in_archive(library, source.id) == 1


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


async def test_files_that_share_a_name_are_cited_by_their_folders(
    library: Library, tmp_path: Path
) -> None:
    first = pdfs.make_pdf(tmp_path / "valgrind" / "docs" / "manual.pdf", ["Memcheck finds leaks."])
    second = pdfs.make_pdf(tmp_path / "gdb" / "docs" / "manual.pdf", ["Breakpoints stop a run."])
    other = pdfs.make_pdf(tmp_path / "gdb" / "notes.pdf", ["Notes about watchpoints."])
    inputs = named_apart([first, second, other])
    assert [i.display_name for i in inputs] == [
        "valgrind/docs/manual.pdf",
        "gdb/docs/manual.pdf",
        "notes.pdf",
    ]
    report = await library.load(SCOPE, "tools", inputs, created_by="t")
    assert [f.name for f in report.loaded] == [i.display_name for i in inputs]
    found = await library.search_sources(SCOPE, ["tools"], "memcheck leaks", top_k=3)
    assert found.results[0].document == "valgrind/docs/manual.pdf"
    assert found.results[0].citation.startswith("valgrind/docs/manual.pdf p.1")
