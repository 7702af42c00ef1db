"""Citation handles name one passage for the whole conversation; invented ones are dropped."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from agent.core import Core
from agent.documents.loads import FileInput
from tests import pdfs
from tests.agent.mind.helpers import KEY, ask, last_tool_result
from tests.fake_openai import FakeOpenAI, chat_completion


async def _search_then_say(fake: FakeOpenAI, query: str, say: Any) -> None:
    """Script one turn: search ``query``, then send ``say(search result text)``."""
    fake.reply(tool_calls=[("archival_memory_search", {"query": query, "request_heartbeat": True})])
    fake.respond_with(
        lambda body: chat_completion(
            tool_calls=[("send_message", {"message": say(last_tool_result(body))})]
        )
    )


def _handle_of(result: str, page: int) -> int:
    found = re.search(rf"\[(\d+)\] manual\.pdf p\.{page}\b", result)
    assert found, result
    return int(found.group(1))


async def test_a_passage_keeps_its_handle_and_old_handles_still_cite(
    core: Core, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    path = pdfs.make_manual_pdf(tmp_path / "manual.pdf", 12)
    await core.load(KEY, "global", "manual", [FileInput(path)], by="test")
    seen: dict[str, int] = {}

    def first(result: str) -> str:
        seen["p3"] = _handle_of(result, 3)
        return f"See [{seen['p3']}]."

    await _search_then_say(fake_openai, pdfs.manual_marker(3), first)
    await core.ask(ask("Where is the third frequency?"))

    def again(result: str) -> str:
        assert _handle_of(result, 3) == seen["p3"]  # the same passage, the same handle
        seen["p9"] = _handle_of(result, 9)
        return f"Page 3 [{seen['p3']}] and page 9 [{seen['p9']}]."

    await _search_then_say(fake_openai, pdfs.manual_marker(9) + " " + pdfs.manual_marker(3), again)
    reply = await core.ask(ask("And the ninth?"))
    assert [(c.page, c.handle) for c in reply.citations] == [(3, seen["p3"]), (9, seen["p9"])]

    fake_openai.reply(tool_calls=[("send_message", {"message": f"As I said [{seen['p9']}]."})])
    later = await core.ask(ask("Remind me?"))
    assert [c.page for c in later.citations] == [9]  # resolved from an earlier turn


async def test_a_handle_no_search_returned_is_dropped_from_the_reply(
    core: Core, fake_openai: FakeOpenAI
) -> None:
    fake_openai.reply(tool_calls=[("send_message", {"message": "It is on page 10 [7]."})])
    reply = await core.ask(ask("Where?"))
    assert reply.messages == ["It is on page 10."] and reply.citations == []
