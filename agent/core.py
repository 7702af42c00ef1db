"""What every adapter calls: one facade over agents, conversations and the library.

An adapter turns platform events into these calls and renders what comes back; it never
touches stores or models itself. Every call names its conversation (``platform:workspace:
channel``) and, where names are resolved, the workspace scope they are resolved in.

This module is the adapters' whole view of the core: every name they use is exported here
(``__all__``), so nothing in ``adapters/`` imports from ``agent.documents`` or ``agent.mind``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from agent.deliveries import Deliveries
from agent.documents.fetch import download
from agent.documents.jobs import LoadJobs
from agent.documents.library import Library, SearchPage
from agent.documents.loads import FileInput, LoadReport, Progress, ProgressCallback, named_apart
from agent.documents.names import MAX_NAME_CHARS
from agent.documents.registry import Source
from agent.documents.running import RunningLoads
from agent.errors import INTERNAL_ERROR, AgentNotFound, ArchivistError, shown_url
from agent.mind.conversations import Conversations
from agent.mind.loop import Agents, Incoming, Reply, Stop
from agent.mind.memory import AgentStore
from agent.mind.memory_view import MemoryView, describe, describe_stored
from agent.mind.notes import documents_only
from agent.mind.recall import RecallStore
from agent.telemetry import NoTelemetry, Telemetry
from agent.values import SEARCH_MODES, Citation, SearchMode, by_document

__all__ = [
    "INTERNAL_ERROR",
    "MAX_NAME_CHARS",
    "SEARCH_MODES",
    "AgentNotFound",
    "ArchivistError",
    "Citation",
    "Core",
    "FileInput",
    "Incoming",
    "LoadReport",
    "MemoryView",
    "Progress",
    "ProgressCallback",
    "Reply",
    "SearchMode",
    "SearchPage",
    "Source",
    "Stop",
    "by_document",
    "download",
    "named_apart",
    "shown_url",
]


class Core:
    """The agent core as adapters see it."""

    def __init__(
        self,
        *,
        agents: Agents,
        conversations: Conversations,
        library: Library,
        store: AgentStore,
        recall: RecallStore,
        deliveries: Deliveries,
        search_top_k: int = 5,
        telemetry: Telemetry | None = None,
        jobs: LoadJobs | None = None,
    ) -> None:
        self._agents = agents
        self._conversations = conversations
        self._library = library
        self._store = store
        self._recall = recall
        self._top_k = search_top_k
        self._deliveries = deliveries
        self._telemetry = telemetry or NoTelemetry()
        self._loads = RunningLoads()
        # Set: loads are queued for a worker process instead of embedding here.
        self._jobs = jobs

    @property
    def search_only(self) -> bool:
        """True when answers are archive search results because no LLM is configured."""
        return self._agents.search_only

    @property
    def queued(self) -> int:
        """Messages and commands waiting behind others in their conversation."""
        return self._conversations.queued

    @property
    def active(self) -> int:
        """Conversations with work under way or recently done."""
        return self._conversations.active

    async def first_delivery(self, key: str) -> bool:
        """Whether a platform event (``slack:event:Ev123``…) is new: False once handled,
        also after a restart, so re-deliveries are dropped."""
        return await self._deliveries.first(key)

    async def ask(self, incoming: Incoming) -> Reply:
        """A message for the conversation's agent; replies in order within a conversation."""
        started = time.perf_counter()
        reply = await self._conversations.ask(incoming)
        self._telemetry.turn_finished(time.perf_counter() - started, failed=reply.failed)
        return reply

    async def attach(
        self, conversation: str, scope: str, name: str, *, by: str
    ) -> tuple[Source, bool]:
        """Attach a source visible from ``scope``; the flag says whether it was new."""
        return await self._library.links.attach(conversation, scope, name, by=by)

    async def detach(self, conversation: str, scope: str, name: str) -> tuple[Source, bool]:
        """Detach a source; the flag says whether it had been attached."""
        return await self._library.links.detach(conversation, scope, name)

    async def delete_source(self, scope: str, name: str) -> Source:
        """Delete a workspace's source: its files, passages and every attachment."""
        return await self._library.delete(scope, name)

    async def sources(self, scope: str) -> list[Source]:
        """Sources visible from a workspace."""
        return await self._library.sources(scope)

    async def attached(self, conversation: str) -> list[Source]:
        """Sources attached to a conversation's agent."""
        return documents_only(await self._library.links.attached(conversation), conversation)

    async def load(
        self,
        conversation: str | None,
        scope: str,
        name: str,
        files: Sequence[FileInput],
        *,
        by: str,
        progress: ProgressCallback | None = None,
    ) -> LoadReport:
        """Load files into a workspace source and attach it to ``conversation`` (unless None)
        if anything loaded.

        Once :meth:`close` began, refused with a sentence; cut short by it, rolled back and
        raised with a sentence saying so.
        """

        async def load() -> LoadReport:
            if self._jobs is not None:  # the worker attaches it too
                job = await self._jobs.enqueue(conversation, scope, name, files, by)
                report = await self._jobs.wait(job, progress)
                self._telemetry.passages_loaded(report.passages)
                return report
            report = await self._library.load(scope, name, files, created_by=by, progress=progress)
            self._telemetry.passages_loaded(report.passages)
            if report.loaded and conversation is not None:
                await self._library.links.attach(conversation, scope, name, by=by)
            return report

        return await self._loads.run(", ".join(f.display_name for f in files), load())

    async def search_sources(
        self,
        scope: str,
        names: Sequence[str],
        query: str,
        *,
        top_k: int,
        page: int = 0,
        mode: SearchMode | None = None,
    ) -> SearchPage:
        """Search named sources visible from ``scope``, whatever is attached (the CLI's)."""
        return await self._library.search_sources(
            scope, names, query, top_k=top_k, page=page, mode=mode
        )

    async def search(self, conversation: str, query: str, *, page: int = 0) -> SearchPage:
        """Search what is attached to a conversation, without the LLM."""
        return await self._library.search_attached(
            conversation, query, top_k=self._top_k, page=page
        )

    async def memory(self, conversation: str, *, create: bool = True) -> MemoryView:
        """The conversation's agent's core memory and memory sizes.

        With ``create=False`` an unknown conversation is an error instead of a new agent.
        """
        links = self._library.links
        if not create:
            return await describe_stored(conversation, self._store, self._recall, links)
        state = await self._agents.agent(conversation)
        return await describe(state, self._store, self._recall, links)

    async def reset(self, conversation: str, *, keep_core: bool = True) -> int:
        """Forget the conversation (sources stay attached); returns messages forgotten.

        Queued like a turn, so it never lands in the middle of one.
        """

        async def reset() -> int:
            state = await self._agents.agent(conversation)
            return await self._store.reset(state.id, keep_core=keep_core)

        return await self._conversations.run(conversation, reset)

    async def close(self, grace: float = 0.0) -> None:
        """Refuse new messages and loads and give those under way up to ``grace`` seconds to
        finish; loads still running then are cancelled and rolled back."""
        await asyncio.gather(self._conversations.close(grace), self._loads.close(grace))
