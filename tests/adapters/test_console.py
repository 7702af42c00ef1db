"""``archivist chat`` end to end through piped standard input, as a script would drive it."""

from __future__ import annotations

import asyncio
import io
import json
import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.console import ConsoleAdapter, render_citations
from agent.core import FileInput
from agent.values import Citation
from bot.app import open_core
from bot.config import Settings
from tests import pdfs
from tests.bot.test_run import archivist
from tests.conftest import with_llm
from tests.fake_openai import FakeOpenAI, chat_completion


@pytest.fixture
def backend() -> str:
    """The console does not depend on the Milvus backend: Lite is enough here."""
    return "lite"


async def chat(env: dict[str, str], script: str) -> tuple[int, str, str]:
    """Run ``archivist chat`` with ``script`` on stdin; the event loop keeps serving meanwhile."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "chat",
        env={**os.environ, **env},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(script.encode()), 180)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _env(tmp_path: Path, model_cache: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ARCHIVIST_", "OPENAI_"))
    }
    return {
        **env,
        "ARCHIVIST_STORAGE_DATA_DIR": str(tmp_path / "data"),
        "ARCHIVIST_EMBEDDINGS_CACHE_DIR": str(model_cache),
    }


async def test_chat_without_a_language_model_answers_with_search_results(
    tmp_path: Path, model_cache: Path
) -> None:
    manual = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 6)
    script = "\n".join(
        [
            "/sources",
            f"/load {manual}",
            "/detach manual",
            "/attach manual",
            pdfs.manual_marker(4),
            "/memory",
            "/search calibration",
            "/reset",
            "/nonsense",
            "/exit",
            "never read",
        ]
    )
    code, out, err = await chat(_env(tmp_path, model_cache), script + "\n")
    assert code == 0, err
    assert "No language model configured" in out
    assert "No sources yet" in out
    assert "Loaded" in out and "into source 'manual' — attached here" in out
    assert "Detached manual." in out and "Attached manual." in out
    assert "Search results (no language model configured):" in out
    assert "Sources: manual.pdf p.4" in out
    assert '<persona characters="' in out
    assert "Forgot 2 messages" in out
    assert "Unknown command /nonsense" in out
    assert "never read" not in out


async def test_chat_with_a_language_model_prints_the_answer_and_its_sources(
    tmp_path: Path, model_cache: Path, fake_openai: FakeOpenAI
) -> None:
    manual = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 6)

    def respond(body: dict[str, Any]) -> dict[str, Any]:
        tools = [m for m in body["messages"] if m["role"] == "tool"]
        if not tools:
            query = pdfs.manual_marker(5)
            return chat_completion(
                "Search first.",
                tool_calls=[
                    ("archival_memory_search", {"query": query, "request_heartbeat": True})
                ],
            )
        return chat_completion(tool_calls=[("send_message", {"message": "It is 4755 hertz [1]."})])

    fake_openai.respond_with(respond)
    env = {
        **_env(tmp_path, model_cache),
        "ARCHIVIST_LLM_BASE_URL": fake_openai.base_url,
        "OPENAI_API_KEY": "sk-console-test",
    }
    code, out, err = await chat(env, f"/load {manual}\nWhat is the frequency?\n")
    assert code == 0, err
    assert "It is 4755 hertz [1]." in out
    assert "Sources: manual.pdf p.5" in out
    assert "Search first." not in out  # inner monologue stays hidden


def test_citations_are_grouped_by_document() -> None:
    citations = [
        Citation(1, "gri.pdf", 41, 41, "gri"),
        Citation(2, "gri.pdf", 43, 44, "gri"),
        Citation(3, "faq.pdf", 2, 2, "faq"),
        Citation(4, "gri.pdf", 41, 41, "gri"),
    ]
    assert render_citations(citations) == "Sources: gri.pdf p.41, p.43-44; faq.pdf p.2"
    assert render_citations([]) is None


async def test_agents_are_listed_and_shown(tmp_path: Path, model_cache: Path) -> None:
    env = _env(tmp_path, model_cache)
    code, _, err = await chat(env, "hello\n")
    assert code == 0, err
    listed = await cli(env, "agents", "list", "--json")
    [agent] = json.loads(listed)
    assert (agent["key"], agent["persona_name"], agent["messages"]) == (
        "console:local:default",
        "memgpt_doc",
        2,
    )
    shown = await cli(env, "agents", "show", "console:local:default")
    assert "2 messages" in shown and "<persona" in shown
    missing = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "agents",
        "show",
        "nope:x:y",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, missing_err = await missing.communicate()
    assert missing.returncode == 1 and b"No agent for conversation 'nope:x:y'" in missing_err


async def cli(env: dict[str, str], *args: str) -> str:
    code, out, err = await archivist(env, *args)
    assert code == 0, err
    return out


async def test_a_kill_during_a_turn_loses_no_user_message(
    tmp_path: Path, model_cache: Path, fake_openai: FakeOpenAI
) -> None:
    arrived = asyncio.Event()

    async def respond(body: dict[str, Any]) -> dict[str, Any]:
        arrived.set()
        await asyncio.Event().wait()  # never answers: the process is killed meanwhile
        raise AssertionError("unreachable")

    fake_openai.respond_with(respond)
    env = {
        **_env(tmp_path, model_cache),
        "ARCHIVIST_LLM_BASE_URL": fake_openai.base_url,
        "OPENAI_API_KEY": "sk-console-test",
    }
    process = await start_chat(env, "Please remember that the vault code is 7-4-1.")
    await arrived.wait()  # the turn is in progress: the model has been asked
    process.kill()
    await process.wait()
    with sqlite3.connect(tmp_path / "data" / "archivist.db") as db:
        rows = db.execute("SELECT role, content FROM messages ORDER BY id").fetchall()
    assert ("user", "Please remember that the vault code is 7-4-1.") in rows


async def _lines(*lines: str) -> AsyncIterator[str]:
    for line in lines:
        yield line + "\n"


async def test_attach_without_a_name_on_a_terminal_offers_a_numbered_choice(
    settings: Settings, tmp_path: Path
) -> None:
    out = io.StringIO()
    async with open_core(settings) as core:
        for name in ("alpha", "beta"):
            manual = pdfs.make_manual_pdf(tmp_path / f"{name}.pdf", 2)
            await core.load("console:local:other", "global", name, [FileInput(manual)], by="t")
        console = ConsoleAdapter(core, out, interactive=True)
        await console.run(_lines("/attach", "2", "/attach", "", "/attach", "nope", "/sources"))
        attached = [s.name for s in await core.attached("console:local:default")]
    text = out.getvalue()
    assert "  1. alpha:" in text and "  2. beta:" in text
    assert "Attached beta." in text
    assert "  2. beta: " in text.split("Attached beta.")[1] and "(attached)" in text
    assert "Nothing attached." in text
    assert "error: " in text and "nope" in text
    assert attached == ["beta"]


async def test_a_terminal_shows_a_spinner_while_the_agent_works(
    settings: Settings, fake_openai: FakeOpenAI
) -> None:
    release = fake_openai.hang("Here I am.")
    out = io.StringIO()
    async with open_core(with_llm(settings, fake_openai)) as core:
        console = ConsoleAdapter(core, out, interactive=True)
        chat = asyncio.create_task(console.run(_lines("hello")))
        await fake_openai.wait_for_requests(1)
        assert "thinking…" in out.getvalue()  # shown while the model has not answered
        release.set()
        await chat
    shown = out.getvalue()
    assert shown.endswith("\r" + " " * 14 + "\rHere I am.\n")


class _Screen(io.StringIO):
    """A terminal's output that says when ``awaited`` has appeared on it."""

    def __init__(self, awaited: str) -> None:
        super().__init__()
        self.awaited = awaited
        self.appeared = asyncio.Event()

    def write(self, text: str) -> int:
        written = super().write(text)
        if self.awaited in self.getvalue():
            self.appeared.set()
        return written


async def test_a_terminal_shows_the_reply_as_the_model_writes_it(
    settings: Settings, fake_openai: FakeOpenAI
) -> None:
    answer = "The breaker trips when the pump draws more than forty amperes."
    release = fake_openai.reply_held(tool_calls=[("send_message", {"message": answer})], after=30)
    out = _Screen("The breaker trips")
    async with open_core(with_llm(settings, fake_openai)) as core:
        console = ConsoleAdapter(core, out, interactive=True)
        chat = asyncio.create_task(console.run(_lines("when does it trip?")))
        await asyncio.wait_for(out.appeared.wait(), 10)
        assert answer not in out.getvalue()  # the first words, before the model is done
        release.set()
        await chat
    shown = out.getvalue()
    assert shown.count("The breaker trips") == 1 and shown.endswith(answer + "\n")


async def start_chat(env: dict[str, str], line: str) -> asyncio.subprocess.Process:
    """A real ``archivist chat`` process that has been sent ``line`` and is still running."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "chat",
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdin is not None
    process.stdin.write(line.encode() + b"\n")
    await process.stdin.drain()
    return process
