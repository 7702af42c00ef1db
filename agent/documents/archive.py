"""Archival memory in Milvus: one collection per embedding model and dimension.

The same code serves Milvus Lite (a local ``.db`` path, run inside this process) and a Milvus
server (``http://host:19530``). Filter expressions are built here and only from integers: names
never reach Milvus, they are resolved to ids in SQLite first.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, cast

import numpy as np
import numpy.typing as npt
from pymilvus import CollectionSchema, DataType, MilvusClient, MilvusException
from pymilvus.milvus_client import IndexParams

from agent.errors import ArchiveUnavailable, shown_url
from agent.values import Hit, Passage, Scope

log = logging.getLogger(__name__)

# VARCHAR lengths are bytes (at most 65,535): 4 bytes per character covers any UTF-8 text.
MAX_TEXT_CHARS = 16_000
MAX_DOCUMENT_CHARS = 512
# Milvus refuses limit + offset above this; deeper pages are not served.
MAX_WINDOW = 16_384
_INSERT_BATCH = 512
_VISIBILITY_POLL = 0.25
_PING_TIMEOUT = 5.0
_OUTPUT_FIELDS = ("source_id", "file_id", "document", "page", "last_page", "chunk", "text")
# Collections made by earlier versions also have these fields (never read): their rows get blanks.
_LEGACY_FIELDS: dict[str, Any] = {"scope": "", "agent_id": 0}
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


def collection_name(prefix: str, instance: str, model_id: str, dim: int) -> str:
    """A valid Milvus collection name for this installation, embedding model and dimension."""
    slug = re.sub(r"[^A-Za-z0-9]+", "_", model_id).strip("_").lower()[:64]
    return f"{prefix}_{instance}_{slug}_{int(dim)}"


def is_server_uri(uri: str) -> bool:
    """True for a Milvus server URL, False for a Milvus Lite file."""
    return uri.startswith(("http://", "https://"))


def scope_filter(scope: Scope) -> str:
    """The Milvus boolean expression for a scope, built from integers only."""
    sources = ", ".join(str(int(i)) for i in scope.source_ids)
    expr = f"source_id in [{sources}]"
    if scope.excluded_file_ids:
        files = ", ".join(str(int(i)) for i in scope.excluded_file_ids)
        expr += f" and file_id not in [{files}]"
    return expr


def collection_schema(client: MilvusClient, dim: int) -> CollectionSchema:
    """The fields of a passage collection, as every backend stores them."""
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("source_id", DataType.INT64)
    schema.add_field("file_id", DataType.INT64)
    schema.add_field("document", DataType.VARCHAR, max_length=MAX_DOCUMENT_CHARS * 4)
    schema.add_field("page", DataType.INT64)
    schema.add_field("last_page", DataType.INT64)
    schema.add_field("chunk", DataType.INT64)
    schema.add_field("text", DataType.VARCHAR, max_length=MAX_TEXT_CHARS * 4)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    return schema


def index_params(client: MilvusClient) -> IndexParams:
    """The vector index: HNSW on both backends (Milvus Lite 3.x builds it with FAISS)."""
    index = client.prepare_index_params()
    index.add_index(
        field_name="vector",
        index_type="HNSW",
        metric_type="COSINE",
        params={"M": 16, "efConstruction": 200},
    )
    return index


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
            self._legacy = {k: v for k, v in _LEGACY_FIELDS.items() if k in present}
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
                _row(p, v) | self._legacy
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
        name = _partition_name(source_id)
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
            names = [_partition_name(i) for i in scope.source_ids]
            names = [n for n in names if n in self._partitions]
            if not names:
                return []
            where = {"partition_names": names, "filter": _excluded_filter(scope)}
        results = await self._call(
            self._client.search,
            self._collection,
            data=[vector.astype(np.float32).tolist()],
            **where,
            limit=limit,
            offset=offset,
            output_fields=list(_OUTPUT_FIELDS),
            search_params={"metric_type": "COSINE", "params": {"ef": max(64, limit + offset)}},
            # Bounded is fast (Strong waits for the server's time tick, ~200 ms); loads only
            # turn ready once their rows are visible at this level (wait_visible).
            consistency_level="Bounded",
        )
        return [_hit(item) for item in results[0]]

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
        """Ask whether our collection exists: a round trip that touches no data."""
        exists = await self._call(
            self._client.has_collection, self._collection, timeout=_PING_TIMEOUT
        )
        if not exists:
            raise ArchiveUnavailable(
                f"Milvus at {shown_url(self._uri)} no longer has the collection"
                f" {self._collection}: was it dropped? Restart the bot to recreate it."
            )

    async def close(self) -> None:
        """Close the client; for Milvus Lite this also releases the file lock."""
        await asyncio.to_thread(self._client.close)

    async def _call(self, method: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(method, *args, **kwargs)
        except MilvusException as exc:
            raise _unavailable(self._uri, exc) from exc


def _partition_name(source_id: int) -> str:
    return f"s{int(source_id)}"


def _excluded_filter(scope: Scope) -> str:
    """Within the scope's own partitions only excluded files need filtering out."""
    if not scope.excluded_file_ids:
        return ""
    return f"file_id not in [{', '.join(str(int(i)) for i in scope.excluded_file_ids)}]"


def _row(passage: Passage, vector: Iterable[float]) -> dict[str, Any]:
    return {
        "id": int(passage.id),
        "source_id": int(passage.source_id),
        "file_id": int(passage.file_id),
        "document": passage.document[:MAX_DOCUMENT_CHARS],
        "page": int(passage.page),
        "last_page": int(passage.last_page),
        "chunk": int(passage.chunk),
        "text": passage.text[:MAX_TEXT_CHARS],
        "vector": [float(x) for x in vector],
    }


def _hit(item: dict[str, Any]) -> Hit:
    entity = item.get("entity", item)
    return Hit(
        id=int(item["id"]),
        source_id=int(entity["source_id"]),
        file_id=int(entity["file_id"]),
        document=str(entity["document"]),
        page=int(entity["page"]),
        last_page=int(entity["last_page"]),
        chunk=int(entity["chunk"]),
        text=str(entity["text"]),
        score=float(item["distance"]),
    )


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
