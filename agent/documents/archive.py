"""Archival memory in Milvus: one collection per embedding model and dimension.

The same code serves Milvus Lite (a local ``.db`` path, run inside this process) and a Milvus
server (``http://host:19530``). Filter expressions are built here and only from integers: names
never reach Milvus, they are resolved to ids in SQLite first.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import numpy.typing as npt
from pymilvus import MilvusClient, MilvusException

from agent.documents.collection import (
    LEGACY_FIELDS,
    OUTPUT_FIELDS,
    collection_schema,
    excluded_filter,
    hit_of,
    index_params,
    is_server_uri,
    partition_name,
    passage_row,
    scope_filter,
)
from agent.errors import ArchiveUnavailable, shown_url
from agent.values import Hit, Passage, Scope

log = logging.getLogger(__name__)

# Milvus refuses limit + offset above this; deeper pages are not served.
MAX_WINDOW = 16_384
_INSERT_BATCH = 512
_VISIBILITY_POLL = 0.25
_PING_TIMEOUT = 5.0
# HNSW's search breadth: at 100k rows on the server 64 gave recall@5 0.953, 128 gives 0.974 for
# 1-2 ms more (docs/benchmarks.md "Search").
_EF = 128
# What a failure while serving says: it may reach a channel, so it names no address.
UNAVAILABLE = "The document archive (Milvus) failed or cannot be reached: try again in a moment."


class Archive(Protocol):
    """The archival store as the rest of the core sees it."""

    async def insert(self, passages: Sequence[Passage], vectors: npt.NDArray[np.float32]) -> None:
        """Store passages with their vectors (same order); re-inserting an id replaces it."""

    async def search(
        self, vector: npt.NDArray[np.float32], scope: Scope, *, limit: int, offset: int = 0
    ) -> list[Hit]:
        """The best matches for ``vector`` within ``scope``, best first."""
        ...

    async def count(self, scope: Scope) -> int:
        """How many passages ``scope`` covers."""
        ...

    async def wait_visible(self, file_id: int, expected: int, timeout: float = 60.0) -> None:
        """Return once a file's ``expected`` passages are visible to every reader."""

    async def delete_source(self, source_id: int) -> None:
        """Remove every passage of a source."""

    async def delete_file(self, file_id: int) -> None:
        """Remove every passage of one file."""

    async def ping(self) -> None:
        """Prove the store answers; raises :class:`ArchiveUnavailable`."""

    async def close(self) -> None:
        """Release the connection (and stop Milvus Lite's in-process server)."""


