"""Load PDF files into a source: parse, chunk, embed, insert, then make it visible.

Parsing is pure-Python CPU work, so it runs in a separate process, a range of pages at a time,
while this process embeds the previous range: the two overlap on two cores. A file's passages
become searchable only when all of them are in (its row turns ``ready``); a failure marks the
file failed and removes whatever reached the archive.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import socket
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from agent.documents.archive import Archive, Passage
from agent.documents.chunk import Chunk, Chunker
from agent.documents.embed import Embedder
from agent.documents.keyword import KeywordIndex
from agent.documents.parser_worker import die_with_parent, run_limited, too_slow
from agent.documents.pdf import (
    PageText,
    PdfInfo,
    PdfLimits,
    ensure_text,
    extract_pages,
    inspect_pdf,
    safe_display_name,
    strip_repeated_lines,
)
from agent.documents.recovery import drain_cleanups
from agent.documents.registry import Source, SourceFile, SourceRegistry, quoted_name
from agent.errors import (
    ArchivistError,
    CorruptDocument,
    DocumentError,
    DocumentTooLarge,
    SourceNotFound,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

# Passage ids are (file id << CHUNK_BITS) | chunk index: stable, so a retried insert replaces.
CHUNK_BITS = 24
_EMBED_GROUP = 64
_PREFETCH = 2


@dataclass(frozen=True)
class FileInput:
    """A file to load: where it is, what to call it, and where it came from (for citations)."""

    path: Path
    name: str | None = None
    origin: str | None = None

    @property
    def display_name(self) -> str:
        """The name shown to users and stored with passages."""
        return safe_display_name(self.name or self.path.name)


@dataclass(frozen=True)
class Progress:
    """Where a load is: the current file and totals so far."""

    document: str
    file_index: int
    files_total: int
    pages_done: int
    pages_total: int
    passages_done: int


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class FileResult:
    """The outcome of loading one file."""

    name: str
    status: Literal["loaded", "duplicate", "failed"]
    pages: int = 0
    passages: int = 0
    error: str | None = None


@dataclass
class StageTimes:
    """Seconds spent waiting on each stage (parse is what was not hidden behind embedding)."""

    parse: float = 0.0
    chunk: float = 0.0
    embed: float = 0.0
    insert: float = 0.0


@dataclass(frozen=True)
class LoadReport:
    """What a load did, file by file."""

    source: Source | None
    source_name: str
    files: list[FileResult]
    times: StageTimes = field(default_factory=StageTimes)

    @property
    def failed(self) -> list[FileResult]:
        """Files that did not load."""
        return [f for f in self.files if f.status == "failed"]

    @property
    def loaded(self) -> list[FileResult]:
        """Files whose passages are now in the source."""
        return [f for f in self.files if f.status == "loaded"]

    @property
    def passages(self) -> int:
        """Passages added by the files that loaded."""
        return sum(f.passages for f in self.loaded)

    def summary(self) -> str:
        """One line in the style of ``Loaded 914 passages from 285 pages (1 file) into ...``."""
        loaded = self.loaded
        passages = self.passages
        pages = sum(f.pages for f in loaded)
        files = f"{len(loaded)} file" + ("" if len(loaded) == 1 else "s")
        line = (
            f"Loaded {passages} passages from {pages} pages ({files}) into source"
            f" {quoted_name(self.source_name)}"
        )
        duplicates = [f for f in self.files if f.status == "duplicate"]
        if duplicates:
            line += f"; {len(duplicates)} already there"
        if self.failed:
            line += f"; {len(self.failed)} failed"
        return line


class ParsePool:
    """A one-process pool for PDF parsing that replaces itself if the worker dies or hangs.

    ``spawn`` rather than ``fork``: this process runs threads (gRPC, onnxruntime) that a
    forked child would inherit in an unknown state.
    """

    def __init__(self, *, timeout: float = 120.0) -> None:
        self._timeout = timeout
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=die_with_parent,
            )
        return self._executor

    async def run(self, display_name: str, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in the worker process.

        The worker stops a call that runs longer than the timeout itself (a hostile file can
        make a parser loop), so time spent queued does not count; a worker that crashes, or
        hangs where even that cannot reach it, is replaced. Either way the file is refused
        with a :class:`DocumentError`.
        """
        loop = asyncio.get_running_loop()
        call = loop.run_in_executor(
            self._pool(), run_limited, self._timeout, display_name, fn, *args
        )
        try:
            # Backstop only: this load queues at most _PREFETCH calls ahead of this one.
            return await asyncio.wait_for(call, self._timeout * (_PREFETCH + 1) + 10)
        except BrokenProcessPool:
            self.shutdown()
            raise CorruptDocument(
                display_name,
                f"'{display_name}' made the PDF parser crash: re-save it with a PDF tool"
                " (or print it to a new PDF) and try again.",
            ) from None
        except asyncio.TimeoutError:
            self.shutdown()
            raise too_slow(display_name, self._timeout) from None

    def shutdown(self) -> None:
        """Stop the worker process at once (a new one starts on next use)."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        # A hung worker would never pick up a shutdown request: end it outright.
        # (_processes is private but has been stable since Python 3.2.)
        for process in list(getattr(executor, "_processes", {}).values()):
            process.terminate()
        executor.shutdown(wait=False, cancel_futures=True)


def _chunk_pages(chunker: Chunker, pages: list[PageText], last: bool) -> list[Chunk]:
    """Feed a range of pages (repeated headers and footers removed) to the chunker."""
    chunks: list[Chunk] = []
    for page in strip_repeated_lines(pages):
        chunks.extend(chunker.feed(page.number, page.text))
    if last:
        chunks.extend(chunker.finish())
    return chunks


def process_owner() -> str:
    """``host:pid`` of this process, recorded on the files it loads."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Loader:
    """Runs loads into sources; one instance serves the whole process."""

    def __init__(
        self,
        *,
        registry: SourceRegistry,
        archive: Archive,
        keyword: KeywordIndex,
        embedder: Embedder,
        limits: PdfLimits,
        parse_timeout: float = 120.0,
        overlap_tokens: int = 32,
        pages_per_task: int = 16,
    ) -> None:
        self._registry = registry
        self._archive = archive
        self._keyword = keyword
        self._embedder = embedder
        self._limits = limits
        self._parse_timeout = parse_timeout
        self._overlap = overlap_tokens
        self._pages_per_task = pages_per_task

    async def load(
        self,
        scope: str,
        name: str,
        files: Sequence[FileInput],
        *,
        created_by: str,
        progress: ProgressCallback | None = None,
    ) -> LoadReport:
        """Load ``files`` into the source ``name`` of ``scope``, creating it if needed.

        Bad files are reported in the result and do not stop the others. A source created by
        this call that ends with no loaded file is removed again, leaving nothing behind.
        """
        source = await self._registry.open_for_loading(
            scope,
            name,
            model=self._embedder.model_id,
            dim=self._embedder.dim,
            created_by=created_by,
        )
        times = StageTimes()
        results: list[FileResult] = []
        # A pool of our own: a timeout that stops this load's parser stops no other load.
        pool = ParsePool(timeout=self._parse_timeout)
        try:
            for index, item in enumerate(files):
                results.append(
                    await self._load_file(
                        pool, source, item, index, len(files), created_by, times, progress
                    )
                )
        finally:
            pool.shutdown()
            # Nothing loaded or loading (here or by a concurrent load): leave nothing behind.
            if await asyncio.shield(self._registry.discard_if_empty(source.id)):
                await drain_cleanups(self._registry, (self._archive, self._keyword))
        final = await self._registry.get(source.id)
        return LoadReport(source=final, source_name=name, files=results, times=times)

    async def _load_file(
        self,
        pool: ParsePool,
        source: Source,
        item: FileInput,
        index: int,
        total: int,
        loaded_by: str,
        times: StageTimes,
        progress: ProgressCallback | None,
    ) -> FileResult:
        display = item.display_name
        try:
            info = await pool.run(display, inspect_pdf, item.path, display, self._limits)
        except DocumentError as exc:
            log.info("refused %s for source %d: %s", display, source.id, exc)
            return FileResult(display, "failed", error=str(exc))
        except OSError as exc:
            log.warning("cannot read %s: %s", item.path, exc)
            reason = f"'{display}' could not be read ({exc.strerror or exc}): check the file."
            return FileResult(display, "failed", error=reason)
        row = await self._registry.add_file(
            source.id,
            name=display,
            sha256=info.sha256,
            size=info.size,
            loaded_by=loaded_by,
            owner=process_owner(),
            origin=item.origin,
        )
        if row is None:
            return FileResult(
                display,
                "duplicate",
                error=f"'{display}' is already in source {quoted_name(source.name)}"
                " (same content): nothing to do.",
            )
        try:
            passages = await self._ingest(
                pool, source, row, item, info, index, total, times, progress
            )
            await self._archive.wait_visible(row.id, passages)
            if not await self._registry.finish_file(row.id, pages=info.pages, passages=passages):
                raise SourceNotFound(
                    f"Source {quoted_name(source.name)} was deleted while '{display}' was loading."
                )
        except ArchivistError as exc:
            log.warning("loading %s into source %d failed: %s", display, source.id, exc)
            await self._fail(row, str(exc))
            return FileResult(display, "failed", error=str(exc))
        except asyncio.CancelledError:
            await asyncio.shield(self._fail(row, "the load was cancelled"))
            raise
        except Exception:
            # A bug must not leave the file half-loaded, nor stop the other files.
            log.exception("loading %s into source %d crashed", display, source.id)
            reason = f"Loading '{display}' failed on an internal error (logged): try again."
            await self._fail(row, reason)
            return FileResult(display, "failed", error=reason)
        log.info("loaded %s: %d pages, %d passages", display, info.pages, passages)
        return FileResult(display, "loaded", pages=info.pages, passages=passages)

    async def _ingest(
        self,
        pool: ParsePool,
        source: Source,
        row: SourceFile,
        item: FileInput,
        info: PdfInfo,
        index: int,
        total: int,
        times: StageTimes,
        progress: ProgressCallback | None,
    ) -> int:
        """Parse, chunk, embed and insert one file; returns the number of passages."""
        display = item.display_name
        chunker = Chunker(
            self._embedder.token_spans,
            max_tokens=self._embedder.max_text_tokens,
            overlap_tokens=self._overlap,
        )
        ranges = [
            (first, min(first + self._pages_per_task - 1, info.pages))
            for first in range(1, info.pages + 1, self._pages_per_task)
        ]
        pending: list[asyncio.Future[list[PageText]]] = []
        passages = 0
        pages_with_text = 0
        pages_done = 0

        def submit(next_range: int) -> None:
            if next_range < len(ranges):
                first, last = ranges[next_range]
                pending.append(
                    asyncio.ensure_future(
                        pool.run(
                            display, extract_pages, item.path, display, first, last, self._limits
                        )
                    )
                )

        for i in range(_PREFETCH):
            submit(i)
        try:
            for position in range(len(ranges)):
                started = time.perf_counter()
                pages = await pending.pop(0)
                times.parse += time.perf_counter() - started
                submit(position + _PREFETCH)

                started = time.perf_counter()
                last = position == len(ranges) - 1
                # Tokenizing a range of pages is CPU work: keep it off the event loop.
                chunks = await asyncio.to_thread(_chunk_pages, chunker, pages, last)
                pages_with_text += sum(1 for page in pages if page.text.strip())
                if last:
                    ensure_text(pages_with_text, info.pages, display)
                times.chunk += time.perf_counter() - started

                passages = await self._store(source, row, display, chunks, passages, times)
                pages_done += len(pages)
                if not await self._registry.heartbeat(row.id):
                    raise SourceNotFound(
                        f"Source {quoted_name(source.name)} was deleted while '{display}'"
                        " was loading."
                    )
                if progress is not None:
                    progress(Progress(display, index + 1, total, pages_done, info.pages, passages))
        finally:
            for future in pending:
                future.cancel()
        return passages

    async def _store(
        self,
        source: Source,
        row: SourceFile,
        display: str,
        chunks: list[Chunk],
        first_chunk: int,
        times: StageTimes,
    ) -> int:
        """Embed and insert ``chunks`` numbered from ``first_chunk``; returns the new total."""
        if first_chunk + len(chunks) >= 1 << CHUNK_BITS:
            raise DocumentTooLarge(display, f"'{display}' yields too many passages to store.")
        for start in range(0, len(chunks), _EMBED_GROUP):
            group = chunks[start : start + _EMBED_GROUP]
            began = time.perf_counter()
            vectors = await self._embedder.embed([c.text for c in group])
            times.embed += time.perf_counter() - began
            records = [
                Passage(
                    id=(row.id << CHUNK_BITS) | (first_chunk + start + offset),
                    scope=source.scope,
                    source_id=source.id,
                    file_id=row.id,
                    agent_id=0,
                    document=display,
                    page=chunk.page,
                    last_page=chunk.last_page,
                    chunk=first_chunk + start + offset,
                    text=chunk.text,
                )
                for offset, chunk in enumerate(group)
            ]
            began = time.perf_counter()
            await self._archive.insert(records, vectors)
            await self._keyword.insert(records)
            times.insert += time.perf_counter() - began
        return first_chunk + len(chunks)

    async def _fail(self, row: SourceFile, reason: str) -> None:
        await self._registry.fail_file(row, reason)
        await drain_cleanups(self._registry, (self._archive, self._keyword))
