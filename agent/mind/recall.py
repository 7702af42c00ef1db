"""Recall memory in the state database: every message of an agent's conversation, searchable.

Each message is written before the agent acts on it, and eviction from the prompt only flips a
flag, so the whole conversation stays searchable. The summary that evicted messages are folded
into belongs to the agent (:mod:`agent.mind.memory`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, timezone

from agent.db import Database, match_expression
from agent.db.text_search import query_words, tsquery_sql
from agent.mind.memory import SET_SUMMARY
from agent.mind.messages import (
    COLUMN_NAMES,
    MESSAGE_COLUMNS,
    Message,
    RecallPage,
    Role,
    StoredMessage,
    insert_sql,
    message_row,
    stored,
)
from agent.mind.timestamps import now, timestamp

log = logging.getLogger(__name__)

# What conversation search covers, as in MemGPT: what people said and what the agent said.
# System prompts and function results are the agent's plumbing, not the conversation.
SEARCHED_ROLES: tuple[Role, ...] = ("user", "assistant")
_SEARCHED_ROLES_SQL = "(" + ", ".join(f"'{role}'" for role in SEARCHED_ROLES) + ")"

INTERRUPTED = "interrupted: this call was stopped before it finished; no result"

# The chat API's pairing rule over the in-context messages in id (prompt) order: a result
# belongs to the nearest non-tool message before it, its head, and answers one of its calls;
# every call of a head needs a result there. Ids are matched within a head: some servers
# reuse them. Rows: each call without a result, with next_id, the next in-context message
# after its head that is not a result (NULL: none); each result of no call ('result').
_CALLS = {
    "sqlite": """
    SELECT ctx.id AS head, c.key AS n, json_extract(c.value, '$.id') AS call_id,
        json_extract(c.value, '$.function.name') AS name
    FROM ctx, json_each(ctx.tool_calls) AS c WHERE ctx.role = 'assistant'
""",
    "postgresql": """
    SELECT ctx.id AS head, c.n - 1 AS n, c.value ->> 'id' AS call_id,
        c.value -> 'function' ->> 'name' AS name
    FROM ctx, jsonb_array_elements(ctx.tool_calls::jsonb) WITH ORDINALITY AS c(value, n)
    WHERE ctx.role = 'assistant'
""",
}
_UNPAIRED = {
    dialect: f"""
WITH ctx AS (
    SELECT id, role, tool_calls, tool_call_id,
        MAX(CASE WHEN role != 'tool' THEN id END) OVER (ORDER BY id) AS head
    FROM messages WHERE agent_id = ? AND in_context = 1
), calls AS ({calls}), results AS (SELECT id, head, tool_call_id FROM ctx WHERE role = 'tool')
SELECT 'call' AS kind, head AS id, n, call_id, name,
    (SELECT MIN(id) FROM ctx WHERE ctx.id > calls.head AND role != 'tool') AS next_id
FROM calls WHERE NOT EXISTS (
    SELECT 1 FROM results r WHERE r.head = calls.head AND r.tool_call_id = calls.call_id)
UNION ALL
SELECT 'result', id, 0, tool_call_id, NULL, NULL FROM results r WHERE NOT EXISTS (
    SELECT 1 FROM calls WHERE calls.head = r.head AND calls.call_id = r.tool_call_id)