class MilvusArchive:
    """:class:`Archive` on pymilvus; blocking client calls run in worker threads.

    On Milvus Lite each source has its own partition and a search reads only the partitions
    of the sources in scope: Lite evaluates a filter row by row in Python, so at 100k
    passages a ``source_id in [...]`` filter costs ~35 ms a search against ~11 ms this way
    (docs/benchmarks.md). A server prunes with its filter alone and its partitions are
    limited (1,024 by default), so there all sources share the default partition.
    """

    def __init__(self, client: MilvusClient, collection: str, dim: int, uri: str) -> None:
        self._client = client
        self._collection = collection
        self._dim = dim
        self._uri = uri
        self._per_source = not is_server_uri(uri)
        # Lite runs in this process only, so what it lists at start stays true.
        self._partitions: set[str] = set()
        self._legacy: dict[str, Any] = {}

    @classmethod
    async def connect(
        cls,
        uri: str,
        *,
        collection: str,
        dim: int,
        token: str | None = None,
        db_name: str = "",
        timeout: float = 10.0,
    ) -> MilvusArchive:
        """Open the store, creating the collection and its index on first use.

        Raises :class:`ArchiveUnavailable` with a sentence naming the URI (never the token).
        """
        if not is_server_uri(uri):
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        try:
            client = await asyncio.to_thread(
                MilvusClient, uri=uri, token=token or "", db_name=db_name, timeout=timeout
            )
        except Exception as exc:
            raise _unavailable(uri, exc, opening=True) from exc
        archive = cls(client, collection, dim, uri)
        try:
            await asyncio.to_thread(archive._ensure_collection)
            if archive._per_source:
                archive._partitions = set(
                    await asyncio.to_thread(client.list_partitions, collection)
                )
        except Exception as exc:
            await archive.close()
            raise _unavailable(uri, exc, opening=True) from exc
        return archive

    def _ensure_collection(self) -> None:
        if self._client.has_collection(self._collection):
            described = cast(dict[str, Any], self._client.describe_collection(self._collection))
            present = {field["name"] for field in described["fields"]}
            self._legacy = {k: v for k, v in LEGACY_FIELDS.items() if k in present}
            # A server keeps collections released after a restart until they are loaded.
            self._client.load_collection(self._collection)
            return
        log.info("creating Milvus collection %s (dim %d)", self._collection, self._dim)
        self._client.create_collection(
            self._collection,
            schema=collection_schema(self._client, self._dim),
            index_params=index_params(self._client),
            consistency_level="Bounded",
        )

    async def insert(self, passages: Sequence[Passage], vectors: npt.NDArray[np.float32]) -> None:
        """Upsert passages in batches; ids are ours, so a retried batch replaces itself."""
        if len(passages) != len(vectors):
            raise ValueError("passages and vectors differ in length")
        for start in range(0, len(passages), _INSERT_BATCH):
            batch = passages[start : start + _INSERT_BATCH]
            rows = [
                passage_row(p, v) | self._legacy
                for p, v in zip(batch, vectors[start : start + _INSERT_BATCH], strict=True)
            ]
            if not self._per_source:
                await self._call(self._client.upsert, self._collection, rows)
                continue
            by_source: dict[int, list[dict[str, Any]]] = {}
            for passage, row in zip(batch, rows, strict=True):
                by_source.setdefault(passage.source_id, []).append(row)
            for source_id, group in by_source.items():
                name = await self._partition(source_id)
                await self._call(self._client.upsert, self._collection, group, partition_name=name)

    async def _partition(self, source_id: int) -> str:
        name = partition_name(source_id)
        if name not in self._partitions:
            await self._call(self._client.create_partition, self._collection, name)
            self._partitions.add(name)
        return name

    async def search(
        self, vector: npt.NDArray[np.float32], scope: Scope, *, limit: int, offset: int = 0
    ) -> list[Hit]:
        """Scoped cosine search; an empty scope returns nothing without asking Milvus."""
        if not scope.source_ids or limit <= 0 or offset >= MAX_WINDOW:
            return []
        limit = min(limit, MAX_WINDOW - offset)
        where: dict[str, Any] = {"filter": scope_filter(scope)}
        if self._per_source:
            names = [partition_name(i) for i in scope.source_ids]
            names = [n for n in names if n in self._partitions]
            if not names:
                return []
            where = {"partition_names": names, "filter": excluded_filter(scope)}
        results = await self._call(
            self._client.search,
            self._collection,
            data=[vector.astype(np.float32).tolist()],
            **where,
            limit=limit,
            offset=offset,
            output_fields=list(OUTPUT_FIELDS),
            search_params={"metric_type": "COSINE", "params": {"ef": max(_EF, limit + offset)}},
            # Bounded is fast (Strong waits for the server's time tick, ~200 ms); loads only
            # turn ready once their rows are visible at this level (wait_visible).
            consistency_level="Bounded",
        )
        return [hit_of(item) for item in results[0]]

    async def count(self, scope: Scope) -> int:
        """Exact number of passages in ``scope``."""
        if not scope.source_ids:
            return 0
        rows = await self._call(
            self._client.query,
            self._collection,
            filter=scope_filter(scope),
            output_fields=["count(*)"],
            consistency_level="Strong",
        )
        return int(rows[0]["count(*)"]) if rows else 0

    async def wait_visible(self, file_id: int, expected: int, timeout: float = 60.0) -> None:
        """Return once all ``expected`` passages of a file are visible to Bounded reads.

        A server applies writes to Bounded reads after a short grace time; waiting here means
        a source turning ready in SQLite is complete for every reader, in any process.
        """
        deadline = time.monotonic() + timeout
        while True:
            rows = await self._call(
                self._client.query,
                self._collection,
                filter=f"file_id == {int(file_id)}",
                output_fields=["count(*)"],
                consistency_level="Bounded",
            )
            if rows and int(rows[0]["count(*)"]) >= expected:
                return
            if time.monotonic() > deadline:
                log.warning(
                    "Milvus at %s: file %d shows %s of %d passages after %.0f s",
                    shown_url(self._uri),
                    file_id,
                    rows[0]["count(*)"] if rows else 0,
                    expected,
                    timeout,
                )
                raise ArchiveUnavailable(
                    f"The document archive (Milvus) did not make the new passages visible within"
                    f" {timeout:.0f} s: check its health, then load the file again."
                )
            await asyncio.sleep(_VISIBILITY_POLL)

    async def delete_source(self, source_id: int) -> None:
        """Delete by source id (Lite returns keys, the server a count: neither is relied on)."""
        await self._call(
            self._client.delete, self._collection, filter=f"source_id == {int(source_id)}"
        )

    async def delete_file(self, file_id: int) -> None:
        """Delete every passage of one file."""
        await self._call(self._client.delete, self._collection, filter=f"file_id == {int(file_id)}")

    async def ping(self) -> None:
        """Search as users do, as cheaply as it gets: one result, no fields.

        Asking whether the collection exists is not enough: after a restart a server has it
        but fails every search ("collection not loaded") until it is loaded again, ~20 s.
        On Lite the empty default partition is searched (passages live in per-source ones).
        """
        partitions = ["_default"] if self._per_source else None
        probe = [1.0] + [0.0] * (self._dim - 1)
        try:
            await asyncio.to_thread(
                self._client.search,
                self._collection,
                data=[probe],
                limit=1,
                output_fields=[],
                partition_names=partitions,
                timeout=_PING_TIMEOUT,
            )
        except MilvusException as exc:
            uri = shown_url(self._uri)
            log.warning("Milvus at %s cannot search %s: %s", uri, self._collection, exc)
            raise ArchiveUnavailable(
                f"Milvus at {uri} cannot search the collection {self._collection}"
                f" ({_short(str(exc))}): a restarted server loads it again within a minute;"
                " if it was dropped, restart the bot to recreate it."
            ) from exc

    async def close(self) -> None:
        """Close the client; for Milvus Lite this also releases the file lock."""
        await asyncio.to_thread(self._client.close)

    async def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(method, *args, **kwargs)
        except MilvusException as exc:
            raise _unavailable(self._uri, exc) from exc


