"""The search bench's collection designs: the app's fields, on both backends, scoped results."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import numpy as np
import pytest
from pymilvus import MilvusClient

from agent.documents.archive import MilvusArchive
from agent.documents.collection import collection_schema
from agent.values import Scope
from bench.search import DIM, VARIANTS, Dataset, VariantArchive, _normalise, passages_of

ROWS_PER_SOURCE = 20
SOURCES = 3


def dataset() -> Dataset:
    """Random unit vectors in three sources of 20 rows (files ``source * 100 + row % 3``)."""
    n = ROWS_PER_SOURCE * SOURCES
    vectors = _normalise(np.random.default_rng(1).normal(size=(n, DIM)))
    sources = np.repeat(np.arange(1, SOURCES + 1, dtype=np.int64), ROWS_PER_SOURCE)
    return Dataset(vectors, sources, np.zeros(n, dtype=np.int64), ["text"], [], vectors[:1])


# Every design on Lite; on a server the designs whose schema or index differs there.
CASES = [("lite", v) for v in VARIANTS] + [("server", "index"), ("server", "partition_key")]


def partition_key_flags(client: MilvusClient, collection: str) -> dict[str, bool]:
    """The collection's fields in order, each with whether it is the partition key."""
    info = client.describe_collection(collection)
    # pymilvus is untyped: pyright guesses a coroutine from its retry decorator.
    fields = info["fields"]  # pyright: ignore[reportIndexIssue]
    return {f["name"]: bool(f.get("is_partition_key")) for f in fields}


@pytest.mark.parametrize(("backend", "variant"), CASES)
async def test_every_design_keeps_the_apps_fields_and_searches_within_the_scope(
    variant: str,
    backend: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = backend == "server"
    uri = request.getfixturevalue("milvus_server_uri") if server else str(tmp_path / "m.db")
    monkeypatch.setattr(VariantArchive, "variant", variant)
    monkeypatch.setattr(VariantArchive, "server", server)
    kind = MilvusArchive if variant == "app" else VariantArchive
    collection = f"bench_{variant}_{uuid.uuid4().hex[:8]}"
    archive = await kind.connect(uri, collection=collection, dim=DIM, timeout=60.0)
    data = dataset()
    try:
        passages = passages_of(data, 0, len(data.vectors))
        await archive.insert(passages, data.vectors)
        for file_id in {p.file_id for p in passages}:
            expected = sum(p.file_id == file_id for p in passages)
            await archive.wait_visible(file_id, expected)

        hits = await archive.search(data.vectors[5], Scope((1, 2), (100,)), limit=5)

        # A partition key gives wrong results with upserts on the 2.3.5 server (measured in
        # docs/benchmarks.md, Search): what it finds is not asserted there.
        if not (server and variant == "partition_key"):
            assert hits[0].id == 5
        assert {h.source_id for h in hits} <= {1, 2}
        assert 100 not in {h.file_id for h in hits}
        fields = await asyncio.to_thread(partition_key_flags, archive._client, collection)
        assert list(fields) == [f.name for f in collection_schema(archive._client, DIM).fields]
        assert fields["source_id"] == (variant == "partition_key")
    finally:
        await asyncio.to_thread(archive._client.drop_collection, collection)
        await archive.close()
