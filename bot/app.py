"""The composition root: the one place that turns settings into wired-up objects."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from adapters.discord import DiscordAdapter, DiscordOptions
from adapters.slack import SlackAdapter, SlackOptions
from agent.core import Core
from agent.db import Database, instance_id, open_database
from agent.db.failures import make_data_folder
from agent.deliveries import Deliveries
from agent.documents.archive import MilvusArchive
from agent.documents.collection import collection_name
from agent.documents.embed import Embedder, build_embedder
from agent.documents.jobs import LoadJobs
from agent.documents.keyword import KeywordIndex
from agent.documents.library import Library
from agent.documents.loader import LoadOptions
from agent.documents.pdf import PdfLimits
from agent.documents.registry import SourceRegistry
from agent.mind.citations import CitationStore
from agent.mind.conversations import Conversations
from agent.mind.llm import LLM, Sampling, build_llm
from agent.mind.loop import AgentConfig, Agents
from agent.mind.memory import AgentStore
from agent.mind.profiles import Profiles
from agent.mind.recall import RecallStore
from bot.config import Settings
from bot.health import Check
from bot.logs import route_pymilvus
from bot.metrics import MeteredLLM, Metrics
from bot.state import embedding_model

_MB = 1024 * 1024
# How often a running bot looks for loads whose process died or hung (their heartbeat stale).
_RECHECK_SECONDS = 5 * 60


def pdf_limits(settings: Settings) -> PdfLimits:
    """The ingest limits from ``[ingest]``."""
    return PdfLimits(
        max_bytes=int(settings.ingest.max_file_mb * _MB),
        max_pages=settings.ingest.max_pages,
        max_stream_bytes=int(settings.ingest.max_decompressed_mb * _MB),
    )


async def make_embedder(settings: Settings, model: str | None = None) -> Embedder:
    """Build the embedder (``model``, else the configured one or the default for a new data
    folder) and prove it works; blocking parts run in threads."""
    emb = settings.embeddings
    concurrency, threads = emb.parallelism(_cores())
    embedder = await asyncio.to_thread(
        build_embedder,
        emb.backend,
        model=model or settings.embedding_model(),
        cache_dir=settings.model_cache_dir,
        base_url=emb.base_url,
        api_key=emb.api_key.get_secret_value() if emb.api_key else None,
        batch_size=emb.batch_size,
        max_concurrency=concurrency,
        threads=threads,
    )
    # One embedding up front: a broken model or endpoint fails at start-up, not at the first
    # question, and an OpenAI-compatible backend learns its dimension.
    await embedder.embed(["warm-up"])
    return embedder


def _cores() -> int:
    """The cores this process may run on (a container's CPU set, not the host's count)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


@asynccontextmanager
async def open_library(settings: Settings) -> AsyncIterator[Library]:
    """Open state, archive and embedder, recover from any crash, and yield the library."""
    async with _open(settings) as (library, _db):
        yield library


def configured_platforms(settings: Settings) -> list[str]:
    """The chat platforms whose credentials are set, in start order."""
    platforms = []
    if settings.discord.token is not None:
        platforms.append("discord")
    slack = settings.slack
    if slack.bot_token is not None and (slack.app_token or slack.signing_secret):
        platforms.append("slack")
    return platforms


def build_adapters(settings: Settings, core: Core) -> list[DiscordAdapter | SlackAdapter]:
    """An adapter per configured platform, each told only what it needs."""
    adapters: list[DiscordAdapter | SlackAdapter] = []
    platforms = configured_platforms(settings)
    if "discord" in platforms:
        discord = settings.discord
        assert discord.token is not None
        adapters.append(
            DiscordAdapter(
                core,
                DiscordOptions(
                    token=discord.token.get_secret_value(),
                    api_base_url=discord.api_base_url,
                    gateway_url=discord.gateway_url,
                    dev_guild_id=discord.dev_guild_id,
                    reply_in_thread=discord.reply_in_thread,
                    ingest_uploads=discord.ingest_uploads,
                    manager_roles=tuple(discord.manager_roles),
                    respond_to_bots=discord.respond_to_bots,
                    show_thoughts=settings.agent.show_thoughts,
                    max_upload_bytes=int(settings.ingest.max_file_mb * _MB),
                    shard_count=discord.shard_count,
                    shard_ids=tuple(discord.shard_ids),
                ),
            )
        )
    if "slack" in platforms:
        adapters.append(SlackAdapter(core, slack_options(settings)))
    return adapters


def slack_options(settings: Settings) -> SlackOptions:
    """What the Slack adapter needs from ``[slack]`` and ``[ingest]``."""
    slack = settings.slack
    assert slack.bot_token is not None
    return SlackOptions(
        bot_token=slack.bot_token.get_secret_value(),
        app_token=slack.app_token.get_secret_value() if slack.app_token else None,
        signing_secret=slack.signing_secret.get_secret_value() if slack.signing_secret else None,
        api_base_url=slack.api_base_url,
        http_host=slack.http_host,
        http_port=slack.http_port,
        http_path=slack.http_path,
        managers=slack.managers,
        manager_user_ids=tuple(slack.manager_user_ids),
        ingest_uploads=slack.ingest_uploads,
        allow_private_urls=settings.ingest.allow_private_urls,
        allowed_url_hosts=frozenset(settings.ingest.allowed_url_hosts),
        max_upload_bytes=int(settings.ingest.max_file_mb * _MB),
        show_thoughts=settings.agent.show_thoughts,
    )


