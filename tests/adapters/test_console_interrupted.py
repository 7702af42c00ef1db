"""``archivist chat`` killed while a function runs: the next run answers in the same
conversation, its prompt paired as strict servers require (issue 11)."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from tests.adapters.test_console import chat, start_chat
from tests.agent.mind.helpers import answered_as_interrupted
from tests.fake_openai import FakeOpenAI

NOTE = "The vault code is 7-4-1."


@pytest.fixture
def backend() -> str:
    """The console does not depend on the Milvus backend: Lite is enough here."""
    return "lite"


def _env(tmp_path: Path, fake: FakeOpenAI) -> dict[str, str]:
    # Embeddings from the fake too: the function's own request to it is what the test can
    # see while the function runs, and hold there.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ARCHIVIST_", "OPENAI_"))}
    return {
        **env,
        "ARCHIVIST_STORAGE_DATA_DIR": str(tmp_path / "data"),
        "ARCHIVIST_LLM_BASE_URL": fake.base_url,
        "OPENAI_API_KEY": "sk-console-test",
        "ARCHIVIST_EMBEDDINGS_BACKEND": "openai",
        "ARCHIVIST_EMBEDDINGS_BASE_URL": fake.base_url,
        "ARCHIVIST_EMBEDDINGS_MODEL": "fake-embedding",
    }


def _rows(tmp_path: Path) -> list[tuple[str, str | None, str | None]]:
    with sqlite3.connect(tmp_path / "data" / "archivist.db") as db:
        return db.execute(
            "SELECT role, tool_calls, tool_call_id FROM messages ORDER BY id"
        ).fetchall()


async def test_a_chat_killed_during_a_call_answers_the_next_message(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    env = _env(tmp_path, fake_openai)
    fake_openai.reply(tool_calls=[("archival_memory_insert", {"content": NOTE})])
    fake_openai.hang_embeddings(NOTE)
    process = await start_chat(env, "Please remember that the vault code is 7-4-1.")
    # The call is stored before it runs, and it is running: it is embedding the note. (Once
    # the model is asked again, every result is stored: killing then would leave nothing.)
    await fake_openai.wait_for_embedding(NOTE, timeout=120)
    process.kill()
    await process.wait()
    (_, calls, _) = _rows(tmp_path)[-1]
    assert calls is not None  # the last message is the call, with no result after it
    (call,) = json.loads(calls)

    fake_openai.reply(tool_calls=[("send_message", {"message": "Please tell me the code again."})])
    code, out, err = await chat(env, "What is the vault code?\n")

    assert code == 0, err
    assert "Please tell me the code again." in out
    sent = fake_openai.requests[-1]["messages"]
    answered_as_interrupted(sent, call)
    assert ("tool", None, call["id"]) in _rows(tmp_path)
