"""Typed settings: one class per section (:mod:`bot.sections`), read from TOML and overridden
from the environment.

Precedence, highest first: ``ARCHIVIST_<SECTION>_<KEY>`` environment variables, the config
file, the defaults below. The file is ``--config FILE``, else ``$ARCHIVIST_CONFIG``, else
``./config.toml`` when present. Where the config leaves them unset, ``OPENAI_API_KEY`` and
``OPENAI_BASE_URL`` fill the LLM (and OpenAI embedding) endpoint, and ``DISCORD_TOKEN``,
``SLACK_BOT_TOKEN``, ``SLACK_APP_TOKEN`` and ``SLACK_SIGNING_SECRET`` the platform
credentials. This module is the only place in the project that reads configuration or the
environment.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib  # pyright: ignore[reportMissingImports] (3.10 only)

from agent.errors import ArchivistError
from bot.sections import (
    AgentSettings,
    DiscordSettings,
    EmbeddingSettings,
    IngestSettings,
    LlmSettings,
    LoggingSettings,
    MilvusSettings,
    SearchSettings,
    ServerSettings,
    SlackSettings,
    StorageSettings,
)

# The local backend's models, the default first: the same names as
# agent.documents.embed.LOCAL_MODEL_IDS, not imported (onnxruntime and tokenizers would come
# with it into every command; a test keeps the two equal).
LOCAL_MODELS = ("all-MiniLM-L6-v2-q8f", "all-MiniLM-L6-v2-q8", "all-MiniLM-L6-v2")

ENV_PREFIX = "ARCHIVIST_"
DEFAULT_CONFIG_FILE = Path("config.toml")


class ConfigError(Exception):
    """A configuration problem, phrased as one line that names the key."""


class StartupError(ArchivistError):
    """The bot cannot start (no platform configured, its port taken); the message says why
    and what to do."""


class Settings(BaseSettings):
    """All settings, one attribute per config-file section."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="_",
        # ARCHIVIST_STORAGE_DATA_DIR -> storage.data_dir: split once, keys keep their underscores.
        env_nested_max_split=1,
        extra="forbid",
    )

    storage: StorageSettings = StorageSettings()
    milvus: MilvusSettings = MilvusSettings()
    embeddings: EmbeddingSettings = EmbeddingSettings()
    ingest: IngestSettings = IngestSettings()
    search: SearchSettings = SearchSettings()
    llm: LlmSettings = LlmSettings()
    agent: AgentSettings = AgentSettings()
    server: ServerSettings = ServerSettings()
    discord: DiscordSettings = DiscordSettings()
    slack: SlackSettings = SlackSettings()
    logging: LoggingSettings = LoggingSettings()

    @model_validator(mode="after")
    def _queue_needs_postgres(self) -> Settings:
        if self.ingest.queue and self.storage.database_url is None:
            raise ValueError(
                "ingest.queue needs the state in PostgreSQL ([storage] database_url), where"
                " the jobs are kept for the workers"
            )
        return self

    def embedding_model(self, in_use: Collection[str] = ()) -> str:
        """The embedding model to run: ``[embeddings] model``, else (local backend) one that
        ``in_use``, the models the state file's sources were embedded with, has, so that an
        installation keeps searching what it loaded, else the fastest, the int8 one with fused
        attention, ~2.2x as fast to embed as fp32 with the same hybrid recall (docs/benchmarks.md,
        "Embeddings: int8" and "Embeddings: fused attention")."""
        if self.embeddings.model is not None:
            return self.embeddings.model
        return next((m for m in LOCAL_MODELS if m in in_use), LOCAL_MODELS[0])

    @property
    def model_cache_dir(self) -> Path:
        """Where converted model files are cached: ``[embeddings] cache_dir``, else once per
        user (``$XDG_CACHE_HOME/archivist/models``, ``~/.cache/archivist/models``) rather
        than once per data folder: the folded model is 87 MB and the same for every folder."""
        if self.embeddings.cache_dir is not None:
            return self.embeddings.cache_dir
        cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(cache_home) / "archivist" / "models"

    @property
    def milvus_uri(self) -> str:
        """The effective Milvus URI: the configured one or ``<data_dir>/milvus.db``."""
        return self.milvus.uri or str(self.storage.data_dir / "milvus.db")

    def secrets(self) -> list[str]:
        """Every secret value in these settings, for log redaction."""
        values = [
            self.milvus.token,
            self.embeddings.api_key,
            self.llm.api_key,
            self.discord.token,
            self.slack.bot_token,
            self.slack.app_token,
            self.slack.signing_secret,
        ]
        found = [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]
        if self.storage.database_url is not None:
            # The whole URL, and its password alone (libraries log URLs in pieces too).
            url = self.storage.database_url.get_secret_value()
            found += [url, *filter(None, [urlsplit(url).password])]
        return found


