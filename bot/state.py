"""The state file alone, for commands that need neither Milvus nor the model.

Listing and inspecting sources and agents, attaching and detaching: all of it is rows in
SQLite, which (in WAL mode) other processes may use beside a running bot that holds the
Milvus Lite file. Nothing here imports the archive, the model or a platform, so these
commands start in a fraction of the time the full core takes (issue 14).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from agent.db import open_database
from agent.documents.links import Links
from agent.documents.recovery import recover
from agent.documents.registry import SourceRegistry
from agent.mind.memory import AgentStore
from agent.mind.memory_view import MemoryView, describe_stored
from agent.mind.recall import RecallStore
from bot.config import Settings


@dataclass(frozen=True)
class StateFile:
    """The sources, links and agents as the state file has them."""

    registry: SourceRegistry
    links: Links
    agents: AgentStore
    recall: RecallStore

    async def memory(self, conversation: str) -> MemoryView:
        """An existing agent's core memory and memory sizes (AgentNotFound if none)."""
        return await describe_stored(conversation, self.agents, self.recall, self.links)


async def embedding_model(settings: Settings, registry: SourceRegistry) -> str:
    """The embedding model this installation runs: the configured one, else the one its
    sources were embedded with (a new data folder gets the default)."""
    return settings.embedding_model({s.embedding_model for s in await registry.visible()})


@asynccontextmanager
async def open_state(settings: Settings) -> AsyncIterator[StateFile]:
    """Open the state file and yield its sources, links and agents."""
    async with open_database(settings.storage.state_location) as db:
        registry = SourceRegistry(db)
        # A load that died shows as failed here too; its passages go at the next full start.
        await recover(registry, None)
        # The dimension is the model's to say (an OpenAI-compatible one tells it on its first
        # call): here the model's name decides what may be attached, the bot checks the rest.
        model = await embedding_model(settings, registry)
        links = Links(registry, model_id=model, dim=None)
        yield StateFile(registry, links, AgentStore(db), RecallStore(db))
