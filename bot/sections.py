"""The config file's sections, one model each: their keys, defaults and checks.

:mod:`bot.config` assembles them into :class:`~bot.config.Settings` and reads the file and
the environment; nothing here reads either.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


class _Section(BaseModel):
    # Unknown keys are typos more often than not: refuse them instead of ignoring them.
    model_config = ConfigDict(extra="forbid", validate_default=True)


class StorageSettings(_Section):
    """Where state lives: ``archivist.db`` (SQLite) and, by default, ``milvus.db`` in
    ``data_dir``; or a PostgreSQL database shared by several bot processes."""

    data_dir: Path = Path("data")
    # A secret: the URL may carry a password. Unset: the SQLite file in data_dir.
    database_url: SecretStr | None = None

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None and not url.get_secret_value().startswith(
            ("postgresql://", "postgres://")
        ):
            raise ValueError(
                "must be a PostgreSQL URL (postgresql://user:password@host:port/database);"
                " leave it unset for the SQLite file in data_dir"
            )
        return url

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file holding sources, attachments, agents and their memory."""
        return self.data_dir / "archivist.db"

    @property
    def state_location(self) -> str | Path:
        """Where sources, attachments, agents and their memory live: the PostgreSQL URL if one
        is set, else the SQLite file."""
        return self.database_url.get_secret_value() if self.database_url else self.sqlite_path


class MilvusSettings(_Section):
    """The archival store: a Milvus Lite file (default) or a Milvus server."""

    uri: str = ""
    token: SecretStr | None = None
    db_name: str = ""
    collection_prefix: str = Field(default="archivist", pattern=r"^[A-Za-z][A-Za-z0-9_]{0,39}$")
    timeout: float = Field(default=10.0, gt=0)

    @field_validator("uri")
    @classmethod
    def _uri_shape(cls, value: str) -> str:
        value = value.strip()
        if value and not value.startswith(("http://", "https://")) and not value.endswith(".db"):
            raise ValueError(
                "expected a Milvus Lite file ending in .db or a server URL such as "
                "http://host:19530"
            )
        return value


class EmbeddingSettings(_Section):
    """How passages and queries become vectors."""

    backend: Literal["local", "openai"] = "local"
    model: str | None = None
    """None: for the local backend, the model the state file's sources were embedded with,
    else the fastest (see :meth:`Settings.embedding_model`)."""
    base_url: str | None = None
    api_key: SecretStr | None = None
    batch_size: int = Field(default=32, ge=1, le=1024)
    max_concurrency: int | None = Field(default=None, ge=1, le=16)
    """Batches embedded at once; None: one request for a remote backend, and for the local
    one a batch per core (at most 4)."""
    threads: int = Field(default=0, ge=0, le=256)
    """onnxruntime threads per local batch; 0: the cores shared among the batches."""
    cache_dir: Path | None = None

    def parallelism(self, cores: int) -> tuple[int, int]:
        """(batches at once, threads per batch) on ``cores`` cores. Locally, batches side by
        side on a thread each beat one batch on every core: a passage batch is small, and
        onnxruntime's threads spend much of it waiting on each other (2 cores: loads 1.2-1.3x
        faster, docs/benchmarks.md "Ingest: batches side by side")."""
        if self.backend != "local":
            return self.max_concurrency or 1, self.threads
        concurrency = self.max_concurrency or max(1, min(cores, 4))
        return concurrency, self.threads or max(1, cores // concurrency)


class IngestSettings(_Section):
    """Limits and passage sizing for loading documents."""

    max_file_mb: float = Field(default=100.0, gt=0)
    max_pages: int = Field(default=5000, ge=1)
    max_decompressed_mb: float = Field(default=64.0, gt=0)
    max_page_chars: int = Field(default=100_000, ge=1000)
    max_file_passages: int = Field(default=50_000, ge=1, le=1 << 24)
    overlap_tokens: int = Field(default=32, ge=0, le=128)
    pages_per_task: int = Field(default=16, ge=1, le=1000)
    parse_timeout: float = Field(default=120.0, gt=0)
    allow_private_urls: bool = False
    allowed_url_hosts: list[str] = Field(default_factory=list)
    # With the state in PostgreSQL: loads are queued as jobs that `archivist worker` processes
    # run, so embedding never competes with answering. False: each process loads what it is
    # asked, as with SQLite.
    queue: bool = False
    # A job whose worker has not beaten for this long is taken over by another (it beats
    # six times in this span).
    job_stale_seconds: float = Field(default=60.0, ge=1.0, le=3600.0)


class SearchSettings(_Section):
    """Defaults for archive searches."""

    top_k: int = Field(default=5, ge=1, le=100)
    mode: Literal["hybrid", "dense", "keyword"] = "hybrid"


class LlmSettings(_Section):
    """The OpenAI-compatible chat endpoint used by the agent."""

    base_url: str | None = None
    model: str = "gpt-4o-mini"
    api_key: SecretStr | None = None
    timeout: float = Field(default=300.0, gt=0)
    connect_timeout: float = Field(default=10.0, gt=0)
    max_retries: int = Field(default=2, ge=0, le=10)
    context_window: int = Field(default=8192, ge=1024)
    max_tokens: int = Field(default=1024, ge=16)
    summary_max_tokens: int = Field(default=512, ge=64)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, gt=0, le=1)