def resolve_config_file(explicit: Path | None, environ: Mapping[str, str]) -> Path | None:
    """Pick the config file: ``--config``, then ``$ARCHIVIST_CONFIG``, then ``./config.toml``."""
    if explicit is not None:
        return explicit
    from_env = environ.get("ARCHIVIST_CONFIG")
    if from_env:
        return Path(from_env)
    return DEFAULT_CONFIG_FILE if DEFAULT_CONFIG_FILE.is_file() else None


def load_settings(config_file: Path | None = None) -> Settings:
    """Read settings from ``config_file`` (resolved as documented) and the environment.

    Raises :class:`ConfigError` with one line naming the offending key.
    """
    path = resolve_config_file(config_file, os.environ)
    if path is not None and not path.is_file():
        raise ConfigError(f"config error: {path}: no such file")

    class _FromFile(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
            if path is not None:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
            return tuple(sources)

    try:
        settings: Settings = _FromFile()
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config error: {path}: not valid TOML ({exc})") from None
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    if settings.embeddings.backend == "openai" and settings.embeddings.model is None:
        raise ConfigError(
            "config error: embeddings.model: name the endpoint's embedding model when backend"
            " is openai ([embeddings] model or ARCHIVIST_EMBEDDINGS_MODEL)"
        )
    return _with_platform_environment(_with_openai_environment(settings, os.environ), os.environ)


# Each platform's own variable names, as its documentation and examples use them.
_PLATFORM_VARIABLES = {
    ("discord", "token"): "DISCORD_TOKEN",
    ("slack", "bot_token"): "SLACK_BOT_TOKEN",
    ("slack", "app_token"): "SLACK_APP_TOKEN",
    ("slack", "signing_secret"): "SLACK_SIGNING_SECRET",
}


def _with_platform_environment(settings: Settings, environ: Mapping[str, str]) -> Settings:
    """Fill unset platform credentials from the platforms' conventional variables."""
    updates: dict[str, dict[str, SecretStr]] = {}
    for (section, key), variable in _PLATFORM_VARIABLES.items():
        value = environ.get(variable)
        if value and getattr(getattr(settings, section), key) is None:
            updates.setdefault(section, {})[key] = SecretStr(value)
    return settings.model_copy(
        update={
            section: getattr(settings, section).model_copy(update=values)
            for section, values in updates.items()
        }
    )


def _with_openai_environment(settings: Settings, environ: Mapping[str, str]) -> Settings:
    """Fill unset LLM/embedding endpoints from the OpenAI client's own variables."""
    key = environ.get("OPENAI_API_KEY")
    base = environ.get("OPENAI_BASE_URL")
    llm_update: dict[str, Any] = {}
    emb_update: dict[str, Any] = {}
    if key and settings.llm.api_key is None:
        llm_update["api_key"] = SecretStr(key)
    if base and settings.llm.base_url is None:
        llm_update["base_url"] = base
    if settings.embeddings.backend == "openai":
        if key and settings.embeddings.api_key is None:
            emb_update["api_key"] = SecretStr(key)
        if base and settings.embeddings.base_url is None:
            emb_update["base_url"] = base
    return settings.model_copy(
        update={
            "llm": settings.llm.model_copy(update=llm_update),
            "embeddings": settings.embeddings.model_copy(update=emb_update),
        }
    )


def _describe(exc: ValidationError, path: Path | None) -> str:
    """One line for the first error: the dotted key, where to set it, what was expected.

    The offending value is never echoed: it may be a secret.
    """
    error = exc.errors(include_input=False, include_url=False)[0]
    loc = [str(part) for part in error["loc"]]
    key = ".".join(loc)
    env_name = ENV_PREFIX + "_".join(loc).upper()
    where = f"{path} or {env_name}" if path is not None else env_name
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        message = "unknown key (check the spelling against config.example.toml)"
    return f"config error: {key}: {message} (set in {where})"
