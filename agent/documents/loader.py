"""Load PDF files into a source: parse, chunk, embed, insert, then make it visible.

Parsing is pure-Python CPU work, so it runs in a separate process, a range of pages at a time,
while this process embeds the previous range: the two overlap on two cores. A file's passages
become searchable only when all of them are in (its row turns ``ready``); a failure marks the
file failed and removes whatever reached the archive.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from agent.documents.archive import Archive
from agent.documents.chunk import Chunk, Chunker, chunk_pages
from agent.documents.embed import Embedder, Vectors
from agent.documents.keyword import KeywordIndex
from agent.documents.loads import (
    FileInput,
    FileResult,
    LoadReport,
    Progress,
    ProgressCallback,
    StageTimes,
)
from agent.documents.outline import SectionTracker
from agent.documents.page_text import PageText
from agent.documents.parse_pool import PREFETCH, ParsePool
from agent.documents.pdf import PdfInfo, PdfLimits, ensure_text, extract_pages, inspect_pdf
from agent.documents.recovery import drain_cleanups, process_owner
from agent.documents.registry import Source, SourceFile, SourceRegistry
from agent.errors import (
    ArchiveUnavailable,
    ArchivistError,
    DocumentError,
    DocumentTooLarge,
    NoTextDocument,
    PassageTooLong,
    SourceNotFound,
    quoted_name,
)
from agent.values import Passage

log = logging.getLogger(__name__)

# Passage ids are (file id << CHUNK_BITS) | chunk index: stable, so a retried insert replaces.
CHUNK_BITS = 24
_EMBED_GROUP = 64


@dataclass(frozen=True)
class LoadOptions:
    """How files are checked and cut: ``[ingest]`` as the loader needs it."""

    limits: PdfLimits
    parse_timeout: float = 120.0
    overlap_tokens: int = 32
    pages_per_task: int = 16
    max_page_chars: int = 100_000
    max_file_passages: int = 50_000


@dataclass
class _Load:
    """One call of :meth:`Loader.load`: where it writes, who asked, and how far it got."""

    source: Source
    loaded_by: str
    files_total: int
    progress: ProgressCallback | None
    # A pool of its own: a timeout that stops this load's parser stops no other load.
    pool: ParsePool
    times: StageTimes = field(default_factory=StageTimes)

    def gone(self, display: str) -> SourceNotFound:
        return SourceNotFound(
            f"Source {quoted_name(self.source.name)} was deleted while '{display}' was loading."
        )


class Loader:
    """Runs loads into sources; one instance serves the whole process."""

    def __init__(
        self,
        *,
        registry: SourceRegistry,
        archive: Archive,
        keyword: KeywordIndex,
        embedder: Embedder,
        options: LoadOptions,
    ) -> None:
        self._registry = registry
        self._archive = archive
        self._keyword = keyword
        self._embedder = embedder
        self._options = options

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
        source = await self._open(scope, name, created_by)
        load = _Load(
            source, created_by, len(files), progress, ParsePool(timeout=self._options.parse_timeout)
        )
        results: list[FileResult] = []
        try:
            for index, item in enumerate(files):
                if results and results[-1].unavailable:
                    # The store is down: every further file would wait out the same timeout.
                    display = item.display_name
                    reason = f"'{display}' was not loaded: the document archive is unavailable."
                    results.append(FileResult(display, "failed", error=reason, unavailable=True))
                    continue
                results.append(await self._load_file(load, item, index))
        finally:
            load.pool.shutdown()
            await self._discard_if_empty(source)
        final = await self._registry.get(source.id)
        return LoadReport(source=final, source_name=name, files=results, times=load.times)

    async def add_text(
        self, scope: str, name: str, text: str, *, document: str, created_by: str
    ) -> bool:
        """Store ``text`` as one passage, a document of its own, in the source ``name`` of
        ``scope`` (created if new); False if the same text is in that source already.

        Searchable once this returns. The text must fit one passage.
        """
        pieces = len(self._embedder.token_spans(text))
        if pieces > self._embedder.max_text_tokens:
            raise PassageTooLong(
                f"The text is {pieces} word pieces, over the limit of"
                f" {self._embedder.max_text_tokens} for one passage: store it in shorter parts."
            )
        source = await self._open(scope, name, created_by)
        data = text.encode()
        try:
            row = await self._registry.add_file(
                source.id,
                name=document,
                sha256=hashlib.sha256(data).hexdigest(),
                size=len(data),
                loaded_by=created_by,
                owner=process_owner(),
            )
            if row is None:
                return False
            passage = Passage(
                id=row.id << CHUNK_BITS,
                source_id=source.id,
                file_id=row.id,
                document=document,
                page=0,
                last_page=0,
                chunk=0,
                text=text,
            )
            try:
                await self._insert([passage], await self._embedder.embed([text]))
                await self._archive.wait_visible(row.id, 1)
                if not await self._registry.finish_file(row.id, pages=0, passages=1):
                    raise SourceNotFound(f"Source {quoted_name(name)} was deleted meanwhile.")
            except BaseException as exc:
                await asyncio.shield(self._fail(row, str(exc) or type(exc).__name__))
                raise
            return True
        finally:
            await self._discard_if_empty(source)

    async def _open(self, scope: str, name: str, created_by: str) -> Source:
        return await self._registry.open_for_loading(
            scope,
            name,
            model=self._embedder.model_id,
            dim=self._embedder.dim,
            created_by=created_by,
        )

    async def _discard_if_empty(self, source: Source) -> None:
        """Nothing loaded or loading (here or by a concurrent load): leave nothing behind."""
        if await asyncio.shield(self._registry.discard_if_empty(source.id)):
            await drain_cleanups(self._registry, (self._archive, self._keyword))

    async def _load_file(self, load: _Load, item: FileInput, index: int) -> FileResult:
        display = item.display_name
        source = load.source
        try:
            info = await load.pool.run(
                display, inspect_pdf, item.path, display, self._options.limits
            )
        except DocumentError as exc:
            log.info("refused %s for source %d: %s", display, source.id, exc)
            return await self._refused(load, item, str(exc))
        except OSError as exc:
            log.warning("cannot read %s: %s", item.path, exc)
            reason = f"'{display}' could not be read ({exc.strerror or exc}): check the file."
            return await self._refused(load, item, reason)
        row = await self._registry.add_file(
            source.id,
            name=display,
            sha256=info.sha256,
            size=info.size,
            loaded_by=load.loaded_by,
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
            passages = await self._ingest(load, row, item, info, index)
            await self._archive.wait_visible(row.id, passages)
            if not await self._registry.finish_file(row.id, pages=info.pages, passages=passages):
                raise load.gone(display)
        except ArchivistError as exc:
            log.warning("loading %s into source %d failed: %s", display, source.id, exc)
            await self._fail(row, str(exc))
            down = isinstance(exc, ArchiveUnavailable)
            return FileResult(display, "failed", error=str(exc), unavailable=down)
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

    async def _refused(self, load: _Load, item: FileInput, reason: str) -> FileResult:
        """A file refused before anything of it was stored: listed with the source's files."""
        try:
            size = item.path.stat().st_size
        except OSError:
            size = 0
        await self._registry.add_file(
            load.source.id,
            name=item.display_name,
            sha256="",
            size=size,
            loaded_by=load.loaded_by,
            owner=process_owner(),
            origin=item.origin,
            refused=reason,
        )
        return FileResult(item.display_name, "failed", error=reason)

    async def _ingest(
        self, load: _Load, row: SourceFile, item: FileInput, info: PdfInfo, index: int
    ) -> int:
        """Parse, chunk, embed and insert one file; returns the number of passages."""
        display = item.display_name
        limits, per_task = self._options.limits, self._options.pages_per_task
        chunker = Chunker(
            self._embedder.token_spans,
            max_tokens=self._embedder.max_text_tokens,
            overlap_tokens=self._options.overlap_tokens,
            sections=SectionTracker(info.headings) if info.headings else None,
        )
        ranges = [
            (first, min(first + per_task - 1, info.pages))
            for first in range(1, info.pages + 1, per_task)
        ]
        pending: list[asyncio.Future[list[PageText]]] = []
        passages = 0
        pages_with_text = pages_with_images = 0
        pages_done = 0

        def submit(next_range: int) -> None:
            if next_range < len(ranges):
                first, last = ranges[next_range]
                pending.append(
                    asyncio.ensure_future(
                        load.pool.run(
                            display, extract_pages, item.path, display, first, last, limits
                        )
                    )
                )

        for i in range(PREFETCH):
            submit(i)
        try:
            for position in range(len(ranges)):
                started = time.perf_counter()
                pages = await pending.pop(0)
                load.times.parse += time.perf_counter() - started
                self._check_page_sizes(display, pages)
                submit(position + PREFETCH)

                started = time.perf_counter()
                last = position == len(ranges) - 1
                # Tokenizing a range of pages is CPU work: keep it off the event loop.
                chunks = await asyncio.to_thread(chunk_pages, chunker, pages, last)
                pages_with_text += sum(1 for page in pages if page.text.strip())
                pages_with_images += sum(1 for page in pages if page.images)
                if last:
                    ensure_text(
                        pages_with_text, info.pages, display, pages_with_images=pages_with_images
                    )
                load.times.chunk += time.perf_counter() - started

                passages = await self._store(load, row, chunks, passages)
                pages_done += len(pages)
                if not await self._registry.heartbeat(row.id):
                    raise load.gone(display)
                if load.progress is not None:
                    load.progress(
                        Progress(
                            display, index + 1, load.files_total, pages_done, info.pages, passages
                        )
                    )
        finally:
            for future in pending:
                future.cancel()
        if passages == 0:
            # Text, but no passage in it: a file that no search can find is not loaded.
            raise NoTextDocument(
                display,
                f"'{display}' has nothing to search: its pages hold only a table of contents,"
                " an index or stray marks.",
            )
        return passages

    async def _store(
        self, load: _Load, row: SourceFile, chunks: list[Chunk], first_chunk: int
    ) -> int:
        """Embed and insert ``chunks`` numbered from ``first_chunk``; returns the new total."""
        cap = min(self._options.max_file_passages, (1 << CHUNK_BITS) - 1)
        if first_chunk + len(chunks) > cap:
            raise DocumentTooLarge(
                row.name,
                f"'{row.name}' makes more than {cap:,} passages, more than one file may:"
                " split it into smaller files and load them separately.",
            )
        for start in range(0, len(chunks), _EMBED_GROUP):
            group = chunks[start : start + _EMBED_GROUP]
            began = time.perf_counter()
            vectors = await self._embedder.embed([c.text for c in group])
            load.times.embed += time.perf_counter() - began
            records = [
                Passage(
                    id=(row.id << CHUNK_BITS) | (first_chunk + start + offset),
                    source_id=load.source.id,
                    file_id=row.id,
                    document=row.name,
                    page=chunk.page,
                    last_page=chunk.last_page,
                    chunk=first_chunk + start + offset,
                    text=chunk.text,
                )
                for offset, chunk in enumerate(group)
            ]
            began = time.perf_counter()
            await self._insert(records, vectors)
            load.times.insert += time.perf_counter() - began
        return first_chunk + len(chunks)

    def _check_page_sizes(self, display: str, pages: list[PageText]) -> None:
        """Refuse a page with more text than any printed page has (hours of embedding)."""
        cap = self._options.max_page_chars
        for page in pages:
            if len(page.text) > cap:
                raise DocumentTooLarge(
                    display,
                    f"'{display}' has {len(page.text):,} characters of text on page"
                    f" {page.number}, more than the {cap:,} a page may have: it is not a"
                    " document to search (or raise [ingest] max_page_chars).",
                )

    async def _insert(self, passages: list[Passage], vectors: Vectors) -> None:
        await self._archive.insert(passages, vectors)
        await self._keyword.insert(passages)

    async def _fail(self, row: SourceFile, reason: str) -> None:
        await self._registry.fail_file(row, reason)
        await drain_cleanups(self._registry, (self._archive, self._keyword))
