"""``/healthz`` and ``/metrics`` over real HTTP, on a real core (SQLite, Milvus Lite, fake LLM)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from pymilvus import MilvusClient

from agent.documents.loads import FileInput
from agent.errors import ArchivistError
from agent.mind.loop import Incoming
from bot.app import Runtime, open_runtime
from bot.config import Settings
from bot.health import HealthServer, run_checks
from tests import pdfs
from tests.conftest import make_settings, with_llm
from tests.fake_openai import FakeOpenAI

# The platform's readiness as the stand-in adapter check sees it (a test may clear it).
connected: list[bool] = [True]


@pytest.fixture
def backend() -> str:
    return "lite"


@pytest.fixture
async def runtime(settings: Settings, fake_openai: FakeOpenAI) -> AsyncIterator[Runtime]:
    named = settings.model_copy(
        update={"server": settings.server.model_copy(update={"replica": REPLICA})}
    )
    async with open_runtime(with_llm(named, fake_openai)) as rt:
        yield rt


@pytest.fixture
async def base_url(runtime: Runtime) -> AsyncIterator[str]:
    async def platform() -> None:
        if not connected:
            raise ArchivistError("Not connected to Discord (yet): see the bot's log.")

    checks = {**runtime.checks, "discord": platform}
    server = HealthServer(
        checks=checks,
        metrics=runtime.metrics,
        host="127.0.0.1",
        port=0,
        advisory=frozenset({"llm"}),
    )
    port = await server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await server.close()


async def get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, response.headers["Content-Type"], await response.text()


REPLICA = "replica-a"


def sample(metrics: str, name: str) -> float:
    """The value of one sample line, e.g. ``archivist_turns_total{outcome="answered"}``, whose
    labels also carry this replica's (checked, then left out of ``name``)."""
    for line in metrics.splitlines():
        if line.startswith("#"):
            continue
        assert f'replica="{REPLICA}"' in line, line
        unlabelled = re.sub(r',?replica="[^"]*"', "", line).replace("{}", "").replace("{,", "{")
        if unlabelled.startswith(name + " "):
            return float(unlabelled.split()[-1])
    raise AssertionError(f"{name} not in /metrics:\n{metrics}")


async def test_healthz_is_ready_when_every_dependency_answers(base_url: str) -> None:
    status, _, body = await get(base_url + "/healthz")
    assert status == 200
    assert '"status": "ok"' in body
    for name in ("sqlite", "milvus", "llm"):
        assert f'"{name}": {{"ok": true}}' in body


async def test_a_model_that_is_down_degrades_but_does_not_fail_readiness(
    base_url: str, fake_openai: FakeOpenAI
) -> None:
    fake_openai.models_status = 401
    status, _, body = await get(base_url + "/healthz")
    assert status == 200
    assert '"status": "degraded"' in body
    assert '"milvus": {"ok": true}' in body
    assert "refused the bot's credentials (HTTP 401)" in body


async def test_a_required_dependency_that_is_down_fails_readiness_by_name(base_url: str) -> None:
    connected.clear()
    try:
        status, _, body = await get(base_url + "/healthz")
    finally:
        connected.append(True)
    assert status == 503
    assert '"status": "unavailable"' in body
    assert "Not connected to Discord (yet)" in body


async def test_metrics_count_turns_llm_calls_and_their_failures(
    base_url: str, runtime: Runtime, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reply(tool_calls=[("send_message", {"message": "Hello."})])
    fake_openai.fail(500)
    answered = await runtime.core.ask(Incoming("console:local:a", "global", "hi"))
    failed = await runtime.core.ask(Incoming("console:local:b", "global", "hi again"))
    assert answered.messages == ["Hello."] and not answered.failed
    assert failed.failed

    status, content_type, metrics = await get(base_url + "/metrics")
    assert status == 200 and content_type.startswith("text/plain")
    assert sample(metrics, 'archivist_turns_total{outcome="answered"}') == 1
    assert sample(metrics, 'archivist_turns_total{outcome="failed"}') == 1
    assert sample(metrics, "archivist_turn_seconds_count") == 2
    assert sample(metrics, "archivist_llm_calls_total") == 2
    assert sample(metrics, 'archivist_llm_errors_total{kind="server_error"}') == 1
    assert sample(metrics, "archivist_queue_depth") == 0
    assert sample(metrics, "archivist_active_conversations") == 2


async def test_metrics_count_passages_loaded(
    base_url: str, runtime: Runtime, tmp_path: Path
) -> None:
    manual = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 3)
    report = await runtime.core.load(
        "console:local:a", "global", "manual", [FileInput(manual)], by="test"
    )
    _, _, metrics = await get(base_url + "/metrics")
    assert report.passages > 0
    assert sample(metrics, "archivist_passages_loaded_total") == report.passages


async def test_milvus_is_ready_only_when_it_can_search(
    tmp_path: Path, model_cache: Path, clean_env: None, milvus_server_uri: str
) -> None:
    """A server answers has_collection while a collection is still loading after a restart,
    and searches fail ("collection not loaded") for ~20 s: the check searches, as users do."""
    settings = make_settings(tmp_path / "data", model_cache, milvus_server_uri)
    async with open_runtime(settings) as rt:
        check = rt.checks["milvus"]
        await check()
        server = MilvusClient(milvus_server_uri)
        try:
            prefix = settings.milvus.collection_prefix + "_"
            [name] = [c for c in server.list_collections() if c.startswith(prefix)]
            server.release_collection(name)  # the state a restarted server is in meanwhile
            assert server.has_collection(name)
            report = await run_checks({"milvus": check})
            server.load_collection(name)
            assert (await run_checks({"milvus": check})) == {"milvus": {"ok": True}}
        finally:
            server.close()
    assert report["milvus"]["ok"] is False
    assert "cannot search" in report["milvus"]["error"]
    assert "not loaded" in report["milvus"]["error"]
