"""The composition root: the one place that turns settings into wired-up objects."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from agent.archive import MilvusArchive, collection_name
from agent.db import open_database
from agent.embed import Embedder, build_embedder
from agent.ingest import Loader, ParsePool
from agent.keyword import KeywordIndex
from agent.library import Library
from agent.pdf import PdfLimits
from agent.sources import SourceRegistry
from bot.config import Settings

_MB = 1024 * 1024


def pdf_limits(settings: Settings) -> PdfLimits:
    """The ingest limits from ``[ingest]``."""
    return PdfLimits(
        max_bytes=int(settings.ingest.max_file_mb * _MB),
        max_pages=settings.ingest.max_pages,
        max_stream_bytes=int(settings.ingest.max_decompressed_mb * _MB),
    )


async def make_embedder(settings: Settings) -> Embedder:
    """Build the configured embedder and prove it works; blocking parts run in threads."""
    emb = settings.embeddings
    embedder = await asyncio.to_thread(
        build_embedder,
        emb.backend,
        model=emb.model,
        cache_dir=settings.model_cache_dir,
        base_url=emb.base_url,
        api_key=emb.api_key.get_secret_value() if emb.api_key else None,
        batch_size=emb.batch_size,
        max_concurrency=emb.max_concurrency,
        threads=emb.threads,
    )
    # One embedding up front: a broken model or endpoint fails at start-up, not at the first
    # question, and an OpenAI-compatible backend learns its dimension.
    await embedder.embed(["warm-up"])
    return embedder


@asynccontextmanager
async def open_library(settings: Settings) -> AsyncIterator[Library]:
    """Open state, archive and embedder, recover from any crash, and yield the library."""
    embedder = await make_embedder(settings)
    pool = ParsePool(timeout=settings.ingest.parse_timeout)
    try:
        async with open_database(settings.storage.sqlite_path) as db:
            archive = await MilvusArchive.connect(
                settings.milvus_uri,
                collection=collection_name(
                    settings.milvus.collection_prefix,
                    await db.instance_id(),
                    embedder.model_id,
                    embedder.dim,
                ),
                dim=embedder.dim,
                token=settings.milvus.token.get_secret_value() if settings.milvus.token else None,
                db_name=settings.milvus.db_name,
                timeout=settings.milvus.timeout,
            )
            try:
                registry = SourceRegistry(db)
                keyword = KeywordIndex(db)
                loader = Loader(
                    registry=registry,
                    archive=archive,
                    keyword=keyword,
                    embedder=embedder,
                    limits=pdf_limits(settings),
                    parse_pool=pool,
                    overlap_tokens=settings.ingest.overlap_tokens,
                    pages_per_task=settings.ingest.pages_per_task,
                )
                library = Library(
                    registry=registry,
                    archive=archive,
                    keyword=keyword,
                    embedder=embedder,
                    loader=loader,
                    default_mode=settings.search.mode,
                )
                await library.start()
                yield library
            finally:
                await archive.close()
    finally:
        pool.shutdown()
        await embedder.aclose()
