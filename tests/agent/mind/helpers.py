"""What the mind's tests send and read: a person's message, the result a function gave back."""

from __future__ import annotations

from typing import Any

from agent.mind.loop import Incoming

KEY = "console:local:default"


def ask(text: str, conversation: str = KEY, speaker: str = "Alice") -> Incoming:
    return Incoming(conversation, "global", text, speaker_id=speaker.lower(), speaker_name=speaker)


def last_tool_result(body: dict[str, Any]) -> str:
    return str([m for m in body["messages"] if m["role"] == "tool"][-1]["content"])
