"""deploy/: the compose file's replicas load as valid settings on the shared PostgreSQL and
Milvus, split Discord's shards between them, and all sit behind the Slack load balancer."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config import load_settings

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
_VARIABLE = re.compile(r"\$\{(\w+)(?::\?[^}]*)?\}")


def _compose() -> dict[str, Any]:
    # Stand-ins for what deploy/.env fills in, the way compose interpolates ${NAME:?why}.
    text = _VARIABLE.sub(lambda m: f"{m[1].lower()}-value", (DEPLOY / "compose.yaml").read_text())
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def _bots(compose: dict[str, Any], *, workers: bool = False) -> dict[str, dict[str, str]]:
    """The environment of each bot replica (or, with ``workers``, of each worker)."""
    return {
        name: {k: str(v) for k, v in service["environment"].items()}
        for name, service in compose["services"].items()
        if service.get("image") == "archivist:latest"
        and ("worker" in service.get("command", [])) == workers
    }


def test_every_replica_loads_on_the_shared_stores(
    clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    bots = _bots(_compose())
    assert len(bots) >= 2
    shards: list[int] = []
    for environment in bots.values():
        with monkeypatch.context() as patch:
            for key, value in environment.items():
                patch.setenv(key, value)
            settings = load_settings()
        assert settings.storage.database_url is not None
        assert str(settings.storage.state_location).startswith("postgresql://archivist:")
        assert settings.milvus_uri == "http://milvus:19530"
        assert settings.discord.token is not None and settings.slack.signing_secret is not None
        assert settings.discord.shard_count == len(bots)
        assert settings.ingest.queue  # loads go to the workers
        shards += settings.discord.shard_ids
    assert sorted(shards) == list(range(len(bots)))  # each guild's shard run exactly once
    assert len({env["ARCHIVIST_SERVER_REPLICA"] for env in bots.values()}) == len(bots)
    workers = _bots(_compose(), workers=True)
    assert workers, "someone must run the queued loads"
    for environment in workers.values():
        with monkeypatch.context() as patch:
            for key, value in environment.items():
                patch.setenv(key, value)
            settings = load_settings()
        assert settings.ingest.queue and settings.storage.database_url is not None


def test_the_slack_balancer_reaches_every_replica_and_the_image_has_every_package() -> None:
    upstream = re.findall(r"server (\S+):3000;", (DEPLOY / "nginx.conf").read_text())
    assert sorted(upstream) == sorted(_bots(_compose()))
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    pyproject = (DEPLOY.parent / "pyproject.toml").read_text()
    packages = re.search(r"include = \[([^\]]*)\]", pyproject)
    assert packages
    for package in re.findall(r'"(\w+)\*"', packages[1]):
        assert f"COPY {package} {package}" in dockerfile
