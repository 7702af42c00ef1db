"""Shared fixtures: real SQLite files, real Milvus (Lite and server), the real embedding model."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from agent.documents.embed import Embedder
from agent.documents.library import Library
from bot.app import make_embedder, open_library
from bot.config import Settings, load_settings
from tests.fake_openai import (
    FakeOpenAI,
    fake_openai,  # noqa: F401 (a fixture, used by name)
)
from tests.milvus_fixtures import milvus_server_uri  # noqa: F401 (a fixture, used by name)
from tests.postgres_fixtures import postgres_server_url, postgres_url  # noqa: F401 (fixtures)

_collections = itertools.count()


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder for the folded embedding model, shared by the whole run."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No ARCHIVIST_*, OPENAI_*, DISCORD_* or SLACK_* variables; a cwd without config.toml."""
    for key in list(os.environ):
        if key.startswith(("ARCHIVIST_", "OPENAI_", "DISCORD_", "SLACK_")):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    yield


def make_settings(
    data_dir: Path,
    model_cache: Path,
    milvus_uri: str = "",
    prefix: str = "t",
    database_url: str | None = None,
) -> Settings:
    """Settings for a test: its own data folder (or PostgreSQL database), the shared model
    cache, a fresh collection."""
    settings = load_settings(None)
    storage = {
        "data_dir": data_dir,
        "database_url": SecretStr(database_url) if database_url else None,
    }
    return settings.model_copy(
        update={
            "storage": settings.storage.model_copy(update=storage),
            "milvus": settings.milvus.model_copy(
                update={"uri": milvus_uri, "collection_prefix": f"{prefix}{next(_collections)}"}
            ),
            "embeddings": settings.embeddings.model_copy(update={"cache_dir": model_cache}),
        }
    )


def with_llm(settings: Settings, fake: FakeOpenAI | None, **agent: Any) -> Settings:
    """``settings`` with the LLM at ``fake`` (None: search-only) and ``[agent]`` overrides."""
    llm = settings.llm.model_copy(
        update={
            "base_url": fake.base_url if fake else None,
            "api_key": None,
            "model": "fake-model",
            "timeout": 5.0,
            "max_retries": 0,
            **{k: agent.pop(k) for k in ("context_window",) if k in agent},
        }
    )
    if fake is not None:
        llm = llm.model_copy(update={"api_key": SecretStr("sk-test-agent")})
    return settings.model_copy(
        update={"llm": llm, "agent": settings.agent.model_copy(update=agent)}
    )


@pytest.fixture(scope="session")
async def embedder(model_cache: Path) -> AsyncIterator[Embedder]:
    """The real local embedder, loaded once."""
    settings = make_settings(model_cache.parent / "unused", model_cache)
    emb = await make_embedder(settings)
    yield emb
    await emb.aclose()


@pytest.fixture(params=["lite", "server"])
def backend(request: pytest.FixtureRequest) -> str:
    """Run a test against Milvus Lite and against a real Milvus server."""
    return str(request.param)


@pytest.fixture
def state() -> str:
    """The engine holding the state: SQLite. Modules that test the stores override this with
    ``params=STATES`` to run on PostgreSQL as well."""
    return "sqlite"


STATES = ["sqlite", "postgresql"]


@pytest.fixture
def state_location(state: str, request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    """A fresh state database for the test: a SQLite file, or a new PostgreSQL database."""
    if state == "postgresql":
        return str(request.getfixturevalue("postgres_url"))
    return tmp_path / "data" / "archivist.db"


@pytest.fixture
def settings(
    backend: str,
    state_location: str | Path,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    model_cache: Path,
    clean_env: None,
) -> Settings:
    """Settings on a fresh data folder, on the Milvus backend and state engine under test."""
    uri = request.getfixturevalue("milvus_server_uri") if backend == "server" else ""
    url = state_location if isinstance(state_location, str) else None
    return make_settings(tmp_path / "data", model_cache, uri, database_url=url)


@pytest.fixture
async def library(settings: Settings) -> AsyncIterator[Library]:
    """A library on real SQLite and Milvus."""
    async with open_library(settings) as lib:
        yield lib
