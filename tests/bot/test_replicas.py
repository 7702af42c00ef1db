"""Two ``archivist run`` replicas on one PostgreSQL and one Milvus server, behind Slack's HTTP
events: one channel's questions, sent alternately to each, are answered once each and in order,
each replica seeing what the other said."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import pytest

from adapters.live import WRITING_MARK
from tests import pdfs
from tests.bot.test_run import Bot, get, run_env, start
from tests.fake_openai import FakeOpenAI, chat_completion
from tests.fake_slack import FakeSlack
from tests.waiting import until

_QUESTION = re.compile(r"\bq(\d)\b")


def _question(body: dict[str, Any]) -> str:
    last = [m for m in body["messages"] if m["role"] == "user"][-1]
    found = _QUESTION.search(str(last["content"]))
    assert found, last
    return f"q{found[1]}"


def _answers(fake: FakeSlack, channel: str, ts: str) -> list[str]:
    """The bot's finished replies in a question's thread (not a preview still being written)."""
    texts = [str(m["text"]) for m in fake.bot_messages(channel, thread_ts=ts)]
    return [t for t in texts if not t.endswith(WRITING_MARK)]


async def _lock_waiters(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
            )
        )
    finally:
        await conn.close()


@dataclass
class Cluster:
    """The fake Slack, the bot replicas behind it (with their event URLs), and how to start
    more processes (workers) on the same stores."""

    fake: FakeSlack
    replicas: list[tuple[Bot, str]]
    env: dict[str, str]
    extra: list[Bot]

    async def worker(self, name: str) -> tuple[Bot, str]:
        """Start ``archivist worker``; returns once it is taking jobs, with the URL of its
        ``/healthz`` and ``/metrics``."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "worker",
            env={**self.env, "ARCHIVIST_STORAGE_DATA_DIR": self.env[name]},
            stderr=asyncio.subprocess.PIPE,
        )
        worker = Bot(process)
        self.extra.append(worker)
        port = (await worker.line(r"serving /healthz and /metrics on http://127\.0\.0\.1:(\d+)"))[1]
        await worker.line("worker ready")
        return worker, f"http://127.0.0.1:{port}"


@pytest.fixture
def queue() -> bool:
    """Whether loads are queued for workers (tests that need it override this)."""
    return False


@pytest.fixture
async def cluster(
    tmp_path: Path,
    model_cache: Path,
    postgres_url: str,
    milvus_server_uri: str,
    fake_openai: FakeOpenAI,
    queue: bool,
) -> AsyncIterator[Cluster]:
    async with FakeSlack(mode="http") as fake:
        env = run_env(
            tmp_path,
            model_cache,
            ARCHIVIST_STORAGE_DATABASE_URL=postgres_url,
            ARCHIVIST_MILVUS_URI=milvus_server_uri,
            ARCHIVIST_INGEST_QUEUE=str(queue).lower(),
            ARCHIVIST_INGEST_JOB_STALE_SECONDS="3",
            SLACK_BOT_TOKEN=fake.bot_token,
            SLACK_SIGNING_SECRET=fake.signing_secret,
            ARCHIVIST_SLACK_API_BASE_URL=fake.api_base,
            ARCHIVIST_SLACK_HTTP_HOST="127.0.0.1",
            ARCHIVIST_SLACK_HTTP_PORT="0",
            ARCHIVIST_LLM_BASE_URL=fake_openai.base_url,
            ARCHIVIST_LLM_MODEL="fake-model",
            OPENAI_API_KEY="sk-replica-0123456789",
        )
        for name in ("worker-a", "worker-b"):
            env[name] = str(tmp_path / name)
        world = Cluster(fake, [], env, [])
        try:
            for n in range(2):
                bot = await start({**env, "ARCHIVIST_STORAGE_DATA_DIR": str(tmp_path / f"r{n}")})
                port = (await bot.line(r"serving Slack events on port (\d+)"))[1]
                world.replicas.append((bot, f"http://127.0.0.1:{port}/slack/events"))
            yield world
        finally:
            for bot in [*(b for b, _ in world.replicas), *world.extra]:
                if bot.process.returncode is None:
                    assert await bot.stop() == 0, "\n".join(bot.lines)
                assert not any("Traceback" in line for line in bot.lines), "\n".join(bot.lines)


