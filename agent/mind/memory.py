"""Agents in the state database: their core memory blocks and the running summary.

Each conversation key (``platform:workspace:channel``) has one agent. Its *core memory* is two
small text blocks, ``persona`` and ``human``, that sit in the system prompt and that the model
edits through functions. Its *recall memory*, every message of the conversation, is in
:mod:`agent.mind.recall`; messages evicted from the prompt are folded into the agent's summary.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, get_args

from agent.db import Database
from agent.errors import ArchivistError, quoted_name
from agent.mind.timestamps import now, parse_timestamp, timestamp

DEFAULT_CHAR_LIMIT = 2000

BlockLabel = Literal["persona", "human"]
LABELS: tuple[BlockLabel, ...] = get_args(BlockLabel)

# Also run by RecallStore.evict, in the transaction that evicts what the summary covers;
# parameters: the summary, timestamp(now()), the agent's id.
SET_SUMMARY = "UPDATE agents SET summary = ?, updated_at = ? WHERE id = ?"
_TOUCH = "UPDATE agents SET updated_at = ? WHERE id = ?"


class MemoryEditError(ArchivistError):
    """A core memory edit the model asked for cannot be made; the message is for the model."""


@dataclass(frozen=True)
class Block:
    """One core memory block: its text and the most characters it may hold."""

    value: str
    char_limit: int


@dataclass(frozen=True)
class AgentState:
    """An agent as stored: identity, running summary, and its core memory blocks by label."""

    id: int
    key: str
    persona_name: str | None
    human_name: str | None
    summary: str
    blocks: dict[str, Block]


@dataclass(frozen=True)
class AgentSummary:
    """One line of an agent listing; ``last_activity`` is its newest message's time, if any."""

    id: int
    key: str
    persona_name: str | None
    human_name: str | None
    messages: int
    last_activity: datetime | None


class AgentStore:
    """Agents and their core memory blocks; every multi-row change is one transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def get_or_create(
        self,
        key: str,
        *,
        persona: str,
        human: str,
        persona_name: str | None = None,
        human_name: str | None = None,
        char_limit: int = DEFAULT_CHAR_LIMIT,
    ) -> AgentState:
        """The agent for a conversation key, created with these blocks if it does not exist.

        ``persona`` and ``human`` are the blocks' initial text, kept beside them for
        :meth:`reset`. An existing agent is returned unchanged: its blocks are the model's
        to edit, so a changed configuration does not overwrite them.
        Raises ValueError if the initial text is longer than ``char_limit``.
        """
        for label, text in (("persona", persona), ("human", human)):
            if len(text) > char_limit:
                raise ValueError(
                    f"the initial {label} text is {len(text):,} characters,"
                    f" over the block limit of {char_limit:,}"
                )
        # Two statements, each atomic and idempotent, rather than one transaction (four round
        # trips holding the writer): an agent only exists for get() once its blocks do, and if
        # the process dies between the two, the next call adds the blocks.
        await self._db.write(
            "INSERT INTO agents (key, persona_name, human_name) VALUES (?, ?, ?)"
            " ON CONFLICT (key) DO NOTHING",
            (key, persona_name, human_name),
        )
        await self._db.write(
            "INSERT INTO memory_blocks (agent_id, label, value, initial, char_limit)"
            " SELECT a.id, b.column1, b.column2, b.column2, CAST(? AS INTEGER)"
            " FROM agents a, (VALUES ('persona', ?), ('human', ?)) b WHERE a.key = ?"
            " ON CONFLICT DO NOTHING",
            (int(char_limit), persona, human, key),
        )
        state = await self.get(key)
        assert state is not None
        return state

    async def get(self, key: str) -> AgentState | None:
        """The agent for a conversation key, or None if it was never (fully) created."""
        rows = await self._db.fetchall(
            "SELECT a.id, a.key, a.persona_name, a.human_name, a.summary,"
            " b.label, b.value, b.char_limit"
            " FROM agents a JOIN memory_blocks b ON b.agent_id = a.id WHERE a.key = ?",
            (key,),
        )
        if not rows:
            return None
        row = rows[0]
        return AgentState(
            id=int(row["id"]),
            key=row["key"],
            persona_name=row["persona_name"],
            human_name=row["human_name"],
            summary=row["summary"],
            blocks={b["label"]: Block(b["value"], int(b["char_limit"])) for b in rows},
        )

    async def summary(self, agent_id: int) -> str:
        """The agent's current summary of its evicted messages ('' if none, or no such agent)."""
        row = await self._db.fetchone("SELECT summary FROM agents WHERE id = ?", (int(agent_id),))
        return str(row[0]) if row else ""

    async def save_block(self, agent_id: int, label: str, value: str) -> None:
        """Store a block's new text; KeyError if the agent has no such block.

        The caller enforces the limit (:class:`CoreMemory` does, with messages for the model);
        the schema refuses a value over it all the same.
        """
        async with self._db.transaction() as conn:
            changed = await conn.execute(
                "UPDATE memory_blocks SET value = ? WHERE agent_id = ? AND label = ?",
                (value, int(agent_id), label),
            )
            if not changed:
                raise KeyError(f"agent {agent_id} has no block {label!r}")
            await conn.execute(_TOUCH, (timestamp(now()), int(agent_id)))

    async def set_summary(self, agent_id: int, summary: str) -> None:
        """Replace the recursive summary of the agent's evicted messages."""
        async with self._db.transaction() as conn:
            await conn.execute(SET_SUMMARY, (summary, timestamp(now()), int(agent_id)))

    async def reset(self, agent_id: int, *, keep_core: bool = True) -> int:
        """Forget the conversation: delete its messages and summary; return how many messages.

        With ``keep_core=False`` the blocks also go back to the text the agent was created
        with (stored at creation), not to whatever is configured today. Any
        :class:`CoreMemory` loaded before is stale afterwards: load the agent again.
        """
        async with self._db.transaction() as conn:
            deleted = await conn.execute(
                "DELETE FROM messages WHERE agent_id = ?", (int(agent_id),)
            )
            await conn.execute(SET_SUMMARY, ("", timestamp(now()), int(agent_id)))
            # No result is in view any more: handles may start again from [1].
            await conn.execute("DELETE FROM citations WHERE agent_id = ?", (int(agent_id),))
            if not keep_core:
                await conn.execute(
                    "UPDATE memory_blocks SET value = initial WHERE agent_id = ?", (int(agent_id),)
                )
        return deleted

    # Kept last: below it, `list` in this class body would name the method, not the builtin.
    async def list(self) -> builtins.list[AgentSummary]:
        """Every agent with its message count and newest message time, by key."""
        rows = await self._db.fetchall(
            "SELECT a.id, a.key, a.persona_name, a.human_name,"
            " COUNT(m.id) AS messages, MAX(m.created_at) AS last_activity"
            " FROM agents a LEFT JOIN messages m ON m.agent_id = a.id"
            " GROUP BY a.id ORDER BY a.key"
        )
        return [
            AgentSummary(
                id=int(row["id"]),
                key=row["key"],
                persona_name=row["persona_name"],
                human_name=row["human_name"],
                messages=int(row["messages"]),
                last_activity=(
                    parse_timestamp(row["last_activity"]) if row["last_activity"] else None
                ),
            )
            for row in rows
        ]


