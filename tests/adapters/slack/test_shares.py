"""A PDF shared together with a question: loaded first, then the question answered from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests import pdfs
from tests.adapters.scripted import answer_from_page_3_of
from tests.adapters.slack.conftest import Workspace

JSON = dict[str, Any]


async def thread_texts(ws: Workspace, ts: str | None, count: int) -> list[str]:
    """The bot's messages in the thread of ``ts`` once ``count`` of them are final."""

    def done() -> list[str] | None:
        texts = [str(m.get("text")) for m in ws.fake.bot_messages(ws.docs, thread_ts=ts)]
        final = [t for t in texts if not t.startswith("Loading")]
        return final if len(final) >= count else None

    return await ws.fake.wait_for(done, what=f"{count} final messages")


async def test_a_pdf_shared_with_a_question_is_loaded_first_then_the_question_answered(
    workspace: Workspace, tmp_path: Path
) -> None:
    ws = workspace
    path = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 4)
    file = ws.fake.add_file(path.read_bytes(), path.name, user=ws.admin)
    question = pdfs.manual_marker(3).replace(" is ", " is? ")
    answer_from_page_3_of("manual.pdf", ws.llm, question)
    shared = await ws.fake.post_message(
        ws.docs, ws.admin, f"<@{ws.fake.bot_user_id}> {question}", files=[file]
    )
    assert "app_mention" in [c.event["type"] for c in shared.companions]
    status, answer = await thread_texts(ws, shared.ts, 2)
    assert status.startswith("Loaded") and "of manual.pdf into source manual —" in status
    assert answer.startswith("4733 hertz [1].")
    assert len(ws.llm.requests) == 2  # answered once, not once per event


async def test_a_name_given_with_the_pdf_names_the_source_and_the_rest_is_the_question(
    workspace: Workspace, tmp_path: Path
) -> None:
    ws = workspace
    path = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 4)
    file = ws.fake.add_file(path.read_bytes(), path.name, user=ws.admin)
    question = pdfs.manual_marker(3).replace(" is ", " is? ")
    answer_from_page_3_of("manual.pdf", ws.llm, question)
    shared = await ws.fake.post_message(
        ws.docs, ws.admin, f"<@{ws.fake.bot_user_id}> name: Field Manual\n{question}", files=[file]
    )
    status, answer = await thread_texts(ws, shared.ts, 2)
    assert "into source Field Manual —" in status
    assert answer.startswith("4733 hertz [1].")
