"""Commands that need the archive, handed to a bot running on the same data folder.

The bot holds the Milvus Lite file (one process at a time may open it), so ``archivist load``,
``sources search`` and ``sources delete`` beside it send their work to its admin endpoint
(:mod:`adapters.admin`) and print what comes back as if they had done it themselves: the
same lines, the same sentences, the same exit codes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import aiohttp

from agent.documents.loads import (
    FileInput,
    FileResult,
    LoadReport,
    Progress,
    ProgressCallback,
    StageTimes,
)
from agent.documents.registry import Source
from agent.errors import (
    ArchiveUnavailable,
    ArchivistError,
    EmbedderUnavailable,
    SourceNotFound,
    SourceNotVisible,
    StateUnavailable,
)
from bot.admin import AdminAddress, read_address

if TYPE_CHECKING:
    from agent.documents.library import SearchPage
    from agent.values import SearchMode

# How long a bot may take to answer "are you there": a live one answers in milliseconds.
PING_SECONDS = 3.0

# The bot's failures by class, so that the command exits as it would have on its own.
_ERRORS: dict[str, type[ArchivistError]] = {
    cls.__name__: cls
    for cls in (
        SourceNotFound,
        SourceNotVisible,
        ArchiveUnavailable,
        StateUnavailable,
        EmbedderUnavailable,
    )
}


def _raise_if_failed(answer: dict[str, Any]) -> None:
    if "error" in answer:
        raise _ERRORS.get(str(answer.get("kind")), ArchivistError)(str(answer["error"]))


class SourceWork(Protocol):
    """What the archive commands do: in this process (:class:`Library`) or in a running bot."""

    async def load(
        self,
        scope: str,
        name: str,
        files: Sequence[FileInput],
        *,
        created_by: str,
        progress: ProgressCallback | None = None,
    ) -> LoadReport: ...

    async def search_sources(
        self,
        scope: str,
        names: Sequence[str],
        query: str,
        *,
        top_k: int = 5,
        page: int = 0,
        mode: SearchMode | None = None,
    ) -> SearchPage: ...

    async def delete(self, scope: str, name: str) -> Source: ...


class RunningBot:
    """A bot's admin endpoint, found answering: a :class:`SourceWork`."""

    def __init__(self, address: AdminAddress, session: aiohttp.ClientSession) -> None:
        self.address = address
        self._session = session
        self._auth = {"Authorization": f"Bearer {address.token}"}

    async def load(
        self,
        scope: str,
        name: str,
        files: Sequence[FileInput],
        *,
        created_by: str,
        progress: ProgressCallback | None = None,
    ) -> LoadReport:
        """Load ``files`` in the bot; ``progress`` hears each report as the bot makes it."""
        body = {
            "scope": scope,
            "name": name,
            "by": created_by,
            "files": [{"path": str(f.path.resolve()), "folder": list(f.folder)} for f in files],
        }
        async with self._post("load", body) as response:
            async for raw in response.content:
                line = json.loads(raw)
                if "progress" in line and progress is not None:
                    progress(Progress(**line["progress"]))
                elif "report" in line:
                    return _report(line["report"])
                else:
                    _raise_if_failed(line)
        raise ArchiveUnavailable("The running bot stopped before the load finished.")

    async def search_sources(
        self,
        scope: str,
        names: Sequence[str],
        query: str,
        *,
        top_k: int = 5,
        page: int = 0,
        mode: SearchMode | None = None,
    ) -> SearchPage:
        """Search named sources in the bot."""
        from agent.documents.library import SearchPage, SearchResult

        body = {
            "scope": scope,
            "names": list(names),
            "query": query,
            "top_k": top_k,
            "page": page,
            "mode": mode,
        }
        async with self._post("search", body) as response:
            answer = await response.json()
        _raise_if_failed(answer)
        found = answer["page"]
        results = [SearchResult(**r) for r in found.pop("results")]
        return SearchPage(results=results, **found)

    async def delete(self, scope: str, name: str) -> Source:
        """Delete a source in the bot."""
        async with self._post("delete", {"scope": scope, "name": name}) as response:
            answer = await response.json()
        _raise_if_failed(answer)
        return Source(**answer["source"])

    @asynccontextmanager
    async def _post(self, path: str, body: dict[str, Any]) -> AsyncIterator[aiohttp.ClientResponse]:
        try:
            async with self._session.post(
                f"{self.address.url}/{path}", json=body, headers=self._auth
            ) as response:
                yield response
        except (aiohttp.ClientError, OSError) as exc:
            raise ArchiveUnavailable(
                f"The running bot (pid {self.address.pid}) stopped answering: {exc}."
            ) from exc


def _report(fields: dict[str, Any]) -> LoadReport:
    source = fields["source"]
    return LoadReport(
        source=Source(**source) if source else None,
        source_name=fields["source_name"],
        files=[FileResult(**f) for f in fields["files"]],
        times=StageTimes(**fields["times"]),
    )


@asynccontextmanager
async def running_bot(data_dir: Path) -> AsyncIterator[RunningBot | None]:
    """The bot running on ``data_dir``, if one answers on the address it wrote; else None."""
    address = read_address(data_dir)
    if address is None:
        yield None
        return
    # No overall timeout: a load takes as long as it takes, and streams while it does. A
    # report line lists every file of a folder: more than aiohttp's 64 KiB line default.
    async with aiohttp.ClientSession(read_bufsize=1 << 22) as session:
        bot = RunningBot(address, session)
        try:
            async with session.get(
                f"{address.url}/ping",
                headers={"Authorization": f"Bearer {address.token}"},
                timeout=aiohttp.ClientTimeout(total=PING_SECONDS),
            ) as response:
                alive = response.status == 200
        except (aiohttp.ClientError, OSError, TimeoutError):
            alive = False  # a file left by a bot that was killed
        yield bot if alive else None
