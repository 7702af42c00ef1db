"""Citation handles that mean one passage for the whole conversation.

Search results stay in the agent's context for several turns, so a handle like [3] must not
name one passage today and another tomorrow: each passage an agent is shown gets its handle
once, stored with what the citation needs, and any handle it ever saw can be resolved later.
A handle no search returned resolves to nothing, and is dropped from the reply.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from agent.db import Database
from agent.documents.library import SearchResult
from agent.values import Citation

_HANDLE = re.compile(r"\s?\[(\d{1,6})\]")


class CitationStore:
    """Handles per agent, in the state database."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def handles(self, agent_id: int, results: Sequence[SearchResult]) -> list[Citation]:
        """The citation of each result, under the handle its passage has (or gets now)."""
        agent = int(agent_id)
        async with self._db.transaction() as conn:
            for result in results:
                await conn.execute(
                    "INSERT INTO citations (agent_id, handle, passage_id, document, page,"
                    " last_page, source, origin)"
                    # Typed, as PostgreSQL cannot infer a parameter's type in a select list.
                    " SELECT CAST(? AS BIGINT), COALESCE(MAX(handle), 0) + 1, CAST(? AS BIGINT),"
                    " CAST(? AS TEXT), CAST(? AS INTEGER), CAST(? AS INTEGER), CAST(? AS TEXT),"
                    " CAST(? AS TEXT)"
                    " FROM citations WHERE agent_id = ?"
                    " ON CONFLICT (agent_id, passage_id) DO NOTHING",
                    (
                        agent,
                        result.passage_id,
                        result.document,
                        result.page,
                        result.last_page,
                        result.source,
                        result.origin,
                        agent,
                    ),
                )
            ids = [r.passage_id for r in results]
            marks = ",".join("?" * len(ids))
            rows = await conn.fetchall(
                "SELECT passage_id, handle FROM citations"  # noqa: S608 (placeholders only)
                f" WHERE agent_id = ? AND passage_id IN ({marks})",
                (agent, *ids),
            )
            handle_of = {int(row[0]): int(row[1]) for row in rows}
        return [r.cited_as(handle_of[r.passage_id]) for r in results]

    async def resolve(self, agent_id: int, handles: Iterable[int]) -> dict[int, Citation]:
        """The citations behind ``handles`` that this agent was shown."""
        wanted = sorted({int(h) for h in handles})
        if not wanted:
            return {}
        rows = await self._db.fetchall(
            "SELECT handle, document, page, last_page, source, origin FROM citations"  # noqa: S608
            f" WHERE agent_id = ? AND handle IN ({','.join('?' * len(wanted))})",
            (int(agent_id), *wanted),
        )
        return {
            int(row["handle"]): Citation(
                int(row["handle"]),
                str(row["document"]),
                int(row["page"]),
                int(row["last_page"]),
                str(row["source"]),
                row["origin"],
            )
            for row in rows
        }


def cited_handles(messages: Iterable[str]) -> list[int]:
    """The handles ``messages`` cite, in order of first use."""
    seen: dict[int, None] = {}
    for message in messages:
        for match in _HANDLE.finditer(message):
            seen.setdefault(int(match.group(1)), None)
    return list(seen)


def without_unknown(message: str, known: Iterable[int]) -> str:
    """``message`` with every handle not in ``known`` taken out (a citation nothing backs)."""
    keep = set(known)
    return _HANDLE.sub(lambda m: m.group(0) if int(m.group(1)) in keep else "", message)