@dataclass(frozen=True)
class Runtime:
    """The core plus what a running bot exposes about it: readiness checks and metrics."""

    core: Core
    checks: dict[str, Check]
    metrics: Metrics


@asynccontextmanager
async def open_core(
    settings: Settings, *, wrap_llm: Callable[[LLM], LLM] | None = None
) -> AsyncIterator[Core]:
    """Everything an adapter needs: the library plus agents, their memory and the LLM.

    ``wrap_llm`` lets a benchmark put instrumentation around the configured model.
    """
    async with open_runtime(settings, wrap_llm=wrap_llm) as runtime:
        yield runtime.core


@asynccontextmanager
async def open_runtime(
    settings: Settings, *, wrap_llm: Callable[[LLM], LLM] | None = None
) -> AsyncIterator[Runtime]:
    """The core, with a readiness check per dependency and metrics counting its work."""
    metrics = _metrics(settings)
    llm = build_llm(
        base_url=settings.llm.base_url,
        model=settings.llm.model,
        api_key=settings.llm.api_key.get_secret_value() if settings.llm.api_key else None,
        timeout=settings.llm.timeout,
        connect_timeout=settings.llm.connect_timeout,
        max_retries=settings.llm.max_retries,
        sampling=Sampling(
            max_tokens=settings.llm.max_tokens,
            temperature=settings.llm.temperature,
            top_p=settings.llm.top_p,
        ),
    )
    if llm is not None:
        llm = MeteredLLM(wrap_llm(llm) if wrap_llm else llm, metrics)
    async with _open(settings) as (library, db):
        store, recall = AgentStore(db), RecallStore(db)
        agents = Agents(
            store=store,
            recall=recall,
            library=library,
            llm=llm,
            profiles=Profiles(settings.agent.personas_dir),
            citations=CitationStore(db),
            config=AgentConfig(
                persona=settings.agent.persona,
                human=settings.agent.human,
                char_limit=settings.agent.char_limit,
                max_steps=settings.agent.max_steps,
                page_size=settings.search.top_k,
                context_window=settings.llm.context_window,
                search_first=settings.agent.search_first,
                reply_tokens=settings.llm.max_tokens,
                summary_tokens=settings.llm.summary_max_tokens,
            ),
        )
        conversations = Conversations(agents, exclusive=db.exclusive)
        checks: dict[str, Check] = {db.dialect: db.ping, "milvus": library.archive.ping}
        if llm is not None:
            checks["llm"] = llm.ping
        try:
            core = Core(
                agents=agents,
                conversations=conversations,
                library=library,
                store=store,
                recall=recall,
                deliveries=Deliveries(db),
                search_top_k=settings.search.top_k,
                telemetry=metrics,
                jobs=LoadJobs(db, library.registry) if settings.ingest.queue else None,
            )
            metrics.watch(core)
            yield Runtime(core, checks, metrics)
        finally:
            await conversations.close()
            if llm is not None:
                await llm.aclose()


@dataclass(frozen=True)
class WorkerRuntime:
    """What ``archivist worker`` needs: the library, the queue its load jobs come from, and
    what it exposes about them (readiness checks and metrics)."""

    library: Library
    jobs: LoadJobs
    checks: dict[str, Check]
    metrics: Metrics


@asynccontextmanager
async def open_jobs(settings: Settings) -> AsyncIterator[WorkerRuntime]:
    """The library and the load queue, for a worker."""
    async with _open(settings) as (library, db):
        checks: dict[str, Check] = {db.dialect: db.ping, "milvus": library.archive.ping}
        yield WorkerRuntime(library, LoadJobs(db, library.registry), checks, _metrics(settings))


def _metrics(settings: Settings) -> Metrics:
    """Metrics labelled with this process's replica name."""
    return Metrics(settings.server.replica or f"{socket.gethostname()}-{os.getpid()}")


@asynccontextmanager
async def _open(settings: Settings) -> AsyncIterator[tuple[Library, Database]]:
    route_pymilvus()
    # The state may be in PostgreSQL, but Milvus Lite and the admin file live here.
    make_data_folder(settings.storage.data_dir)
    async with open_database(settings.storage.state_location) as db:
        registry = SourceRegistry(db)
        embedder = await make_embedder(settings, await embedding_model(settings, registry))
        try:
            archive = await MilvusArchive.connect(
                settings.milvus_uri,
                collection=collection_name(
                    settings.milvus.collection_prefix,
                    await instance_id(db),
                    embedder.model_id,
                    embedder.dim,
                ),
                dim=embedder.dim,
                token=settings.milvus.token.get_secret_value() if settings.milvus.token else None,
                db_name=settings.milvus.db_name,
                timeout=settings.milvus.timeout,
            )
            try:
                keyword = KeywordIndex(db)
                library = Library(
                    registry=registry,
                    archive=archive,
                    keyword=keyword,
                    embedder=embedder,
                    load_options=LoadOptions(
                        limits=pdf_limits(settings),
                        parse_timeout=settings.ingest.parse_timeout,
                        overlap_tokens=settings.ingest.overlap_tokens,
                        pages_per_task=settings.ingest.pages_per_task,
                        max_page_chars=settings.ingest.max_page_chars,
                        max_file_passages=settings.ingest.max_file_passages,
                    ),
                    default_mode=settings.search.mode,
                )
                await library.start()
                watcher = asyncio.create_task(library.watch_interrupted(_RECHECK_SECONDS))
                try:
                    yield library, db
                finally:
                    watcher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await watcher
            finally:
                await archive.close()
        finally:
            await embedder.aclose()