class CoreMemory:
    """An agent's persona and human blocks, edited by the model and saved on every edit.

    Edits are checked here, and a refused edit raises :class:`MemoryEditError` whose message
    tells the model what went wrong and what to do instead; the block is then unchanged.
    """

    def __init__(self, agent_id: int, blocks: Mapping[str, Block], store: AgentStore) -> None:
        self._agent_id = agent_id
        self._blocks = dict(blocks)
        self._store = store

    @classmethod
    def of(cls, state: AgentState, store: AgentStore) -> CoreMemory:
        """The core memory of a loaded agent, saving through ``store``."""
        return cls(state.id, state.blocks, store)

    def block(self, label: str) -> Block:
        """The block with this label; KeyError if there is none."""
        return self._blocks[label]

    async def append(self, label: str, text: str) -> None:
        """Add ``text`` to the end of a block, on a new line (as MemGPT's core_memory_append)."""
        operation = "core_memory_append"
        block = self._existing(operation, label)
        if not text.strip():
            raise MemoryEditError(f"{operation} failed: the text to append is empty.")
        value = f"{block.value}\n{text}" if block.value else text
        await self._save(operation, label, value)

    async def replace(self, label: str, old: str, new: str) -> None:
        """Replace the one occurrence of ``old`` in a block with ``new`` (empty deletes it).

        ``old`` must occur exactly once: replacing every occurrence of a short phrase could
        rewrite facts the model did not mean to touch, so an ambiguous edit is refused.
        """
        operation = "core_memory_replace"
        block = self._existing(operation, label)
        if not old:
            raise MemoryEditError(
                f"{operation} failed: the text to replace is empty; give the exact text"
                f" from block '{label}' that should change."
            )
        occurrences = block.value.count(old)
        if occurrences == 0:
            raise MemoryEditError(
                f"{operation} failed: {quoted_name(old)} does not occur in block '{label}';"
                " copy the exact text from the block."
            )
        if occurrences > 1:
            raise MemoryEditError(
                f"{operation} failed: {quoted_name(old)} occurs {occurrences} times in block"
                f" '{label}'; include more of the surrounding text so that it occurs once."
            )
        await self._save(operation, label, block.value.replace(old, new))

    def render(self) -> str:
        """The blocks as they appear in the system prompt, each with its size and limit."""
        return "\n".join(
            f'<{label} characters="{len(block.value):,}/{block.char_limit:,}">\n'
            f"{block.value}\n</{label}>"
            for label in LABELS
            if (block := self._blocks.get(label)) is not None
        )

    def _existing(self, operation: str, label: str) -> Block:
        block = self._blocks.get(label)
        if block is None:
            names = " and ".join(f"'{name}'" for name in LABELS)
            raise MemoryEditError(
                f"{operation} failed: there is no block {quoted_name(label)};"
                f" the blocks are {names}."
            )
        return block

    async def _save(self, operation: str, label: str, value: str) -> None:
        limit = self._blocks[label].char_limit
        if len(value) > limit:
            raise MemoryEditError(
                f"{operation} failed: block '{label}' would be {len(value):,} characters,"
                f" {len(value) - limit:,} over its limit of {limit:,}; shorten the text or"
                " replace something in the block first."
            )
        # Saved first: if the write fails, memory and prompt still agree with the database.
        await self._store.save_block(self._agent_id, label, value)
        self._blocks[label] = Block(value, limit)
