"""What the mind's tests send and read: a person's message, the result a function gave back,
and agents whose turns wait to be released."""

from __future__ import annotations

import asyncio
from typing import Any

from agent.errors import ArchivistError
from agent.mind.loop import Incoming, Reply
from agent.mind.recall import INTERRUPTED
from tests.fake_openai import chat_completion, tool_pairing_error

KEY = "console:local:default"
GARDEN = "In my garden the tomatoes grow tall and the beans climb the fence. "
"""A sentence to repeat until a message fills as much of a window as a test needs."""


def i_see(body: dict[str, Any]) -> dict[str, Any]:
    """A fake model's answer to any step: send_message("I see.")."""
    return chat_completion(tool_calls=[("send_message", {"message": "I see."})])


def ask(text: str, conversation: str = KEY, speaker: str = "Alice") -> Incoming:
    return Incoming(conversation, "global", text, speaker_id=speaker.lower(), speaker_name=speaker)


def last_tool_result(body: dict[str, Any]) -> str:
    return str([m for m in body["messages"] if m["role"] == "tool"][-1]["content"])


def answered_as_interrupted(sent: list[dict[str, Any]], call: dict[str, Any]) -> int:
    """Check that ``sent`` keeps the pairing rule and answers ``call`` as interrupted, right
    after the message that made it; return that message's index."""
    assert tool_pairing_error(sent) is None
    asked_at = next(i for i, m in enumerate(sent) if m.get("tool_calls") == [call])
    assert sent[asked_at + 1] == {
        "role": "tool",
        "content": INTERRUPTED,
        "tool_call_id": call["id"],
    }
    return asked_at


class ScriptedAgents:
    """Stands in for Agents at the queue's seam: each turn waits for its own release."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.release: dict[str, asyncio.Event] = {}
        self.entered = asyncio.Event()

    async def turn(self, incoming: Incoming) -> Reply:
        self.started.append(incoming.text)
        self.entered.set()
        gate = self.release.setdefault(incoming.text, asyncio.Event())
        await gate.wait()
        if incoming.text == "boom":
            raise RuntimeError("a bug")
        if incoming.text == "down":
            raise ArchivistError("The language model is down.")
        return Reply([f"re: {incoming.text}"])


def message(text: str, conversation: str = "c:1:1") -> Incoming:
    return Incoming(conversation, "global", text)
