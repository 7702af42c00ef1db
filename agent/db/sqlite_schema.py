"""The SQLite state file's schema, as numbered migrations.

Migrations are applied in order at start-up, each in one transaction, and the schema version
is kept in ``PRAGMA user_version``. Append new migrations; never edit old ones. A change here
needs its counterpart in :mod:`agent.db.postgres_schema`.
"""

from __future__ import annotations

MIGRATIONS: tuple[str, ...] = (
    # 1: sources, their files, agent attachments, and passages awaiting deletion in Milvus.
    # AUTOINCREMENT: ids are never reused, so passages whose deletion is still pending can
    # never be mistaken for a newer source's.
    """
    CREATE TABLE sources (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        scope           TEXT NOT NULL,
        name            TEXT NOT NULL,
        status          TEXT NOT NULL CHECK (status IN ('loading', 'ready', 'failed')),
        error           TEXT,
        embedding_model TEXT NOT NULL,
        embedding_dim   INTEGER NOT NULL,
        created_by      TEXT NOT NULL,
        created_at      TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        UNIQUE (scope, name)
    );
    CREATE TABLE source_files (
        id        INTEGER PRIMARY KEY AUTOINCREMENT,
        source_id INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
        name      TEXT NOT NULL,
        sha256    TEXT NOT NULL,
        size      INTEGER NOT NULL,
        pages     INTEGER NOT NULL DEFAULT 0,
        passages  INTEGER NOT NULL DEFAULT 0,
        status    TEXT NOT NULL CHECK (status IN ('loading', 'ready', 'failed')),
        error     TEXT,
        origin    TEXT,
        loaded_by TEXT NOT NULL,
        loaded_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        -- host:pid of the loading process and its last sign of life, to tell a load that
        -- is still running elsewhere from one whose process died.
        owner     TEXT,
        heartbeat REAL
    );
    CREATE UNIQUE INDEX source_files_ready_hash
        ON source_files (source_id, sha256) WHERE status != 'failed';
    CREATE INDEX source_files_status ON source_files (status);
    CREATE TABLE attachments (
        agent_key   TEXT NOT NULL,
        source_id   INTEGER NOT NULL REFERENCES sources(id) ON DELETE CASCADE,
        attached_by TEXT NOT NULL,
        attached_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        PRIMARY KEY (agent_key, source_id)
    );
    CREATE INDEX attachments_source ON attachments (source_id);
    CREATE TABLE archive_cleanup (
        id        INTEGER PRIMARY KEY,
        source_id INTEGER NOT NULL,
        file_id   INTEGER,
        reason    TEXT NOT NULL,
        queued_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    """,
    # 2: passage text with a full-text index, for keyword (BM25) search beside Milvus.
    # id is the passage's Milvus primary key; rows are hidden and removed the same way as
    # passages in Milvus (by the scope filter, then by the cleanup queue).
    """
    CREATE TABLE passages (
        id        INTEGER PRIMARY KEY,
        source_id INTEGER NOT NULL,
        file_id   INTEGER NOT NULL,
        document  TEXT NOT NULL,
        page      INTEGER NOT NULL,
        last_page INTEGER NOT NULL,
        chunk     INTEGER NOT NULL,
        text      TEXT NOT NULL
    );
    CREATE INDEX passages_source ON passages (source_id);
    CREATE INDEX passages_file ON passages (file_id);
    CREATE VIRTUAL TABLE passages_fts USING fts5(
        text, content = 'passages', content_rowid = 'id',
        tokenize = 'unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER passages_insert AFTER INSERT ON passages BEGIN
        INSERT INTO passages_fts (rowid, text) VALUES (new.id, new.text);
    END;
    CREATE TRIGGER passages_delete AFTER DELETE ON passages BEGIN
        INSERT INTO passages_fts (passages_fts, rowid, text) VALUES ('delete', old.id, old.text);
    END;
    """,
    # 3: facts about this installation, such as the id that names its Milvus collections.
    """
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 4: one agent per conversation key: its core memory blocks, and every message it has
    # seen or sent (recall memory). Evicted messages keep their rows with in_context = 0, so
    # the whole conversation stays searchable; FTS5 indexes message text for that search.
    """
    CREATE TABLE agents (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        key          TEXT NOT NULL UNIQUE,
        persona_name TEXT,
        human_name   TEXT,
        summary      TEXT NOT NULL DEFAULT '',
        created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
        updated_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    -- initial is the text the block was created with: what a full reset restores.
    CREATE TABLE memory_blocks (
        agent_id   INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
        label      TEXT NOT NULL CHECK (label IN ('persona', 'human')),
        value      TEXT NOT NULL,
        initial    TEXT NOT NULL,
        char_limit INTEGER NOT NULL CHECK (char_limit > 0),
        PRIMARY KEY (agent_id, label),
        CHECK (length(value) <= char_limit)
    );
    CREATE TABLE messages (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        agent_id     INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
        role         TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
        speaker_id   TEXT,
        speaker_name TEXT,
        content      TEXT,
        tool_calls   TEXT,
        tool_call_id TEXT,
        name         TEXT,
        in_context   INTEGER NOT NULL DEFAULT 1 CHECK (in_context IN (0, 1)),
        created_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    );
    CREATE INDEX messages_agent ON messages (agent_id, id);
    CREATE INDEX messages_agent_time ON messages (agent_id, created_at);
    -- The prompt is rebuilt from in-context rows every step; long conversations are mostly
    -- evicted rows, which this index skips.
    CREATE INDEX messages_in_context ON messages (agent_id, id) WHERE in_context = 1;
    CREATE VIRTUAL TABLE messages_fts USING fts5(
        content, content = 'messages', content_rowid = 'id',
        tokenize = 'unicode61 remove_diacritics 2'
    );
    CREATE TRIGGER messages_insert AFTER INSERT ON messages BEGIN
        INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
    END;
    CREATE TRIGGER messages_delete AFTER DELETE ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content)
            VALUES ('delete', old.id, old.content);
    END;
    -- OF content: eviction (in_context) updates must not rewrite the index.
    CREATE TRIGGER messages_update AFTER UPDATE OF content ON messages BEGIN
        INSERT INTO messages_fts (messages_fts, rowid, content)
            VALUES ('delete', old.id, old.content);
        INSERT INTO messages_fts (rowid, content) VALUES (new.id, new.content);
    END;
    """,
    # 5: platform events already handled (Slack event ids, mentions, shared files), so an
    # event re-delivered after a restart is not answered twice.
    """
    CREATE TABLE deliveries (
        key TEXT PRIMARY KEY,
        seen_at REAL NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX deliveries_seen ON deliveries (seen_at);
    """,
    # 6: an agent's notes source (scope 'agent:<key>', name 'notes') is attached to its agent
    # like any source, instead of being found by its name.
    """
    INSERT OR IGNORE INTO attachments (agent_key, source_id, attached_by)
        SELECT substr(scope, 7), id, substr(scope, 7) FROM sources
        WHERE scope LIKE 'agent:%' AND name = 'notes';
    """,
    # 7: citation handles per agent, so a handle names one passage for the whole conversation.
    """
    CREATE TABLE citations (
        agent_id   INTEGER NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
        handle     INTEGER NOT NULL,
        passage_id INTEGER NOT NULL,
        document   TEXT NOT NULL,
        page       INTEGER NOT NULL,
        last_page  INTEGER NOT NULL,
        source     TEXT NOT NULL,
        origin     TEXT,
        PRIMARY KEY (agent_id, handle),
        UNIQUE (agent_id, passage_id)
    );
    """,
)
