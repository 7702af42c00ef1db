"""Model answers both platforms' tests script the same way."""

from __future__ import annotations

import re
from typing import Any

from tests.fake_openai import FakeOpenAI, chat_completion

JSON = dict[str, Any]


def answer_from_page_3_of(document: str, llm: FakeOpenAI, question: str) -> None:
    """Script the model: search for ``question``, then answer only if ``document``'s page 3
    is among the results (so the answer proves the document was attached first)."""
    llm.reply(tool_calls=[("archival_memory_search", {"query": question})])

    def answer(body: JSON) -> JSON:
        result = str([m for m in body["messages"] if m["role"] == "tool"][-1]["content"])
        found = re.search(rf"\[(\d+)\] {re.escape(document)} p\.3\b", result)
        text = f"4733 hertz [{found[1]}]." if found else f"{document} is not attached."
        return chat_completion(tool_calls=[("send_message", {"message": text})])

    llm.respond_with(answer)
