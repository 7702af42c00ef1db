"""Settings: file, environment, precedence, and errors that name the key."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from agent.documents.embed import LOCAL_MODEL_IDS
from bot.config import LOCAL_MODELS, ConfigError, load_settings
from bot.logs import REDACTED, RedactSecrets

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_put_everything_under_the_data_folder(clean_env: None) -> None:
    settings = load_settings()
    assert settings.storage.sqlite_path == Path("data/archivist.db")
    assert settings.milvus_uri == "data/milvus.db"
    assert settings.embeddings.backend == "local"


def test_the_local_model_is_the_one_the_sources_use_else_the_fastest(clean_env: None) -> None:
    settings = load_settings()
    assert settings.embeddings.model is None
    assert settings.embedding_model() == "all-MiniLM-L6-v2-q8f"  # a new data folder
    assert settings.embedding_model({"all-MiniLM-L6-v2"}) == "all-MiniLM-L6-v2"
    assert settings.embedding_model({"all-MiniLM-L6-v2-q8"}) == "all-MiniLM-L6-v2-q8"
    both = {"all-MiniLM-L6-v2", "all-MiniLM-L6-v2-q8"}
    assert settings.embedding_model(both) == "all-MiniLM-L6-v2-q8"
    assert settings.embedding_model({*both, "all-MiniLM-L6-v2-q8f"}) == "all-MiniLM-L6-v2-q8f"
    chosen = settings.model_copy(
        update={"embeddings": settings.embeddings.model_copy(update={"model": "all-MiniLM-L6-v2"})}
    )
    assert chosen.embedding_model({"all-MiniLM-L6-v2-q8"}) == "all-MiniLM-L6-v2"
    assert LOCAL_MODELS == LOCAL_MODEL_IDS  # bot.config names them without importing them


def test_an_endpoint_needs_its_embedding_model_named(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARCHIVIST_EMBEDDINGS_BACKEND", "openai")
    with pytest.raises(ConfigError, match=r"^config error: embeddings\.model: name the endpoint"):
        load_settings()
    monkeypatch.setenv("ARCHIVIST_EMBEDDINGS_MODEL", "text-embedding-3-small")
    assert load_settings().embedding_model() == "text-embedding-3-small"


def test_local_embedding_runs_a_batch_per_core_on_a_thread_each_unless_told(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    embeddings = load_settings().embeddings
    assert [embeddings.parallelism(cores) for cores in (1, 2, 8, 64)] == [
        (1, 1),
        (2, 1),
        (4, 2),
        (4, 16),
    ]
    monkeypatch.setenv("ARCHIVIST_EMBEDDINGS_MAX_CONCURRENCY", "1")
    assert load_settings().embeddings.parallelism(2) == (1, 2)
    monkeypatch.setenv("ARCHIVIST_EMBEDDINGS_THREADS", "1")
    assert load_settings().embeddings.parallelism(8) == (1, 1)
    # A remote backend is sent one request at a time unless told otherwise.
    monkeypatch.delenv("ARCHIVIST_EMBEDDINGS_MAX_CONCURRENCY")
    monkeypatch.setenv("ARCHIVIST_EMBEDDINGS_BACKEND", "openai")
    monkeypatch.setenv("ARCHIVIST_EMBEDDINGS_MODEL", "text-embedding-3-small")
    assert load_settings().embeddings.parallelism(8)[0] == 1


def test_the_converted_model_is_cached_once_per_user(
    clean_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert load_settings().model_cache_dir == tmp_path / "home/.cache/archivist/models"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert load_settings().model_cache_dir == tmp_path / "xdg/archivist/models"
    monkeypatch.setenv("ARCHIVIST_EMBEDDINGS_CACHE_DIR", str(tmp_path / "mine"))
    assert load_settings().model_cache_dir == tmp_path / "mine"


def test_the_example_config_is_valid_and_matches_the_defaults(clean_env: None) -> None:
    assert load_settings(ROOT / "config.example.toml").model_dump() == load_settings().model_dump()


def test_file_then_environment(
    clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[storage]\ndata_dir = "/srv/a"\n[search]\ntop_k = 7\n')
    monkeypatch.setenv("ARCHIVIST_SEARCH_TOP_K", "9")
    monkeypatch.setenv("ARCHIVIST_MILVUS_URI", "http://milvus:19530")
    settings = load_settings()  # ./config.toml is found in the working directory
    assert settings.storage.data_dir == Path("/srv/a")
    assert settings.search.top_k == 9
    assert settings.milvus_uri == "http://milvus:19530"


def test_archivist_config_variable_names_the_file(
    clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "elsewhere.toml"
    other.write_text("[ingest]\nmax_pages = 12\n")
    monkeypatch.setenv("ARCHIVIST_CONFIG", str(other))
    assert load_settings().ingest.max_pages == 12


@pytest.mark.parametrize(
    ("content", "env", "expected"),
    [
        ("[ingest]\nmax_pages = 'many'\n", {}, "ingest.max_pages: Input should be a valid integer"),
        ("[milvus]\nurl = 'x'\n", {}, "milvus.url: unknown key"),
        ("", {"ARCHIVIST_MILVUS_URI": "milvus.example"}, "milvus.uri: Value error, expected a"),
        ("", {"ARCHIVIST_EMBEDDINGS_BACKEND": "torch"}, "embeddings.backend: Input should be"),
        ("[storage\n", {}, "not valid TOML"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_key(
    clean_env: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    content: str,
    env: dict[str, str],
    expected: str,
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(content)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message


def test_a_missing_config_file_is_named(clean_env: None, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_settings(tmp_path / "nope.toml")


def test_secrets_are_never_shown(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARCHIVIST_MILVUS_TOKEN", "tok-very-secret-123")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-also-secret-456")
    settings = load_settings()
    assert settings.llm.api_key is not None
    assert settings.llm.api_key.get_secret_value() == "sk-also-secret-456"
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    assert "tok-very-secret-123" not in shown and "sk-also-secret-456" not in shown
    assert set(settings.secrets()) == {"tok-very-secret-123", "sk-also-secret-456"}


def test_the_state_database_is_a_postgresql_url_and_a_secret(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings().storage.state_location == Path("data/archivist.db")
    url = "postgresql://archivist:pg-pass-789@db.internal:5432/archivist"
    monkeypatch.setenv("ARCHIVIST_STORAGE_DATABASE_URL", url)
    settings = load_settings()
    assert settings.storage.state_location == url
    shown = repr(settings) + str(settings) + settings.model_dump_json()
    assert "pg-pass-789" not in shown
    assert {url, "pg-pass-789"} <= set(settings.secrets())
    monkeypatch.setenv("ARCHIVIST_STORAGE_DATABASE_URL", "mysql://u:p-secret@h/db")
    with pytest.raises(ConfigError, match=r"storage\.database_url: .*PostgreSQL URL") as caught:
        load_settings()
    assert "p-secret" not in str(caught.value)


def test_queued_loads_need_the_state_in_postgresql(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARCHIVIST_INGEST_QUEUE", "true")
    with pytest.raises(ConfigError, match=r"ingest\.queue needs the state in PostgreSQL"):
        load_settings()
    monkeypatch.setenv("ARCHIVIST_STORAGE_DATABASE_URL", "postgresql://db/archivist")
    assert load_settings().ingest.queue


def test_discord_shards_are_checked_against_their_count(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ARCHIVIST_DISCORD_SHARD_IDS", "[1]")
    with pytest.raises(ConfigError, match="shard_ids needs shard_count"):
        load_settings()
    monkeypatch.setenv("ARCHIVIST_DISCORD_SHARD_COUNT", "2")
    assert load_settings().discord.shard_ids == [1]
    monkeypatch.setenv("ARCHIVIST_DISCORD_SHARD_IDS", "[2]")
    with pytest.raises(ConfigError, match="from 0 to shard_count - 1"):
        load_settings()


def test_a_bad_secret_value_is_not_echoed(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARCHIVIST_MILVUS_TIMEOUT", "sk-looks-like-a-key")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "sk-looks-like-a-key" not in str(caught.value)


def test_the_log_filter_redacts_known_secrets(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redact")
    logger.addFilter(RedactSecrets(["tok-very-secret-123"]))
    with caplog.at_level(logging.INFO, logger="test.redact"):
        logger.info("connecting with %s", "Bearer tok-very-secret-123")
    assert "tok-very-secret-123" not in caplog.text
    assert REDACTED in caplog.text
