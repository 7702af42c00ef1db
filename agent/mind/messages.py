"""Messages of a conversation as the agent stores them, and their rows in the state database."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from agent.db import Row
from agent.mind.timestamps import now, parse_timestamp, timestamp

Role = Literal["system", "user", "assistant", "tool"]
ROLES: tuple[Role, ...] = get_args(Role)

COLUMN_NAMES = (
    "id",
    "role",
    "speaker_id",
    "speaker_name",
    "content",
    "tool_calls",
    "tool_call_id",
    "name",
    "in_context",
    "created_at",
)
MESSAGE_COLUMNS = ", ".join(COLUMN_NAMES)
INSERT_COLUMNS = (
    "agent_id, in_context, role, speaker_id, speaker_name,"
    " content, tool_calls, tool_call_id, name, created_at"
)
_MESSAGE_VALUES = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_SPEAKER_NAME_MAX = 64


@dataclass(frozen=True)
class Message:
    """A chat message as the agent loop handles it, before it is stored.

    ``content`` may be None only for an assistant message that just calls functions.
    ``tool_calls`` (assistant only) are chat-API tool call dicts; ``tool_call_id`` and ``name``
    (tool only) say which call a function result answers. ``speaker_id``/``speaker_name`` name
    the person behind a user message. ``created_at`` must be time-zone aware; it defaults to now.
    """

    role: Role
    content: str | None = None
    speaker_id: str | None = None
    speaker_name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    name: str | None = None
    created_at: datetime = field(default_factory=now)

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown message role {self.role!r}")
        if self.tool_calls is not None and self.role != "assistant":
            raise ValueError("only assistant messages carry tool calls")
        if (self.role == "tool") != (self.tool_call_id is not None):
            raise ValueError("tool messages, and only they, need a tool_call_id")
        if self.content is None and not (self.role == "assistant" and self.tool_calls):
            raise ValueError(f"a {self.role} message without tool calls needs content")
        timestamp(self.created_at)  # rejects a naive time now rather than when it is stored

    def to_openai(self) -> dict[str, Any]:
        """The message as a chat-completions API dict.

        A user message with a speaker name has it prefixed to the content, ``[Alice] hello``:
        in a channel several people talk to one agent, and the API's own ``name`` field is
        limited to ``[A-Za-z0-9_-]`` and ignored by many models and compatible servers. A tool
        message carries no ``name``: the API's tool message has none, and strict compatible
        servers reject unknown fields; ``tool_call_id`` already ties it to its call.
        """
        content = self.content
        if self.role == "user" and self.speaker_name and content is not None:
            content = f"[{display_name(self.speaker_name)}] {content}"
        message: dict[str, Any] = {"role": self.role, "content": content}
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
        if self.role == "tool":
            message["tool_call_id"] = self.tool_call_id
            message["content"] = content or ""
        return message


@dataclass(frozen=True, kw_only=True)
class StoredMessage(Message):
    """A message read back from recall memory, with its row id and whether it is in context.

    ``created_at`` comes back at the stored (millisecond) precision.
    """

    id: int
    in_context: bool


@dataclass(frozen=True)
class RecallPage:
    """One page of conversation search results, with the true number of matches."""

    results: list[StoredMessage]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        """How many pages the whole result set fills."""
        return math.ceil(self.total / self.page_size)


def display_name(name: str) -> str:
    # A display name is user-controlled: keep it on one line and out of the bracket syntax so
    # it cannot pose as another speaker or as a new line of the conversation.
    clean = "".join(ch if ch.isprintable() and ch not in "[]" else " " for ch in name)
    clean = " ".join(clean.split())
    return clean[:_SPEAKER_NAME_MAX] or "?"


def message_row(agent_id: int, message: Message, *, in_context: bool) -> tuple[object, ...]:
    """A message's values in the order of ``INSERT_COLUMNS``."""
    return (
        int(agent_id),
        int(in_context),
        message.role,
        message.speaker_id,
        message.speaker_name,
        message.content,
        json.dumps(message.tool_calls) if message.tool_calls is not None else None,
        message.tool_call_id,
        message.name,
        timestamp(message.created_at),
    )


def insert_sql(rows: int) -> str:
    """An INSERT of ``rows`` messages, with the values of :func:`message_row` in order."""
    values = ", ".join([_MESSAGE_VALUES] * rows)
    return f"INSERT INTO messages ({INSERT_COLUMNS}) VALUES {values}"  # noqa: S608 (constants)


def stored(row: Row) -> StoredMessage:
    tool_calls = row["tool_calls"]
    return StoredMessage(
        id=int(row["id"]),
        role=row["role"],
        speaker_id=row["speaker_id"],
        speaker_name=row["speaker_name"],
        content=row["content"],
        tool_calls=json.loads(tool_calls) if tool_calls is not None else None,
        tool_call_id=row["tool_call_id"],
        name=row["name"],
        in_context=bool(row["in_context"]),
        created_at=parse_timestamp(row["created_at"]),
    )
