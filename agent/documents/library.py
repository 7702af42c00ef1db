"""The document library: what the CLI, the agent and the chat adapters call.

It ties the registry (names, scopes, attachments), the archive (passages in Milvus), the
embedder and the loader together. Every call carries its scope explicitly: the workspace a
name is resolved in, or the agent whose attached sources a search may read.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace

from agent.documents.archive import MAX_WINDOW, Archive
from agent.documents.embed import Embedder, Vectors
from agent.documents.keyword import KeywordIndex
from agent.documents.links import Links
from agent.documents.loader import Loader, LoadOptions
from agent.documents.loads import FileInput, LoadReport, ProgressCallback
from agent.documents.recovery import drain_cleanups, recover
from agent.documents.registry import (
    Source,
    SourceFile,
    SourceRegistry,
)
from agent.errors import ArchivistError, SourceNotReady, quoted_name
from agent.values import Citation, Hit, Scope, SearchMode, page_label

log = logging.getLogger(__name__)

# Hybrid search fuses at least this many candidates from each ranking. Part of the fusion:
# each ranking's last score is its zero (issue 12's development set, docs/benchmarks.md:
# 100 deep did better than 50 or 20).
HYBRID_DEPTH = 100
# Recent query vectors kept for reuse: 1.5 KiB each with the local model.
QUERY_VECTORS_KEPT = 256


@dataclass(frozen=True)
class SearchResult:
    """One passage found, with everything a citation needs."""

    rank: int
    text: str
    document: str
    page: int
    last_page: int
    chunk: int
    score: float
    source: str
    source_id: int
    passage_id: int
    origin: str | None = None
    """Where the document came from (e.g. the chat message it was uploaded in), if known."""

    @property
    def citation(self) -> str:
        """``gri.pdf p.41``, or ``gri.pdf p.41-42`` for a passage that runs onto the next page."""
        return f"{self.document} {page_label(self.page, self.last_page)}".rstrip()

    def cited_as(self, handle: int) -> Citation:
        """This result as a citation under ``handle``."""
        return Citation(handle, self.document, self.page, self.last_page, self.source, self.origin)


@dataclass(frozen=True)
class SearchPage:
    """One page of results with the true total of passages searched."""

    query: str
    results: list[SearchResult]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        """How many pages of ``page_size`` the total makes (at least 1 when total > 0)."""
        return math.ceil(self.total / self.page_size) if self.page_size else 0


def fuse(rankings: Sequence[Sequence[Hit]]) -> list[Hit]:
    """Score fusion: the mean over rankings of each passage's score scaled to [0, 1].

    Each ranking's scores (cosine, BM25) are scaled per query from its last (0) to its first
    (1); a passage missing from a ranking counts 0 there, so one first in a ranking and
    missing from the other scores 0.5. Passages both rankings hold mid-list score less unless
    the scores are flat (median scaled scores over issue 12's development set, dense and
    keyword, 100 deep: 0.52 and 0.42 at 10th place, 0.33 and 0.24 at 25th), whereas reciprocal
    rank with the usual k = 60 put every passage in both lists above it. A passage both rank
    near the top still wins; one first in every ranking scores 1.0.
    """
    scores: dict[int, float] = {}
    first_seen: dict[int, Hit] = {}
    for ranking in rankings:
        for hit, scaled in zip(ranking, _min_max([h.score for h in ranking]), strict=True):
            scores[hit.id] = scores.get(hit.id, 0.0) + scaled / len(rankings)
            first_seen.setdefault(hit.id, hit)
    ordered = sorted(scores, key=lambda i: (-scores[i], i))
    return [replace(first_seen[i], score=scores[i]) for i in ordered]


def _min_max(scores: Sequence[float]) -> list[float]:
    """``scores`` scaled to [0, 1] between their lowest and highest (all 1 if they are equal)."""
    low, high = min(scores, default=0.0), max(scores, default=0.0)
    return [(s - low) / (high - low) if high > low else 1.0 for s in scores]


class Library:
    """Sources, attachments and scoped search over the archive."""

    def __init__(
        self,
        *,
        registry: SourceRegistry,
        archive: Archive,
        keyword: KeywordIndex,
        embedder: Embedder,
        load_options: LoadOptions,
        default_mode: SearchMode = "hybrid",
    ) -> None:
        self._registry = registry
        self._archive = archive
        self._keyword = keyword
        self._embedder = embedder
        self._loader = Loader(
            registry=registry,
            archive=archive,
            keyword=keyword,
            embedder=embedder,
            options=load_options,
        )
        self._default_mode: SearchMode = default_mode
        self._stores = (archive, keyword)
        self._query_vectors: OrderedDict[str, Vectors] = OrderedDict()

    @property
    def registry(self) -> SourceRegistry:
        """The source registry underneath."""
        return self._registry

    @property
    def archive(self) -> Archive:
        """The archival store underneath."""
        return self._archive

    async def start(self) -> int:
        """Recover from an earlier crash; returns how many interrupted loads were rolled back."""
        return await recover(self._registry, self._stores)

    async def take_over(self, owner: str) -> int:
        """Roll back the loads of ``owner``, a process found dead (a stalled job's worker)."""
        return await recover(self._registry, self._stores, at_start=False, dead_owner=owner)

    async def watch_interrupted(self, every: float) -> None:
        """Roll back, every ``every`` seconds until cancelled, the loads whose process died or
        hung since start-up (a long-running bot is not restarted to find them)."""
        while True:
            await asyncio.sleep(every)
            try:
                await recover(self._registry, self._stores, at_start=False)
            except Exception:  # the next round tries again; the bot keeps serving
                log.exception("checking for interrupted loads failed")

    async def load(
        self,
        scope: str,
        name: str,
        files: Sequence[FileInput],
        *,
        created_by: str,
        progress: ProgressCallback | None = None,
    ) -> LoadReport:
        """Load files into the source ``name`` of ``scope``, creating it if needed.

        Bad files are reported in the result and do not stop the others; a new source that
        ends with no loaded file is removed again.
        """
        return await self._loader.load(scope, name, files, created_by=created_by, progress=progress)

    async def add_text(
        self, scope: str, name: str, text: str, *, document: str, created_by: str
    ) -> Source:
        """Store ``text`` as a passage of its own in the source ``name`` of ``scope`` (made if
        new; the same text twice is stored once) and return the source, searchable now."""
        await self._loader.add_text(scope, name, text, document=document, created_by=created_by)
        return await self._registry.resolve_exact(scope, name)

    async def sources(self, scope: str | None = None) -> list[Source]:
        """Sources visible from ``scope``, or all of them for None (operator view)."""
        return await self._registry.visible(scope)

    async def source(self, scope: str, name: str) -> tuple[Source, list[SourceFile]]:
        """A source visible from ``scope`` and its files."""
        source = await self._registry.resolve(scope, name)
        return source, await self._registry.files(source.id)

    async def delete(self, scope: str, name: str) -> Source:
        """Delete a source of exactly ``scope`` with its links and passages."""
        source = await self._registry.resolve_exact(scope, name)
        await self._registry.delete(source.id)
        await drain_cleanups(self._registry, self._stores)
        return source

    @property
    def links(self) -> Links:
        """Attaching, detaching and listing an agent's sources."""
        # Built on use: an OpenAI-compatible embedder knows its dimension after its first call.
        return Links(self._registry, model_id=self._embedder.model_id, dim=self._embedder.dim)

    async def search_sources(
        self,
        scope: str,
        names: Sequence[str],
        query: str,
        *,
        top_k: int = 5,
        page: int = 0,
        mode: SearchMode | None = None,
    ) -> SearchPage:
        """Search the named sources visible from ``scope``."""
        resolved = [await self._registry.resolve(scope, name) for name in names]
        sources = list({s.id: s for s in resolved}.values())
        for source in sources:
            self.links.check_model(source)
            if source.status != "ready":
                raise SourceNotReady(
                    f"Source {quoted_name(source.name)} is {source.status}: it can be searched"
                    " once it is ready."
                )
        return await self._search(sources, query, top_k=top_k, page=page, mode=mode)

    async def search_attached(
        self,
        agent_key: str,
        query: str,
        *,
        top_k: int = 5,
        page: int = 0,
        mode: SearchMode | None = None,
    ) -> SearchPage:
        """Search the sources attached to an agent.

        Sources not ready, or embedded with another model, are skipped silently.
        """
        sources = [
            s
            for s in await self._registry.attached(agent_key)
            if s.embedding_model == self._embedder.model_id
            and s.embedding_dim == self._embedder.dim
        ]
        return await self._search(sources, query, top_k=top_k, page=page, mode=mode)

    async def _search(
        self,
        sources: Sequence[Source],
        query: str,
        *,
        top_k: int,
        page: int,
        mode: SearchMode | None,
    ) -> SearchPage:
        if top_k < 1 or page < 0:
            raise ArchivistError("The number of results must be at least 1 and pages start at 0.")
        scope = await self._registry.read_scope([s.id for s in sources])
        empty = SearchPage(query, [], 0, page, top_k)
        if not scope.source_ids or not query.strip():
            return empty
        offset = page * top_k
        if offset >= MAX_WINDOW:
            raise ArchivistError(
                f"Results are served up to the first {MAX_WINDOW}: narrow the query instead."
            )
        hits = await self._ranked(query, scope, offset, top_k, mode or self._default_mode)
        # The registry knows exactly what is searchable (passages of ready files), and
        # asking it is far cheaper than a count(*) in Milvus Lite.
        total = sum(s.passages for s in sources if s.id in scope.source_ids)
        names = {s.id: s.name for s in sources}
        origins = await self._registry.origins(hit.file_id for hit in hits)
        results = [
            SearchResult(
                rank=offset + i + 1,
                text=hit.text,
                document=hit.document,
                page=hit.page,
                last_page=hit.last_page,
                chunk=hit.chunk,
                score=hit.score,
                source=names.get(hit.source_id, "?"),
                source_id=hit.source_id,
                passage_id=hit.id,
                origin=origins.get(hit.file_id),
            )
            for i, hit in enumerate(hits)
        ]
        return SearchPage(query, results, total, page, top_k)

    async def _ranked(
        self, query: str, scope: Scope, offset: int, top_k: int, mode: SearchMode
    ) -> list[Hit]:
        """One page of hits: dense, keyword, or both fused (:func:`fuse`)."""
        if mode == "keyword":
            return (await self._keyword.search(query, scope, limit=offset + top_k))[offset:]
        if mode == "dense":
            return await self._dense(query, scope, limit=top_k, offset=offset)
        depth = min(max(2 * (offset + top_k), HYBRID_DEPTH), MAX_WINDOW)
        # The keyword search needs no vector: it runs in SQLite's thread while the query is
        # embedded and Milvus searched in theirs.
        dense, keyword = await asyncio.gather(
            self._dense(query, scope, limit=depth),
            self._keyword.search(query, scope, limit=depth),
        )
        return fuse([dense, keyword])[offset : offset + top_k]

    async def _dense(self, query: str, scope: Scope, *, limit: int, offset: int = 0) -> list[Hit]:
        vector = await self._query_vector(query)
        return await self._archive.search(vector, scope, limit=limit, offset=offset)

    async def _query_vector(self, query: str) -> Vectors:
        """The query's vector, reused when the same text was embedded lately.

        Paging asks for the same vector again (the agent reads page after page of a query,
        a person pages through /search), and it costs a few milliseconds of CPU each time.
        """
        kept = self._query_vectors.get(query)
        if kept is not None:
            self._query_vectors.move_to_end(query)
            return kept
        vector: Vectors = (await self._embedder.embed([query]))[0]
        vector.flags.writeable = False  # shared by every later search for the same text
        self._query_vectors[query] = vector
        if len(self._query_vectors) > QUERY_VECTORS_KEPT:
            self._query_vectors.popitem(last=False)
        return vector
