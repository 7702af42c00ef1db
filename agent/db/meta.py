"""Facts about this installation kept in its state database."""

from __future__ import annotations

import secrets

from agent.db.protocol import Database


async def instance_id(db: Database) -> str:
    """A random id made once per state database.

    Milvus collections are named with it, so two installations sharing one Milvus server never
    mix passages, whose ids are only unique within one state database.
    """
    await db.write(
        "INSERT INTO meta (key, value) VALUES ('instance_id', ?) ON CONFLICT DO NOTHING",
        (secrets.token_hex(4),),
    )
    row = await db.fetchone("SELECT value FROM meta WHERE key = 'instance_id'")
    assert row is not None
    return str(row[0])
