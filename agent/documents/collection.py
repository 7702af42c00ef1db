"""What a passage collection is in Milvus: its fields and index, its rows, its filters.

One design for Milvus Lite and a server (``agent.documents.archive`` runs it); the search
benchmark builds its variants on the same functions. Filters are built here and only from
integers: names never reach Milvus, they are resolved to ids in SQLite first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pymilvus import CollectionSchema, DataType, MilvusClient
from pymilvus.milvus_client import IndexParams

from agent.values import Hit, Passage, Scope

# VARCHAR lengths are bytes (at most 65,535): 4 bytes per character covers any UTF-8 text.
MAX_TEXT_CHARS = 16_000
MAX_DOCUMENT_CHARS = 512
OUTPUT_FIELDS = ("source_id", "file_id", "document", "page", "last_page", "chunk", "text")
# Collections made by earlier versions also have these fields (never read): their rows get blanks.
LEGACY_FIELDS: dict[str, Any] = {"scope": "", "agent_id": 0}


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


def partition_name(source_id: int) -> str:
    """The Milvus Lite partition of a source."""
    return f"s{int(source_id)}"


def excluded_filter(scope: Scope) -> str:
    """Within the scope's own partitions only excluded files need filtering out."""
    if not scope.excluded_file_ids:
        return ""
    return f"file_id not in [{', '.join(str(int(i)) for i in scope.excluded_file_ids)}]"


def passage_row(passage: Passage, vector: Iterable[float]) -> dict[str, Any]:
    """A passage and its vector as a row of :func:`collection_schema`."""
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


def hit_of(item: dict[str, Any]) -> Hit:
    """A search result row as a :class:`Hit`."""
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
