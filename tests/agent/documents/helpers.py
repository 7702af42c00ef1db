"""What the library, loader, recovery and archive tests share: their scope and a passage count."""

from __future__ import annotations

from agent.documents.library import Library
from agent.values import Scope

SCOPE = "global"


async def _passages_in_archive(library: Library, source_id: int) -> int:
    return await library.archive.count(Scope((source_id,)))
