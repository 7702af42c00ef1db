"""What ``/memory`` and ``archivist agents show`` print: an agent's core memory and sizes.

Read from the state file alone (no archive, no model), so the command line shows it beside
a running bot.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.documents.links import Links
from agent.errors import AgentNotFound
from agent.mind.memory import AgentState, AgentStore, CoreMemory
from agent.mind.notes import archive_overview
from agent.mind.recall import RecallStore


@dataclass(frozen=True)
class MemoryView:
    """An agent's core memory and memory sizes, for a /memory command."""

    core: str
    messages: int
    sources: list[str]
    passages: int


async def describe_stored(
    conversation: str, store: AgentStore, recall: RecallStore, links: Links
) -> MemoryView:
    """The memory view of the conversation's agent, which must exist (nothing is created)."""
    state = await store.get(conversation)
    if state is None:
        raise AgentNotFound(f"No agent for conversation '{conversation[:80]}'.")
    return await describe(state, store, recall, links)


async def describe(
    state: AgentState, store: AgentStore, recall: RecallStore, links: Links
) -> MemoryView:
    """The memory view of a stored agent."""
    passages, names = await archive_overview(links, state.key)
    return MemoryView(
        core=CoreMemory.of(state, store).render(),
        messages=await recall.count(state.id),
        sources=names,
        passages=passages,
    )
