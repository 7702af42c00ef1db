"""The session Milvus server fixture gives a working server: create, insert, search, drop."""

from __future__ import annotations

import uuid

from pymilvus import DataType, MilvusClient


def test_milvus_server_round_trip(milvus_server_uri: str) -> None:
    assert milvus_server_uri.startswith("http://")
    client = MilvusClient(milvus_server_uri, timeout=30)
    name = f"fixture_{uuid.uuid4().hex[:8]}"
    try:
        schema = client.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("source_id", DataType.INT64, is_partition_key=True)
        schema.add_field("text", DataType.VARCHAR, max_length=200)
        schema.add_field("vec", DataType.FLOAT_VECTOR, dim=4)
        index = client.prepare_index_params()
        # Milvus 2.3 has no HNSW defaults (Lite does): M and efConstruction are required.
        index.add_index(
            "vec", index_type="HNSW", metric_type="COSINE", params={"M": 16, "efConstruction": 64}
        )
        # Strong: the server's default (Bounded) may not see rows inserted a moment ago.
        client.create_collection(
            name, schema=schema, index_params=index, consistency_level="Strong"
        )
        rows = [
            {
                "id": i,
                "source_id": i % 3,
                "text": f"row {i}",
                "vec": [1.0, float(i), 0.5, -float(i)],
            }
            for i in range(30)
        ]
        assert client.insert(name, rows)["insert_count"] == 30

        hits = client.search(
            name,
            [[1.0, 7.0, 0.5, -7.0]],
            limit=3,
            filter="source_id in [1]",
            output_fields=["source_id", "text"],
        )[0]
        assert len(hits) == 3
        assert hits[0]["id"] == 7
        assert all(h["entity"]["source_id"] == 1 for h in hits)

        counted = client.query(name, filter="source_id == 1", output_fields=["count(*)"])
        assert counted[0]["count(*)"] == 10
    finally:
        client.drop_collection(name)
        assert name not in client.list_collections()
        client.close()
