"""The context window: build each step's prompt and keep it from overflowing.

Tokens are estimated offline and conservatively (UTF-8 bytes / 3; English runs nearer 4 bytes
per token), so no request is sent that the provider would reject for length. At 75 % of the
window the agent is warned once to save what matters; at 90 % the oldest messages are
summarised into the agent's recursive summary and leave the prompt (they stay in recall
memory, searchable).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from typing import Any

from agent.documents.library import Library
from agent.mind.functions import TurnContext
from agent.mind.llm import LLM
from agent.mind.memory import AgentStore
from agent.mind.notes import archive_overview
from agent.mind.recall import Message, RecallStore, StoredMessage

log = logging.getLogger(__name__)

WARN_AT = 0.75
SUMMARISE_AT = 0.9
# After summarising, the messages left in view fill at most this share of the window.
KEEP_AFTER_SUMMARY = 0.5
MEMORY_PRESSURE = (
    "[memory pressure] The conversation fills {percent}% of your context window: the oldest"
    " messages will soon be summarised and leave your view. Save anything important to core or"
    " archival memory now."
)

SYSTEM_PROMPT = """\
You are {persona_name}, an agent with long-term memory, talking in one chat conversation.

Your memory has three parts:
- Core memory (below) is always in view: your persona and notes about the people you talk with.
  Edit it with core_memory_append and core_memory_replace when you learn something that lasts.
- Recall memory is the whole conversation, also what no longer fits in view: search it with
  conversation_search and conversation_search_date.
- Archival memory holds the documents attached to this conversation and notes you saved with
  archival_memory_insert: search it with archival_memory_search, page by page.

How you work:
- People only see what you send with send_message; your other text is private inner
  monologue. Keep the monologue short.
- Before answering about the documents, search archival memory. Cite each fact by the handle
  of the result it comes from, such as [2]. If the documents do not say, say so.
- Set request_heartbeat to true on a call when you need another function before answering,
  for example to read the next page of results.
- Several people may talk here: each of their messages starts with [their name].

Memory statistics: {recall} messages in recall memory ({hidden} no longer in view);
{archival} passages in archival memory, from {sources}.
{summary}
Core memory:
{core}
"""

SUMMARY_PROMPT = (
    "You maintain the long-term summary of a conversation for the agent taking part in it."
    " Merge the previous summary and the messages below into one new summary, at most 300"
    " words, in the third person: who said what, what was decided, facts about the people,"
    " open questions. Keep document citations such as gri.pdf p.41. Reply with the summary only."
)


def estimate_tokens(payload: Any) -> int:
    """A conservative token count for messages or schemas (UTF-8 bytes / 3)."""
    return len(json.dumps(payload, ensure_ascii=False).encode()) // 3 + 1


class ContextWindow:
    """Builds prompts for one model and window size, summarising when they grow too long."""

    def __init__(
        self,
        *,
        llm: LLM,
        recall: RecallStore,
        store: AgentStore,
        library: Library,
        window_tokens: int,
        schemas: Sequence[dict[str, Any]],
    ) -> None:
        self._llm = llm
        self._recall = recall
        self._store = store
        self._library = library
        self._window = window_tokens
        self._fixed = estimate_tokens(list(schemas))
        self._warned: set[int] = set()

    async def prompt(self, ctx: TurnContext) -> list[dict[str, Any]]:
        """The messages for the next completion, within the window."""
        messages, system = await self._view(ctx)
        used = self._fixed + estimate_tokens([system, *[m.to_openai() for m in messages]])
        if used > SUMMARISE_AT * self._window:
            await self._summarise(ctx, messages, estimate_tokens(system))
            self._warned.discard(ctx.agent.id)
            messages, system = await self._view(ctx)
        elif used > WARN_AT * self._window and ctx.agent.id not in self._warned:
            self._warned.add(ctx.agent.id)
            percent = round(100 * used / self._window)
            warning = Message("system", MEMORY_PRESSURE.format(percent=percent))
            await self._recall.add(ctx.agent.id, warning)
            messages = await self._recall.in_context(ctx.agent.id)
        return [system, *[m.to_openai() for m in messages]]

    async def _view(self, ctx: TurnContext) -> tuple[list[StoredMessage], dict[str, Any]]:
        """The messages in context and the system prompt, its statistics read afresh.

        The reads are independent, so they run at once on the database's readers.
        """
        messages, summary, recall, (passages, names) = await asyncio.gather(
            self._recall.in_context(ctx.agent.id),
            self._store.summary(ctx.agent.id),
            self._recall.count(ctx.agent.id),
            archive_overview(self._library, ctx.agent.key),
        )
        text = SYSTEM_PROMPT.format(
            persona_name=ctx.agent.persona_name or "an assistant",
            recall=recall,
            hidden=max(recall - len(messages), 0),
            archival=passages,
            sources=", ".join(names) if names else "no attached sources",
            summary=f"Summary of earlier conversation: {summary}\n" if summary else "",
            core=ctx.core.render(),
        )
        return messages, {"role": "system", "content": text}

    async def _summarise(
        self, ctx: TurnContext, messages: list[StoredMessage], system_tokens: int
    ) -> None:
        """Fold the oldest messages into the summary and take them out of view."""
        cut = _cut_point(messages, KEEP_AFTER_SUMMARY * self._window - self._fixed - system_tokens)
        if cut == 0:
            log.warning("agent %s: nothing can be evicted; the prompt stays long", ctx.agent.key)
            return
        previous = await self._store.summary(ctx.agent.id)
        transcript = "\n".join(_transcript_line(m) for m in messages[:cut])
        completion = await self._llm.complete(
            [
                {"role": "system", "content": SUMMARY_PROMPT},
                {
                    "role": "user",
                    "content": f"Previous summary:\n{previous or '(none)'}\n\n"
                    f"Messages:\n{transcript}",
                },
            ],
            [],
        )
        summary = (completion.content or "").strip() or previous
        evicted = await self._recall.evict(ctx.agent.id, messages[cut - 1].id, summary=summary)
        log.info("agent %s: summarised and evicted %d messages", ctx.agent.key, evicted)


def _cut_point(messages: list[StoredMessage], budget: float) -> int:
    """How many of the oldest messages to evict so the rest fit ``budget`` tokens.

    The first message kept must be a user message, so no function result is left without the
    call it answers; the newest user message is always kept.
    """
    sizes = [estimate_tokens(m.to_openai()) for m in messages]
    remaining = sum(sizes)
    starts: list[int] = []
    for i, message in enumerate(messages):
        if i > 0 and message.role == "user":
            starts.append(i)
            if remaining <= budget:
                return i
        remaining -= sizes[i]
    return starts[-1] if starts else 0


def _transcript_line(message: StoredMessage) -> str:
    who = message.speaker_name or message.role
    if message.tool_calls:
        calls = ", ".join(
            f"{c['function']['name']}({c['function']['arguments'][:200]})"
            for c in message.tool_calls
        )
        return f"{who}: {message.content or ''} [calls {calls}]"
    return f"{who}: {(message.content or '')[:1000]}"