def _unavailable(uri: str, exc: BaseException, *, opening: bool = False) -> ArchiveUnavailable:
    """Turn a pymilvus failure into one sentence; the log line names the URI and the cause.

    The store is opened before anyone can chat, in front of the operator (a CLI command, or
    ``archivist run`` starting): those sentences name the URI or the Lite file, which is what
    the operator has to fix. A failure while serving may reach a channel, whose members are
    given no internal address or path: the operator finds both in the log line (with ``-v`` on
    the CLI). The token is never shown.
    """
    text = str(exc)
    uri = shown_url(uri)
    log.warning("Milvus at %s failed: %s", uri, text)
    if not opening:
        # Not probing the lock here: while serving, this process holds it itself.
        return ArchiveUnavailable(UNAVAILABLE)
    if not is_server_uri(uri) and _lite_is_locked(Path(uri)):
        return ArchiveUnavailable(
            f"The Milvus Lite file {uri} is in use by another process (is `archivist run`"
            " running?): stop it, or point ARCHIVIST_MILVUS_URI at a Milvus server."
        )
    if is_server_uri(uri):
        return ArchiveUnavailable(
            f"Milvus at {uri} is unreachable or failed ({_short(text)}): check that it is"
            " running and the URI and token are right."
        )
    return ArchiveUnavailable(f"Milvus Lite at {uri} failed: {_short(text)}")


def _lite_is_locked(path: Path) -> bool:
    """Whether another process holds Milvus Lite's file (pymilvus only says "open failed").

    Lite takes an exclusive ``flock`` on ``<path>/LOCK`` for as long as a process has it open;
    probe it only after opening failed, as this process may hold it itself.
    """
    lock = path / "LOCK"
    if sys.platform == "win32" or not lock.exists():
        return False
    import fcntl

    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing the descriptor also drops our probe's lock
    return False


def _short(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else "no details"
    return first[:200]