class AgentSettings(_Section):
    """How each conversation's agent is made and how far a turn may go."""

    persona: str = "memgpt_doc"
    human: str = "basic"
    personas_dir: Path | None = None
    char_limit: int = Field(default=2000, ge=100, le=100_000)
    max_steps: int = Field(default=10, ge=1, le=50)
    show_thoughts: bool = False
    search_first: bool = False


class ServerSettings(_Section):
    """The HTTP endpoint of ``archivist run``: ``/healthz`` and ``/metrics``."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    shutdown_grace: float = Field(default=10.0, ge=0, le=600)
    # The ``replica`` label on every /metrics series; unset: <hostname>-<pid> (in Kubernetes the
    # hostname is the pod's name).
    replica: str | None = None


class DiscordSettings(_Section):
    """The Discord adapter; it runs when a token is set (``DISCORD_TOKEN`` works too)."""

    token: SecretStr | None = None
    api_base_url: str | None = None
    gateway_url: str | None = None
    dev_guild_id: int | None = None
    reply_in_thread: bool = False
    ingest_uploads: Literal["always", "mention", "off"] = "always"
    manager_roles: list[str] = Field(default_factory=list)
    respond_to_bots: bool = False
    # Several processes share the guilds: each runs shard_ids of shard_count shards, so that
    # every guild is served by exactly one process. Unset: one process, Discord's advice.
    shard_count: int | None = Field(default=None, ge=1)
    shard_ids: list[int] = Field(default_factory=list)

    @model_validator(mode="after")
    def _shards_within_count(self) -> DiscordSettings:
        if self.shard_ids and self.shard_count is None:
            raise ValueError("shard_ids needs shard_count (the total across every process)")
        if any(not 0 <= i < (self.shard_count or 0) for i in self.shard_ids):
            raise ValueError(f"shard_ids must be from 0 to shard_count - 1 ({self.shard_count})")
        return self

    @field_validator("api_base_url", "gateway_url")
    @classmethod
    def _url_shape(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://", "ws://", "wss://")):
            raise ValueError("expected a URL such as https://proxy.example/api/v10")
        return value or None


class SlackSettings(_Section):
    """The Slack adapter; it runs when a bot token and an app token or signing secret are set.

    ``SLACK_BOT_TOKEN``, ``SLACK_APP_TOKEN`` and ``SLACK_SIGNING_SECRET`` work too.
    """

    bot_token: SecretStr | None = None
    app_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    api_base_url: str | None = None
    http_host: str = "0.0.0.0"  # noqa: S104 (Slack must reach it)
    http_port: int = Field(default=3000, ge=0, le=65535)
    http_path: str = Field(default="/slack/events", pattern=r"^/")
    managers: Literal["admins", "everyone"] = "admins"
    manager_user_ids: list[str] = Field(default_factory=list)
    ingest_uploads: Literal["always", "mention", "off"] = "always"

    @field_validator("api_base_url")
    @classmethod
    def _api_shape(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("expected a URL such as https://slack.com/api/")
        return value or None


class LoggingSettings(_Section):
    """Log verbosity."""

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