ORDER BY id, n
"""  # noqa: S608 (constants)
    for dialect, calls in _CALLS.items()
}
_EVICT_SPAN = "UPDATE messages SET in_context = 0 WHERE agent_id = ? AND id >= ? AND id < ?"


class RecallStore:
    """Every message of every agent's conversation, in order, searchable by words and dates."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, agent_id: int, message: Message, *, in_context: bool = True) -> int:
        """Store a message in its own transaction and return its id.

        Committed before returning, so the loop can persist each message before acting on it
        and a crash never loses what was said. ``in_context=False`` records a message for
        search only, such as the text of a send_message call, which the prompt already holds
        inside the call itself.
        """
        (message_id,) = await self.add_all(agent_id, [(message, in_context)])
        return message_id

    async def add_all(self, agent_id: int, messages: Sequence[tuple[Message, bool]]) -> list[int]:
        """Store ``(message, in_context)`` pairs in one transaction, in order; return their ids.

        For messages that arrive together, such as a function's result and what it sent to
        the people: committed before returning, all or none.
        """
        if not messages:
            return []
        params = [
            value
            for message, in_context in messages
            for value in message_row(agent_id, message, in_context=in_context)
        ]
        rows = await self._db.write(f"{insert_sql(len(messages))} RETURNING id", params)
        # RETURNING's row order is unspecified; ids grow in the order the rows were inserted.
        return sorted(int(row[0]) for row in rows)

    async def answer_dangling_calls(self, agent_id: int) -> int:
        """Store an :data:`INTERRUPTED` result for each call in context without one; return
        how many. Strict servers refuse a prompt with an unanswered call, and a turn stopped
        between storing a call and its result (killed, or cancelled at shutdown) leaves one.

        Run it before a turn stores its user message: one read when all is paired. Turns of
        a conversation run one at a time, so a call the last turn left is in its last
        assistant message, followed in context only by that message's results: appending (ids
        only grow) puts the answer right after them. A call with messages after it (a state
        file from before this check) has no id to answer it in place: its assistant message
        and results leave the context instead, staying in recall. Only what is in context
        pairs: a call whose result left it counts as unanswered, and a result whose call left
        it leaves too. One transaction; running it again changes nothing.
        """
        agent_id = int(agent_id)
        unpaired_sql = _UNPAIRED[self._db.dialect]
        if not await self._db.fetchall(unpaired_sql, (agent_id,)):
            return 0
        async with self._db.transaction() as conn:
            # Read again under the write lock, so that what is repaired is what is there.
            unpaired = await conn.fetchall(unpaired_sql, (agent_id,))
            last: list[Message] = []
            spans: set[tuple[int, int]] = set()  # ids [from, to) leaving the context
            for row in unpaired:
                if row["kind"] == "result":
                    spans.add((row["id"], row["id"] + 1))
                elif row["next_id"] is not None:  # the call's message up to the next one
                    spans.add((row["id"], row["next_id"]))
                else:
                    name, call_id = row["name"], row["call_id"] or ""
                    last.append(Message("tool", INTERRUPTED, tool_call_id=call_id, name=name))
            await conn.executemany(_EVICT_SPAN, [(agent_id, *span) for span in spans])
            if last:
                rows = [message_row(agent_id, m, in_context=True) for m in last]
                await conn.execute(insert_sql(len(rows)), [v for row in rows for v in row])
        log.warning(
            "agent %d: answered %d interrupted calls, took %d unpaired spans out of context",
            agent_id,
            len(last),
            len(spans),
        )
        return len(last)

    async def in_context(self, agent_id: int) -> list[StoredMessage]:
        """The messages still in the prompt, oldest first."""
        rows = await self._db.fetchall(
            f"SELECT {MESSAGE_COLUMNS} FROM messages"  # noqa: S608 (a constant)
            " WHERE agent_id = ? AND in_context = 1 ORDER BY id",
            (int(agent_id),),
        )
        return [stored(row) for row in rows]

    async def evict(self, agent_id: int, up_to_id: int, *, summary: str | None = None) -> int:
        """Take messages with ids up to ``up_to_id`` out of the prompt; return how many.

        The rows stay, so search still finds them. Pass the new ``summary`` covering them to
        store it in the same transaction: a crash then never leaves messages evicted but
        unsummarised, nor summarised twice.
        """
        async with self._db.transaction() as conn:
            evicted = await conn.execute(
                "UPDATE messages SET in_context = 0"
                " WHERE agent_id = ? AND id <= ? AND in_context = 1",
                (int(agent_id), int(up_to_id)),
            )
            if summary is not None:
                await conn.execute(SET_SUMMARY, (summary, timestamp(now()), int(agent_id)))
            return evicted

    async def hide(self, agent_id: int, ids: Sequence[int]) -> None:
        """Take these messages out of the prompt; search still finds them."""
        async with self._db.transaction() as conn:
            await conn.executemany(
                "UPDATE messages SET in_context = 0 WHERE agent_id = ? AND id = ?",
                [(int(agent_id), int(i)) for i in ids],
            )

    async def count(self, agent_id: int) -> int:
        """How many messages of every role the agent has stored, evicted ones included."""
        row = await self._db.fetchone(
            "SELECT COUNT(*) FROM messages WHERE agent_id = ?", (int(agent_id),)
        )
        return int(row[0]) if row else 0

    async def last_reply(self, agent_id: int) -> str | None:
        """The last thing the agent said to the people (a message, not a function call)."""
        row = await self._db.fetchone(
            "SELECT content FROM messages WHERE agent_id = ? AND role = 'assistant'"
            " AND tool_calls IS NULL AND content != '' ORDER BY id DESC LIMIT 1",
            (int(agent_id),),
        )
        return str(row[0]) if row else None

    async def earlier_question(self, agent_id: int) -> str | None:
        """What a person said before the latest message (for a follow-up's search)."""
        row = await self._db.fetchone(
            "SELECT content FROM messages WHERE agent_id = ? AND role = 'user'"
            " ORDER BY id DESC LIMIT 1 OFFSET 1",
            (int(agent_id),),
        )
        return str(row[0]) if row else None

    async def search(
        self, agent_id: int, query: str, *, page: int = 0, page_size: int = 5
    ) -> RecallPage:
        """User and assistant messages matching any word of ``query``, best (BM25) first.

        System prompts and function results are not searched (see ``SEARCHED_ROLES``). The
        query is plain words: FTS5 syntax in it is matched as text. ``page`` counts from 0.
        """
        _check_page(page, page_size)
        columns = ", ".join(f"m.{name}" for name in COLUMN_NAMES)
        # Only constants and '?' placeholders are interpolated into the SQL here and in
        # search_date.
        if self._db.dialect == "postgresql":
            words = query_words(query)
            if not words:
                return RecallPage([], 0, page, page_size)
            source = f"FROM messages m, (SELECT {tsquery_sql(len(words))} AS q) t"
            where = f"m.tsv @@ t.q AND m.agent_id = ? AND m.role IN {_SEARCHED_ROLES_SQL}"
            order = "ts_rank(m.tsv, t.q) DESC, m.id DESC"
            params: tuple[object, ...] = (*words, int(agent_id))
        else:
            expression = match_expression(query)
            if expression is None:
                return RecallPage([], 0, page, page_size)
            source = "FROM messages_fts JOIN messages m ON m.id = messages_fts.rowid"
            where = f"messages_fts MATCH ? AND m.agent_id = ? AND m.role IN {_SEARCHED_ROLES_SQL}"
            order = "bm25(messages_fts), m.id DESC"
            params = (expression, int(agent_id))
        total = await self._db.fetchone(f"SELECT COUNT(*) {source} WHERE {where}", params)
        rows = await self._db.fetchall(
            f"SELECT {columns} {source} WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?",
            (*params, page_size, page * page_size),
        )
        return RecallPage([stored(r) for r in rows], int(total[0]) if total else 0, page, page_size)

    async def search_date(
        self,
        agent_id: int,
        start: datetime | date,
        end: datetime | date,
        *,
        page: int = 0,
        page_size: int = 5,
    ) -> RecallPage:
        """User and assistant messages from ``start`` to ``end`` inclusive, oldest first.

        A date means the whole UTC day: ``start=end=date(2024, 5, 1)`` is all of 1 May. A
        datetime is an exact, time-zone aware bound. Roles are as in :meth:`search`.
        """
        _check_page(page, page_size)
        low = timestamp(start if isinstance(start, datetime) else _day_start(start))
        # A date's day ends where the next one starts; a datetime bound is itself included.
        if isinstance(end, datetime):
            high, upper = timestamp(end), "<="
        else:
            high, upper = timestamp(_day_start(end + timedelta(days=1))), "<"
        # content IS NOT NULL: an assistant message that only calls functions said nothing.
        where = (
            f"agent_id = ? AND created_at >= ? AND created_at {upper} ?"
            f" AND role IN {_SEARCHED_ROLES_SQL} AND content IS NOT NULL"
        )
        params = (int(agent_id), low, high)
        total = await self._db.fetchone(f"SELECT COUNT(*) FROM messages WHERE {where}", params)  # noqa: S608
        rows = await self._db.fetchall(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE {where}"  # noqa: S608 (constants)
            " ORDER BY created_at, id LIMIT ? OFFSET ?",
            (*params, page_size, page * page_size),
        )
        return RecallPage([stored(r) for r in rows], int(total[0]) if total else 0, page, page_size)


def _check_page(page: int, page_size: int) -> None:
    if page < 0 or page_size < 1:
        raise ValueError(f"page {page} of size {page_size}: need page >= 0 and page_size >= 1")


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=timezone.utc)