async def test_one_channel_alternating_between_replicas_is_answered_once_in_order(
    cluster: Cluster, fake_openai: FakeOpenAI, postgres_url: str
) -> None:
    fake, [(_, first_url), (_, second_url)] = cluster.fake, cluster.replicas
    channel = fake.add_channel("docs")
    member = fake.add_user("bob")
    hold_q1 = asyncio.Event()

    async def answer(body: dict[str, Any]) -> dict[str, Any]:
        question = _question(body)
        if question == "q1":
            await hold_q1.wait()
        return chat_completion(tool_calls=[("send_message", {"message": f"answer to {question}"})])

    fake_openai.respond_with(answer)

    # q1 reaches the first replica, whose model call is held; q2 reaches the second, which
    # must wait for the conversation (seen as a lock waiter on the server) before its turn.
    fake.events_url = first_url
    q1 = await fake.mention(channel, member, "q1 what is a source?")
    await fake_openai.wait_for_requests(1, timeout=60)
    fake.events_url = second_url
    q2 = await fake.mention(channel, member, "q2 and an agent?")
    await q2.wait_ack()
    assert q2.status == 200  # acknowledged at once, answered when its turn comes

    async def second_waits() -> bool:
        return await _lock_waiters(postgres_url) == 1

    await until(second_waits, "the second replica waiting for the conversation", timeout=30)
    assert len(fake_openai.requests) == 1
    hold_q1.set()

    # Then the rest alternate freely.
    asked = [q1, q2]
    for n, url in ((3, first_url), (4, second_url)):
        await fake.wait_for(
            lambda: _answers(fake, channel, asked[-1].ts),
            timeout=60,
            what=f"the answer to q{n - 1}",
        )
        fake.events_url = url
        asked.append(await fake.mention(channel, member, f"q{n} anything else?"))
    await fake.wait_for(
        lambda: _answers(fake, channel, asked[-1].ts),
        timeout=60,
        what="the answer to q4",
    )

    # Slack re-delivers q1 to the other replica: the shared record of handled events says no.
    # A turn it wrongly started would run before q5's, which comes after it in the channel.
    retried = await fake.redeliver(q1, 1)
    await retried.wait_ack()
    asked.append(await fake.mention(channel, member, "q5 last one"))
    await fake.wait_for(
        lambda: _answers(fake, channel, asked[-1].ts),
        timeout=60,
        what="the answer to q5",
    )

    answers = [_answers(fake, channel, q.ts) for q in asked]
    assert answers == [[f"answer to q{n}"] for n in range(1, 6)]
    asked_model = [_question(body) for body in fake_openai.requests]
    assert asked_model == ["q1", "q2", "q3", "q4", "q5"]
    # Each replica's prompt held the turns the other one ran: one conversation, in order.
    last_prompt = str(fake_openai.requests[-1]["messages"])
    assert all(f"answer to q{n}" in last_prompt for n in (1, 2, 3))


async def _job_progress(url: str) -> int:
    """Pages the running load job has done, as its worker last said (0: none yet)."""
    conn = await asyncpg.connect(url)
    try:
        progress = await conn.fetchval("SELECT progress FROM load_jobs LIMIT 1")
    finally:
        await conn.close()
    return int(json.loads(progress)["pages_done"]) if progress else 0


async def _state(url: str, sql: str, *params: object) -> list[Any]:
    conn = await asyncpg.connect(url)
    try:
        return [tuple(row) for row in await conn.fetch(sql, *params)]
    finally:
        await conn.close()


@pytest.mark.parametrize("queue", [True])
async def test_a_worker_loads_while_replicas_answer_and_a_killed_one_is_taken_over(
    cluster: Cluster, fake_openai: FakeOpenAI, postgres_url: str, tmp_path: Path
) -> None:
    fake = cluster.fake
    channel = fake.add_channel("docs")
    admin = fake.add_user("alice", admin=True)
    member = fake.add_user("bob")
    fake_openai.respond_with(
        lambda body: chat_completion(tool_calls=[("send_message", {"message": "Still here."})])
    )
    first, first_url = await cluster.worker("worker-a")
    status, body = await get(f"{first_url}/healthz")
    assert status == 200, body
    assert json.loads(body)["checks"] == {"postgresql": {"ok": True}, "milvus": {"ok": True}}
    # Long enough that the worker is killed well before its end.
    path = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 600)
    file = fake.add_file(path.read_bytes(), "manual.pdf", user=admin)
    fake.events_url = cluster.replicas[0][1]
    shared = await fake.post_message(channel, admin, "", files=[file])

    # The worker (not the replica) is loading: its progress is in the job's row. It dies.
    async def under_way() -> bool:
        return await _job_progress(postgres_url) > 0

    await until(under_way, "the worker reporting progress", timeout=120)
    _, metrics = await get(f"{first_url}/metrics")
    assert "archivist_load_jobs_running{replica=" in metrics
    assert re.search(r"archivist_load_jobs_running\{[^}]*\} 1\.0", metrics), metrics
    first.process.kill()
    await first.process.wait()

    # The replicas answer meanwhile, and nothing of the half-done load can be searched.
    fake.events_url = cluster.replicas[1][1]
    asked = await fake.mention(channel, member, "q1 are you there?")
    await fake.wait_for(lambda: _answers(fake, channel, asked.ts), timeout=60, what="an answer")
    assert _answers(fake, channel, asked.ts) == ["Still here."]
    assert await _state(postgres_url, "SELECT id FROM sources WHERE status = 'ready'") == []

    # Another worker takes the job over once the first has stopped beating, and finishes it;
    # the replica that was asked says so in the channel.
    second, second_url = await cluster.worker("worker-b")

    def outcome() -> str | None:
        for message in fake.bot_messages(channel, thread_ts=shared.ts):
            text = str(message.get("text") or "")
            if text and not text.startswith(("Loading", "<")) and not text.endswith(WRITING_MARK):
                return text
        return None

    said = await fake.wait_for(outcome, timeout=180, what="the load's outcome")
    assert said.startswith("Loaded") and "600 pages" in said, said
    await second.line("taking over from")

    async def counted() -> bool:
        _, metrics = await get(f"{second_url}/metrics")
        return bool(re.search(r'archivist_load_jobs_total\{outcome="loaded",[^}]*\} 1\.0', metrics))

    await until(counted, "the second worker counting the job it loaded", timeout=30)
    [(source_id, status)] = await _state(postgres_url, "SELECT id, status FROM sources")
    assert status == "ready"
    files = await _state(
        postgres_url,
        "SELECT status, passages FROM source_files WHERE source_id = $1",
        source_id,
    )
    assert [f[0] for f in files] == ["ready"]
    # Its passages once: the dead worker's half were rolled back, not kept beside them.
    [(stored,)] = await _state(postgres_url, "SELECT count(*) FROM passages")
    assert stored == files[0][1]
    [(attached,)] = await _state(postgres_url, "SELECT count(*) FROM attachments")
    assert attached == 1
